import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Clock } from '../common/clock';
import { WebhookOutbox, type AttemptFailure, type ClaimedDelivery } from './webhook-outbox';
import { retryDelayMs, WEBHOOK_SETTINGS, type WebhookSettings } from './webhook-settings';
import { signatureHeader } from './webhook-signature';
import { WebhookTransport } from './webhook-transport';

interface InFlight {
  webhookId: string;
  controller: AbortController;
  done: Promise<void>;
}

/** The longest the loop sleeps without looking at the outbox (a safety net; new rows and finished attempts wake it). */
const IDLE_POLL_MS = 30_000;
/** How long shutdown lets attempts in flight finish before it aborts them (they are sent again at the next start). */
export const SHUTDOWN_GRACE_MS = 2_000;
const PRUNE_EVERY_MS = 6 * 60 * 60 * 1000;
/** Delivered and given-up deliveries are listed this long, then forgotten. */
const KEEP_FINISHED_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * The one loop that sends deliveries: due rows of the outbox, a bounded number at once, one per receiver, each with a
 * timeout; failures come back with exponential backoff until delivered or given up. Nothing here runs on a job's path:
 * jobs only write outbox rows and wake it.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private readonly inFlight = new Map<number, InFlight>();
  private running = false;
  private wakeQueued = false;
  private timer: NodeJS.Timeout | undefined;
  private lastPrune = 0;

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly transport: WebhookTransport,
    private readonly clock: Clock,
    @Inject(WEBHOOK_SETTINGS) private readonly settings: WebhookSettings,
  ) {}

  onApplicationBootstrap(): void {
    const requeued = this.outbox.requeueSending(this.clock.now());
    if (requeued > 0) {
      this.logger.warn(`${requeued} webhook delivery attempt(s) cut short by the last stop: sending again`);
    }
    this.running = true;
    this.wake();
  }

  /** Looks at the outbox soon (on the next turn of the event loop); cheap to call often. */
  wake(): void {
    if (!this.running || this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.tick();
    }).unref();
  }

  /** Attempts in flight now (tests, metrics). */
  inFlightCount(): number {
    return this.inFlight.size;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    if (this.inFlight.size === 0) return;
    const all = Promise.allSettled([...this.inFlight.values()].map((entry) => entry.done));
    const finished = await Promise.race([all.then(() => true), sleep(SHUTDOWN_GRACE_MS).then(() => false)]);
    if (finished) return;
    for (const entry of this.inFlight.values()) entry.controller.abort();
    await all;
  }

  private tick(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.clock.now();
    try {
      this.pruneNowAndThen(now);
      const busy = [...this.inFlight.values()].map((entry) => entry.webhookId);
      const free = this.settings.concurrency - this.inFlight.size;
      for (const delivery of this.outbox.claimDue(now, busy, free)) this.start(delivery);
      this.sleepUntilNextDue(now);
    } catch (error) {
      this.logger.error({ err: error }, 'webhook dispatch failed; trying again later');
      this.sleep(IDLE_POLL_MS);
    }
  }

  /** Sleeps until the next pending row is due; when rows are due but waiting for a busy slot, a finish wakes us. */
  private sleepUntilNextDue(now: Date): void {
    const next = this.inFlight.size >= this.settings.concurrency ? null : this.outbox.nextDueAt();
    const wait = next === null ? IDLE_POLL_MS : Date.parse(next) - now.getTime();
    this.sleep(wait > 0 ? Math.min(wait, IDLE_POLL_MS) : IDLE_POLL_MS);
  }

  private sleep(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms).unref();
  }

  private start(delivery: ClaimedDelivery): void {
    const controller = new AbortController();
    const entry: InFlight = { webhookId: delivery.webhookId, controller, done: Promise.resolve() };
    this.inFlight.set(delivery.seq, entry);
    entry.done = this.attempt(delivery, controller.signal)
      .catch((error: unknown) => this.logger.error({ err: error, deliveryId: delivery.id }, 'webhook attempt failed'))
      .finally(() => {
        this.inFlight.delete(delivery.seq);
        this.wake();
      });
  }

  private async attempt(delivery: ClaimedDelivery, shutdown: AbortSignal): Promise<void> {
    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    const headers = {
      'Content-Type': 'application/json',
      'User-Agent': 'apiscp-backup-api-webhooks/1',
      'X-Webhook-Id': delivery.id,
      'X-Webhook-Event': delivery.event,
      'X-Webhook-Timestamp': String(timestamp),
      'X-Webhook-Attempt': String(delivery.attempts),
      'X-Webhook-Signature': signatureHeader(delivery.secret, timestamp, delivery.body),
    };
    const outcome = await this.transport.post(delivery.url, headers, delivery.body, {
      timeoutMs: this.settings.timeoutMs,
      signal: shutdown,
    });
    const now = this.clock.now();
    const context = {
      deliveryId: delivery.id,
      webhookId: delivery.webhookId,
      event: delivery.event,
      attempts: delivery.attempts,
      target: originOf(delivery.url),
    };
    if (outcome.ok) {
      this.outbox.markDelivered(delivery.seq, outcome.statusCode, now);
      this.logger.log({ ...context, statusCode: outcome.statusCode }, 'webhook delivered');
      return;
    }
    if (shutdown.aborted) {
      const failure: AttemptFailure = { statusCode: null, error: 'the service shut down during this attempt' };
      this.outbox.markRetry(delivery.seq, failure, now);
      return;
    }
    const failure: AttemptFailure = { statusCode: outcome.statusCode, error: outcome.error };
    const nextAt = new Date(now.getTime() + retryDelayMs(this.settings, delivery.attempts));
    const deadline = Date.parse(delivery.createdAt) + this.settings.retryForMs;
    if (delivery.attempts >= this.settings.maxAttempts || nextAt.getTime() > deadline) {
      this.outbox.markFailed(delivery.seq, failure, now);
      this.logger.warn({ ...context, error: failure.error }, 'webhook delivery given up');
      return;
    }
    this.outbox.markRetry(delivery.seq, failure, nextAt);
    this.logger.warn(
      { ...context, error: failure.error, nextAttemptAt: nextAt.toISOString() },
      'webhook delivery failed; will retry',
    );
  }

  private pruneNowAndThen(now: Date): void {
    if (now.getTime() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now.getTime();
    const removed = this.outbox.prune(new Date(now.getTime() - KEEP_FINISHED_MS));
    if (removed > 0) this.logger.log(`forgot ${removed} webhook deliveries finished over 30 days ago`);
  }
}

/** Logs name the receiver by origin only: a path or query may carry a token of the receiver's. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '?';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
