import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { CatalogService } from '../../../src/catalog/catalog.service';
import { Clock } from '../../../src/common/clock';
import { AppConfig } from '../../../src/config/app-config';
import { SHUTDOWN_GRACE_MS, WebhookDispatcher } from '../../../src/webhooks/webhook-dispatcher';
import type { JobEvent } from '../../../src/webhooks/webhook-events';
import { WebhookOutbox } from '../../../src/webhooks/webhook-outbox';
import { DEFAULT_WEBHOOK_SETTINGS, type WebhookSettings } from '../../../src/webhooks/webhook-settings';
import { WebhookStore } from '../../../src/webhooks/webhook.store';
import type { AttemptOutcome } from '../../../src/webhooks/webhook-transport';
import { tempDir } from '../../support/test-app';
import { waitUntil } from '../../support/wait';

interface Call {
  webhookUrl: string;
  headers: Record<string, string>;
  answer: (outcome: AttemptOutcome) => void;
}

/** Stands in for HTTP: each attempt waits until the test answers it, or until it is aborted. */
class HeldTransport {
  readonly calls: Call[] = [];
  readonly open = new Set<Call>();
  maxOpen = 0;
  overlapOfOneReceiver = false;

  post(url: string, headers: Record<string, string>, _body: string, options: { signal: AbortSignal }) {
    return new Promise<AttemptOutcome>((resolve) => {
      if ([...this.open].some((call) => call.webhookUrl === url)) this.overlapOfOneReceiver = true;
      const call: Call = {
        webhookUrl: url,
        headers,
        answer: (outcome) => {
          this.open.delete(call);
          resolve(outcome);
        },
      };
      this.calls.push(call);
      this.open.add(call);
      this.maxOpen = Math.max(this.maxOpen, this.open.size);
      options.signal.addEventListener('abort', () => call.answer({ ok: false, statusCode: null, error: 'aborted' }));
    });
  }
}

const until = (check: () => boolean) => waitUntil(check);
/** The dispatcher looks at the outbox on setImmediate: after this, a look asked for before it has run. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

// The dispatcher logs every attempt; Nest's default console logger would flood the test output.
Logger.overrideLogger(false);

describe('webhook dispatcher', () => {
  let dir: string;
  let catalog: CatalogService;
  let store: WebhookStore;
  let outbox: WebhookOutbox;
  let transport: HeldTransport;
  const clock = new Clock();

  beforeEach(() => {
    dir = tempDir();
    catalog = new CatalogService(new AppConfig({ dataDir: dir } as AppConfig));
    store = new WebhookStore(catalog, clock);
    outbox = new WebhookOutbox(catalog);
    transport = new HeldTransport();
  });
  afterEach(() => {
    catalog.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  function dispatcher(settings: Partial<WebhookSettings> = {}): WebhookDispatcher {
    return new WebhookDispatcher(outbox, transport, clock, {
      ...DEFAULT_WEBHOOK_SETTINGS,
      ...settings,
    });
  }

  function subscribe(n: number, perWebhook: number): void {
    for (let i = 0; i < n; i++) {
      const webhook = store.insert({
        url: `http://127.0.0.1:1/receiver-${i}`,
        events: ['job.succeeded'],
        secret: 'x'.repeat(16),
        description: null,
        createdBy: null,
      });
      const events: JobEvent[] = Array.from({ length: perWebhook }, (_, k) => ({
        event: 'job.succeeded',
        jobId: `job-${k}`,
        occurredAt: clock.iso(),
        data: { k },
      }));
      outbox.enqueue(
        events.map((event) => ({ event, webhookId: webhook.id })),
        clock.now(),
      );
    }
  }

  function statuses(): string[] {
    return (catalog.db.prepare('SELECT status FROM webhook_deliveries ORDER BY seq').all() as { status: string }[]).map(
      (row) => row.status,
    );
  }

  it('keeps at most `concurrency` attempts in flight and one per receiver, and delivers everything', async () => {
    subscribe(6, 3);
    const sender = dispatcher();
    sender.onApplicationBootstrap();
    await until(() => transport.open.size === 4);
    // Make it look at the outbox again (as a new row would) and let that look run: still four.
    sender.wake();
    await nextTurn();
    assert.equal(transport.open.size, 4, 'no fifth attempt while four are open');
    assert.equal(new Set([...transport.open].map((call) => call.webhookUrl)).size, 4);
    while (statuses().some((status) => status !== 'delivered')) {
      await until(() => transport.open.size > 0 || statuses().every((status) => status === 'delivered'));
      for (const call of [...transport.open]) call.answer({ ok: true, statusCode: 200 });
      await nextTurn();
    }
    assert.equal(transport.calls.length, 18);
    assert.equal(transport.maxOpen, 4);
    assert.equal(transport.overlapOfOneReceiver, false);
    assert.ok(transport.calls.every((call) => call.headers['X-Webhook-Attempt'] === '1'));
    await sender.beforeApplicationShutdown();
  });

  it('gives up a delivery whose next attempt would fall after the retry period', async () => {
    subscribe(1, 1);
    const sender = dispatcher({ retryForMs: 100, retryBaseMs: 1000 });
    sender.onApplicationBootstrap();
    await until(() => transport.open.size === 1);
    [...transport.open][0].answer({ ok: false, statusCode: 503, error: 'HTTP 503' });
    await until(() => statuses()[0] === 'failed');
    const row = catalog.db.prepare('SELECT * FROM webhook_deliveries').get() as Record<string, unknown>;
    assert.equal(row.attempts, 1);
    assert.equal(row.last_status_code, 503);
    assert.equal(row.next_attempt_at, null);
    await sender.beforeApplicationShutdown();
  });

  it('on shutdown aborts attempts that outlast the grace and leaves them due; at start sends what was cut short', async () => {
    subscribe(2, 1);
    const first = dispatcher();
    first.onApplicationBootstrap();
    await until(() => transport.open.size === 2);
    // The grace runs on mocked timers: exact to the millisecond, however loaded the machine is.
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let stopped = false;
      const stopping = first.beforeApplicationShutdown().then(() => (stopped = true));
      mock.timers.tick(SHUTDOWN_GRACE_MS - 1);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(stopped, false, 'attempts get the grace period first');
      assert.equal(transport.open.size, 2, 'nothing is aborted within the grace');
      mock.timers.tick(1);
      await stopping;
    } finally {
      mock.timers.reset();
    }
    assert.equal(transport.open.size, 0, 'attempts past the grace are aborted');
    assert.equal(first.inFlightCount(), 0);
    assert.deepEqual(statuses(), ['pending', 'pending']);
    first.wake(); // stopped: nothing is sent
    await nextTurn(); // where a running dispatcher's look at the outbox would have run
    assert.equal(transport.calls.length, 2);

    // A crash mid-attempt leaves `sending`: the next start sends it again.
    catalog.db.prepare(`UPDATE webhook_deliveries SET status = 'sending' WHERE seq = 1`).run();
    const second = dispatcher();
    second.onApplicationBootstrap();
    await until(() => transport.open.size === 2);
    for (const call of [...transport.open]) call.answer({ ok: true, statusCode: 204 });
    await until(() => statuses().every((status) => status === 'delivered'));
    const attempts = catalog.db.prepare('SELECT attempts FROM webhook_deliveries ORDER BY seq').all();
    assert.deepEqual(attempts, [{ attempts: 2 }, { attempts: 2 }]);
    await second.beforeApplicationShutdown();
  });
});
