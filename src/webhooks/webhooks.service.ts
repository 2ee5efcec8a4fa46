import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import type { Principal } from '../auth/role';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { decodeCursor, encodeCursor, type Page } from '../common/pagination/page';
import type { Job } from '../jobs/job';
import { JobEngine } from '../jobs/job-engine';
import { JobRepository } from '../jobs/job.repository';
import { WebhookDispatcher } from './webhook-dispatcher';
import { eventsOfJob, WEBHOOK_EVENTS, type JobEvent } from './webhook-events';
import { WebhookOutbox } from './webhook-outbox';
import { WEBHOOK_SETTINGS, type WebhookSettings } from './webhook-settings';
import { generateSecret } from './webhook-signature';
import {
  type CreatedWebhookModel,
  type CreateWebhookBody,
  DEFAULT_WEBHOOK_PAGE_LIMIT,
  type ListDeliveriesQuery,
  type WebhookDeliveryModel,
  type WebhookModel,
} from './webhook.model';
import { WebhookStore, type StoredWebhook } from './webhook.store';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Subscriptions, their deliveries, and the bridge from finished jobs to the outbox. */
@Injectable()
export class WebhooksService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(WebhooksService.name);

  constructor(
    private readonly store: WebhookStore,
    private readonly outbox: WebhookOutbox,
    private readonly dispatcher: WebhookDispatcher,
    private readonly engine: JobEngine,
    private readonly jobs: JobRepository,
    private readonly clock: Clock,
    @Inject(WEBHOOK_SETTINGS) private readonly settings: WebhookSettings,
  ) {}

  /** Before the engine's bootstrap, so jobs it marks interrupted at start-up raise their event too. */
  onModuleInit(): void {
    this.engine.onFinished((job) => this.onJobFinished(job));
  }

  /**
   * A job's end and its outbox rows are two writes: a crash between them, or a failed insert, would lose the event.
   * The rows of one job are written together, so a job that ended within the retry period with none, though a
   * subscription to its event existed then, never had them: write them now.
   */
  onApplicationBootstrap(): void {
    const now = this.clock.now();
    const since = new Date(now.getTime() - this.settings.retryForMs).toISOString();
    const webhooks = this.store.all();
    const planned = this.outbox.jobsEndedWithoutDeliveries(since).flatMap((id) => {
      const job = this.jobs.get(id);
      const existed = webhooks.filter((webhook) => job?.finishedAt && webhook.createdAt <= job.finishedAt);
      return job ? this.plan(eventsOfJob(job, now), existed) : [];
    });
    const written = this.outbox.enqueue(planned, now);
    if (written > 0) {
      this.logger.warn(`wrote ${written} webhook deliveries for job events that had none (a crash after a job ended)`);
      this.dispatcher.wake();
    }
  }

  create(body: CreateWebhookBody, by: Principal): CreatedWebhookModel {
    const generated = body.secret === undefined ? generateSecret() : undefined;
    const stored = this.store.insert({
      url: new URL(body.url).href,
      // Stored in the documented order, whatever order they came in.
      events: WEBHOOK_EVENTS.filter((event) => body.events.includes(event)),
      secret: body.secret ?? generated!,
      description: body.description ?? null,
      createdBy: by.name,
    });
    this.logger.log({ webhookId: stored.id, events: stored.events, by: by.name }, 'webhook created');
    return generated ? { ...toWebhookModel(stored), secret: generated } : toWebhookModel(stored);
  }

  get(id: string): WebhookModel {
    return toWebhookModel(this.find(id));
  }

  list(query: { cursor?: string; limit?: number }): Page<WebhookModel> {
    const limit = query.limit ?? DEFAULT_WEBHOOK_PAGE_LIMIT;
    const rows = this.store.list(limit + 1, beforeSeqOf(query.cursor));
    return pageOf(rows, limit, toWebhookModel);
  }

  delete(id: string, by: Principal): void {
    const webhook = this.find(id);
    this.store.delete(webhook.id);
    this.logger.log({ webhookId: webhook.id, by: by.name }, 'webhook deleted');
  }

  deliveries(id: string, query: ListDeliveriesQuery): Page<WebhookDeliveryModel> {
    const webhook = this.find(id);
    const limit = query.limit ?? DEFAULT_WEBHOOK_PAGE_LIMIT;
    const rows = this.outbox.list(webhook.id, {
      status: query.status,
      beforeSeq: beforeSeqOf(query.cursor),
      limit: limit + 1,
    });
    return pageOf(rows, limit, ({ seq: _seq, ...delivery }) => delivery);
  }

  /** Runs inside the job engine: writes outbox rows and wakes the dispatcher, never waits for a receiver. */
  private onJobFinished(job: Job): void {
    const now = this.clock.now();
    const written = this.outbox.enqueue(this.plan(eventsOfJob(job, now), this.store.all()), now);
    if (written > 0) this.dispatcher.wake();
  }

  /** One delivery per event and each of `webhooks` subscribed to it. */
  private plan(events: JobEvent[], webhooks: StoredWebhook[]): Array<{ event: JobEvent; webhookId: string }> {
    return events.flatMap((event) =>
      webhooks
        .filter((webhook) => webhook.events.includes(event.event))
        .map((webhook) => ({ event, webhookId: webhook.id })),
    );
  }

  private find(id: string): StoredWebhook {
    const webhook = UUID.test(id) ? this.store.get(id) : undefined;
    if (!webhook) throw new AppError(ErrorCode.WebhookNotFound, `No webhook ${JSON.stringify(id.slice(0, 64))}.`);
    return webhook;
  }
}

/** The public view: everything but the secret. */
function toWebhookModel(webhook: StoredWebhook): WebhookModel {
  return {
    id: webhook.id,
    url: webhook.url,
    events: webhook.events,
    description: webhook.description,
    createdBy: webhook.createdBy,
    createdAt: webhook.createdAt,
  };
}

function beforeSeqOf(cursor: string | undefined): number | undefined {
  return cursor ? decodeCursor(cursor, (value): value is number => Number.isSafeInteger(value)) : undefined;
}

function pageOf<R extends { seq: number }, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  const page = rows.slice(0, limit);
  return {
    items: page.map(map),
    nextCursor: rows.length > limit && page.length > 0 ? encodeCursor(page.at(-1)!.seq) : null,
  };
}
