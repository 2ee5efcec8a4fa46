import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import type { WebhookEvent } from './webhook-events';

/** A subscription as stored, secret included: never hand this to a response or a log line. */
export interface StoredWebhook {
  seq: number;
  id: string;
  url: string;
  events: WebhookEvent[];
  secret: string;
  description: string | null;
  createdBy: string | null;
  createdAt: string;
}

export interface NewWebhook {
  url: string;
  events: WebhookEvent[];
  secret: string;
  description: string | null;
  createdBy: string | null;
}

interface WebhookRow {
  seq: number;
  id: string;
  url: string;
  events: string;
  secret: string;
  description: string | null;
  created_by: string | null;
  created_at: string;
}

/** Webhook subscriptions in the catalog. */
@Injectable()
export class WebhookStore {
  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  insert(webhook: NewWebhook): StoredWebhook {
    const id = randomUUID();
    this.catalog
      .statement(
        `INSERT INTO webhooks (id, url, events, secret, description, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        webhook.url,
        JSON.stringify(webhook.events),
        webhook.secret,
        webhook.description,
        webhook.createdBy,
        this.clock.iso(),
      );
    return this.get(id)!;
  }

  get(id: string): StoredWebhook | undefined {
    const row = this.catalog.statement('SELECT * FROM webhooks WHERE id = ?').get(id) as WebhookRow | undefined;
    return row && toWebhook(row);
  }

  /** Newest first, below `beforeSeq` when given. */
  list(limit: number, beforeSeq?: number): StoredWebhook[] {
    const rows = this.catalog
      .statement('SELECT * FROM webhooks WHERE seq < ? ORDER BY seq DESC LIMIT ?')
      .all(beforeSeq ?? Number.MAX_SAFE_INTEGER, limit) as WebhookRow[];
    return rows.map(toWebhook);
  }

  /** Every subscription (a handful: read whole on each job's end). */
  all(): StoredWebhook[] {
    return (this.catalog.statement('SELECT * FROM webhooks ORDER BY seq').all() as WebhookRow[]).map(toWebhook);
  }

  /** Removes the subscription and, with it, its deliveries (pending ones are never sent). */
  delete(id: string): boolean {
    return this.catalog.statement('DELETE FROM webhooks WHERE id = ?').run(id).changes > 0;
  }
}

function toWebhook(row: WebhookRow): StoredWebhook {
  return {
    seq: row.seq,
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as WebhookEvent[],
    secret: row.secret,
    description: row.description,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}
