import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CatalogService } from '../catalog/catalog.service';
import type { JobEvent, WebhookEvent } from './webhook-events';
import type { DeliveryStatus } from './webhook.model';

/** A delivery claimed for an attempt, with what sending it needs. `attempts` counts this attempt. */
export interface ClaimedDelivery {
  seq: number;
  id: string;
  webhookId: string;
  url: string;
  secret: string;
  event: WebhookEvent;
  body: string;
  attempts: number;
  createdAt: string;
}

export interface DeliveryRecord {
  seq: number;
  id: string;
  webhookId: string;
  event: WebhookEvent;
  jobId: string | null;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  finishedAt: string | null;
}

export interface AttemptFailure {
  statusCode: number | null;
  error: string;
}

const RECORD_COLUMNS = `seq, id, webhook_id AS webhookId, event, job_id AS jobId, status, attempts,
  last_status_code AS lastStatusCode, last_error AS lastError, created_at AS createdAt,
  last_attempt_at AS lastAttemptAt, next_attempt_at AS nextAttemptAt, finished_at AS finishedAt`;

/** How many due rows one claim looks at; enough to find one per receiver for the concurrency limit. */
const CLAIM_SCAN = 200;

/**
 * The durable outbox: a delivery is a row before anything is sent, and stays one until it is delivered or given up,
 * so a restart or a dead receiver loses nothing. Each write is one short statement or transaction.
 */
@Injectable()
export class WebhookOutbox {
  constructor(private readonly catalog: CatalogService) {}

  /**
   * Writes one pending delivery per (event, subscriber), due now, in one transaction; returns how many. Synchronous
   * and cheap: nothing but SQLite.
   */
  enqueue(planned: ReadonlyArray<{ event: JobEvent; webhookId: string }>, now: Date): number {
    if (planned.length === 0) return 0;
    const insert = this.catalog.statement(
      `INSERT INTO webhook_deliveries (id, webhook_id, event, job_id, body, status, attempts, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
    );
    return this.catalog.transaction(() => {
      for (const { event, webhookId } of planned) {
        const id = randomUUID();
        const body = JSON.stringify({ id, event: event.event, createdAt: event.occurredAt, data: event.data });
        insert.run(id, webhookId, event.event, event.jobId, body, now.toISOString(), event.occurredAt);
      }
      return planned.length;
    });
  }

  /**
   * Jobs that ended at or after `since` without a single delivery, though a subscription to their event existed when
   * they ended: those whose rows a crash or a failed write lost.
   */
  jobsEndedWithoutDeliveries(since: string): string[] {
    return (
      this.catalog
        .statement(
          `SELECT j.id FROM jobs j
           WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'interrupted') AND j.finished_at >= ?
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.job_id = j.id)
             AND EXISTS (
               SELECT 1 FROM webhooks w, json_each(w.events) e
               WHERE w.created_at <= j.finished_at
                 AND (e.value = 'job.' || j.status
                   OR (e.value = 'restore-point.created' AND j.kind = 'backup' AND j.status = 'succeeded')
                   OR (e.value = 'restore-point.expired' AND j.kind = 'prune' AND j.status = 'succeeded')))
           ORDER BY j.seq`,
        )
        .all(since) as Array<{ id: string }>
    ).map((row) => row.id);
  }

  /**
   * Marks up to `limit` due deliveries `sending` and returns them: the oldest due one of each receiver, skipping
   * receivers in `busyWebhooks` (one attempt per receiver at a time).
   */
  claimDue(now: Date, busyWebhooks: readonly string[], limit: number): ClaimedDelivery[] {
    if (limit <= 0) return [];
    const at = now.toISOString();
    return this.catalog.transaction(() => {
      const rows = this.catalog
        .statement(
          `SELECT d.seq, d.id, d.webhook_id AS webhookId, w.url, w.secret, d.event, d.body, d.attempts,
                  d.created_at AS createdAt
           FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
           WHERE d.status = 'pending' AND d.next_attempt_at <= ?
             AND d.webhook_id NOT IN (SELECT value FROM json_each(?))
           ORDER BY d.next_attempt_at, d.seq LIMIT ?`,
        )
        .all(at, JSON.stringify(busyWebhooks), CLAIM_SCAN) as ClaimedDelivery[];
      const claimed: ClaimedDelivery[] = [];
      const taken = new Set<string>();
      const mark = this.catalog.statement(
        `UPDATE webhook_deliveries SET status = 'sending', attempts = attempts + 1, last_attempt_at = ?,
           next_attempt_at = NULL WHERE seq = ? AND status = 'pending'`,
      );
      for (const row of rows) {
        if (claimed.length >= limit) break;
        if (taken.has(row.webhookId)) continue;
        if (mark.run(at, row.seq).changes === 0) continue;
        taken.add(row.webhookId);
        claimed.push({ ...row, attempts: row.attempts + 1 });
      }
      return claimed;
    });
  }

  /** When the next pending delivery is due (ISO), or null when none waits. */
  nextDueAt(): string | null {
    const row = this.catalog
      .statement(`SELECT MIN(next_attempt_at) AS next FROM webhook_deliveries WHERE status = 'pending'`)
      .get() as { next: string | null };
    return row.next;
  }

  markDelivered(seq: number, statusCode: number, at: Date): void {
    this.catalog
      .statement(
        `UPDATE webhook_deliveries SET status = 'delivered', last_status_code = ?, last_error = NULL,
           next_attempt_at = NULL, finished_at = ? WHERE seq = ? AND status = 'sending'`,
      )
      .run(statusCode, at.toISOString(), seq);
  }

  markRetry(seq: number, failure: AttemptFailure, nextAttemptAt: Date): void {
    this.catalog
      .statement(
        `UPDATE webhook_deliveries SET status = 'pending', last_status_code = ?, last_error = ?, next_attempt_at = ?
         WHERE seq = ? AND status = 'sending'`,
      )
      .run(failure.statusCode, failure.error, nextAttemptAt.toISOString(), seq);
  }

  markFailed(seq: number, failure: AttemptFailure, at: Date): void {
    this.catalog
      .statement(
        `UPDATE webhook_deliveries SET status = 'failed', last_status_code = ?, last_error = ?, next_attempt_at = NULL,
           finished_at = ? WHERE seq = ? AND status = 'sending'`,
      )
      .run(failure.statusCode, failure.error, at.toISOString(), seq);
  }

  /** Start-up: attempts a dead process left `sending` may or may not have arrived; send them again now. */
  requeueSending(now: Date): number {
    return this.catalog
      .statement(
        `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, last_status_code = NULL,
           last_error = 'the service stopped during this attempt; sending again' WHERE status = 'sending'`,
      )
      .run(now.toISOString()).changes;
  }

  /** Forgets delivered and given-up deliveries that finished before `before`. */
  prune(before: Date): number {
    return this.catalog
      .statement(`DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND finished_at < ?`)
      .run(before.toISOString()).changes;
  }

  /** A receiver's deliveries, newest first, below `beforeSeq` when given. */
  list(webhookId: string, filter: { status?: DeliveryStatus; beforeSeq?: number; limit: number }): DeliveryRecord[] {
    return this.catalog
      .statement(
        `SELECT ${RECORD_COLUMNS} FROM webhook_deliveries
         WHERE webhook_id = ? AND seq < ? AND (? IS NULL OR status = ?) ORDER BY seq DESC LIMIT ?`,
      )
      .all(
        webhookId,
        filter.beforeSeq ?? Number.MAX_SAFE_INTEGER,
        filter.status ?? null,
        filter.status ?? null,
        filter.limit,
      ) as DeliveryRecord[];
  }
}
