import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Job } from '../../../src/jobs/job';
import { ConfigError, loadConfig } from '../../../src/config/load-config';
import { eventsOfJob } from '../../../src/webhooks/webhook-events';
import { DEFAULT_WEBHOOK_SETTINGS, retryDelayMs } from '../../../src/webhooks/webhook-settings';
import { generateSecret, signatureHeader } from '../../../src/webhooks/webhook-signature';
import { webhookUrlProblem } from '../../../src/webhooks/webhook.model';

const NOW = new Date('2026-11-26T11:02:09.000Z');

function job(patch: Partial<Job>): Job {
  return {
    id: '6f1c0c1e-3a52-4e59-9a0c-2f4f1f0b7d11',
    seq: 1,
    kind: 'backup',
    site: 'site12',
    provider: 'duplicity',
    level: 'incremental',
    status: 'succeeded',
    progress: { phase: null, percent: null, bytes: null },
    steps: [],
    params: { level: 'incremental' },
    result: null,
    error: null,
    requestedBy: 'ops',
    pid: null,
    createdAt: '2026-11-26T11:00:00.000Z',
    startedAt: '2026-11-26T11:00:01.000Z',
    finishedAt: '2026-11-26T11:02:04.000Z',
    ...patch,
  };
}

describe('events of a finished job', () => {
  it('maps each final status to its event, and nothing for a job still queued or running', () => {
    for (const status of ['succeeded', 'failed', 'cancelled', 'interrupted'] as const) {
      const events = eventsOfJob(job({ status, kind: 'export' }), NOW);
      assert.deepEqual(
        events.map((e) => e.event),
        [`job.${status}`],
      );
      assert.equal(events[0].occurredAt, '2026-11-26T11:02:04.000Z');
      assert.equal((events[0].data.job as { status: string }).status, status);
    }
    assert.deepEqual(eventsOfJob(job({ status: 'queued' }), NOW), []);
    assert.deepEqual(eventsOfJob(job({ status: 'running' }), NOW), []);
  });

  it('adds restore-point.created for a succeeded backup with a restore point, with the level it made', () => {
    const events = eventsOfJob(
      job({ result: { restorePoint: 'duplicity-20261126T110204Z', level: 'full', requestedLevel: 'incremental' } }),
      NOW,
    );
    assert.deepEqual(
      events.map((e) => e.event),
      ['job.succeeded', 'restore-point.created'],
    );
    assert.deepEqual(events[1].data.restorePoint, {
      id: 'duplicity-20261126T110204Z',
      site: 'site12',
      provider: 'duplicity',
      level: 'full',
    });
    assert.deepEqual(events[1].data.job, events[0].data.job);
    assert.equal('params' in (events[0].data.job as object), false, 'the public job model, not the stored row');
  });

  it('raises no restore-point.created without a restore point, for a failed backup, or for other kinds', () => {
    const only = (j: Job) => eventsOfJob(j, NOW).map((e) => e.event);
    assert.deepEqual(only(job({ result: { restorePoint: null } })), ['job.succeeded']);
    assert.deepEqual(only(job({ result: null })), ['job.succeeded']);
    assert.deepEqual(only(job({ status: 'failed', result: { restorePoint: 'duplicity-1' } })), ['job.failed']);
    assert.deepEqual(only(job({ kind: 'restore', result: { restorePoint: 'duplicity-1' } })), ['job.succeeded']);
  });

  it('uses now as the event time for a job without an end time', () => {
    assert.equal(eventsOfJob(job({ finishedAt: null }), NOW)[0].occurredAt, NOW.toISOString());
  });
});

describe('signatures and secrets', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256, as openssl does', () => {
    // printf '123.{"a":1}' | openssl dgst -sha256 -hmac abc -r
    assert.equal(
      signatureHeader('abc', 123, '{"a":1}'),
      'v1=1bca458d8418ffcff754638596170eeada90b0ffd93846bce0202388e5f35ecd',
    );
    const body = JSON.stringify({ text: 'zürich ✓' });
    assert.equal(
      signatureHeader('whsec_x', 1795733366, body),
      `v1=${createHmac('sha256', 'whsec_x')
        .update(Buffer.from(`1795733366.${body}`, 'utf8'))
        .digest('hex')}`,
    );
  });

  it('generates distinct 256-bit secrets', () => {
    const secrets = new Set(Array.from({ length: 50 }, generateSecret));
    assert.equal(secrets.size, 50);
    for (const secret of secrets) assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  });
});

describe('target URLs', () => {
  it('accepts absolute http and https URLs, with ports, paths, queries, IPs', () => {
    for (const url of [
      'https://billing.example.com/hooks/backups',
      'http://127.0.0.1:9000/in?tenant=7',
      'http://localhost/',
      'https://[2001:db8::1]:8443/x',
      'HTTPS://Example.COM',
    ]) {
      assert.equal(webhookUrlProblem(url), null, url);
    }
  });

  it('refuses other schemes, credentials, relative or malformed URLs, whitespace, and overlong ones', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['ftp://example.com/x', /http or https/],
      ['file:///etc/passwd', /http or https/],
      ['javascript:alert(1)', /http or https/],
      ['https://user:pw@example.com/', /credentials/],
      ['https://token@example.com/', /credentials/],
      ['/relative', /absolute/],
      ['example.com/hook', /absolute/],
      ['http://', /absolute/],
      ['https://exa mple.com/', /whitespace/],
      ['https://example.com/\n', /whitespace/],
      [`https://example.com/${'a'.repeat(2048)}`, /2048/],
      [42, /string/],
      [null, /string/],
    ];
    for (const [url, problem] of cases) assert.match(webhookUrlProblem(url) ?? 'accepted', problem, String(url));
  });
});

describe('retry schedule and settings', () => {
  it('doubles from the base, capped at the maximum delay', () => {
    const middle = () => 0.5;
    const delays = Array.from({ length: 14 }, (_, i) => retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, i + 1, middle));
    assert.deepEqual(delays.slice(0, 10), [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000]);
    assert.deepEqual(delays.slice(10), [600000, 600000, 600000, 600000]);
    assert.equal(retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, 10_000, middle), 600000, 'no overflow');
  });

  it('jitters by ±20 % without passing the cap', () => {
    assert.equal(
      retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, 1, () => 0),
      800,
    );
    assert.equal(
      retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, 1, () => 0.999999),
      1200,
    );
    assert.equal(
      retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, 30, () => 0.999999),
      600000,
    );
    assert.equal(
      retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, 30, () => 0),
      480000,
    );
    for (let i = 0; i < 200; i++) {
      const delay = retryDelayMs(DEFAULT_WEBHOOK_SETTINGS, 3);
      assert.ok(delay >= 3200 && delay <= 4800, String(delay));
    }
  });

  it('reads WEBHOOK_* variables with defaults through the service configuration, and names each bad one', () => {
    assert.deepEqual(loadConfig({}).webhooks, {
      retryBaseMs: 1000,
      retryForMs: 86_400_000,
      maxAttempts: 200,
      timeoutMs: 10_000,
    });
    assert.deepEqual(
      loadConfig({
        WEBHOOK_RETRY_BASE_MS: '50',
        WEBHOOK_RETRY_FOR_SECONDS: '3600',
        WEBHOOK_MAX_ATTEMPTS: '5',
        WEBHOOK_TIMEOUT_SECONDS: '3',
      }).webhooks,
      { retryBaseMs: 50, retryForMs: 3_600_000, maxAttempts: 5, timeoutMs: 3000 },
    );
    assert.throws(
      () => loadConfig({ WEBHOOK_RETRY_BASE_MS: '0', WEBHOOK_MAX_ATTEMPTS: '1e3x', WEBHOOK_TIMEOUT_SECONDS: '-1' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(
          [...new Set(error.problems.map((problem) => problem.split(':')[0]))],
          ['WEBHOOK_RETRY_BASE_MS', 'WEBHOOK_MAX_ATTEMPTS', 'WEBHOOK_TIMEOUT_SECONDS'],
        );
        return true;
      },
    );
  });
});
