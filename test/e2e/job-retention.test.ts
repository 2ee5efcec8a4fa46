import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CatalogService } from '../../src/catalog/catalog.service';
import type { JobKind, JobStatus } from '../../src/jobs/job';
import { JobLogStore } from '../../src/jobs/job-log.store';
import { JobRetention } from '../../src/jobs/job-retention';
import { JobRepository } from '../../src/jobs/job.repository';
import { startTestApp, type TestApp } from '../support/test-app';

const DAY_MS = 24 * 60 * 60 * 1000;

/** What the service stores as a job's request, by kind (the API answers it as the spec types it). */
const BACKUP_REQUEST = { level: 'full', provider: 'duplicity', exportDatabases: false, continueOnExportFailure: false };
const REQUESTS: Record<JobKind, Record<string, unknown>> = {
  backup: BACKUP_REQUEST,
  export: { sites: null },
  restore: { restorePoint: 'duplicity-20261126T110204Z', paths: [], target: 'staging' },
  prune: { provider: 'duplicity', dryRun: true },
  webapp: { app: 'html' },
  archive: { path: 'shadow/var/www' },
};

describe('job retention (JOB_RETENTION_DAYS)', () => {
  let t: TestApp;
  const ids: Record<string, string> = {};

  /** A job that ended `daysAgo` days ago with `status`, with a log file. */
  async function endedJob(name: string, kind: JobKind, site: string, status: JobStatus, daysAgo: number) {
    const repository = t.app.get(JobRepository);
    const job = repository.insert({
      kind,
      site,
      provider: 'duplicity',
      level: null,
      params: REQUESTS[kind],
      requestedBy: null,
    });
    repository.transition(job.id, ['queued'], 'running');
    repository.transition(job.id, ['running'], status);
    const at = new Date(Date.now() - daysAgo * DAY_MS).toISOString();
    t.app
      .get(CatalogService)
      .db.prepare('UPDATE jobs SET created_at = ?, started_at = ?, finished_at = ? WHERE id = ?')
      .run(at, at, at, job.id);
    const log = t.app.get(JobLogStore).open(job.id);
    log.write(`${name} ran`);
    await log.close();
    ids[name] = job.id;
  }

  before(async () => {
    t = await startTestApp({ JOB_RETENTION_DAYS: '30' });
    await endedJob('oldSuccess', 'backup', 'site1', 'succeeded', 40);
    await endedJob('newestSuccessButOld', 'backup', 'site1', 'succeeded', 35);
    await endedJob('oldFailure', 'backup', 'site1', 'failed', 31);
    await endedJob('oldCancelled', 'backup', 'site2', 'cancelled', 50);
    await endedJob('recentExport', 'export', 'site2', 'succeeded', 10);
    const queued = t.app.get(JobRepository).insert({
      kind: 'backup',
      site: 'site3',
      provider: 'duplicity',
      level: null,
      params: BACKUP_REQUEST,
      requestedBy: null,
    });
    ids.queued = queued.id;
  });
  after(() => t.close());

  /** The job counter samples of /metrics, line by line. */
  async function jobCounters(): Promise<string[]> {
    const res = await t.http().get('/metrics').set(t.auth('monitor'));
    return res.text
      .split('\n')
      .filter((line) => /^apiscp_backup_jobs_(started|finished)_total\{/.test(line))
      .sort();
  }

  it('forgets finished jobs past the retention and their logs, and nothing else', async () => {
    const countersBefore = await jobCounters();
    assert.ok(
      countersBefore.includes(
        'apiscp_backup_jobs_finished_total{kind="backup",provider="duplicity",status="succeeded"} 2',
      ),
      countersBefore.join('\n'),
    );
    const forgotten = await t.app.get(JobRetention).prune();
    assert.deepEqual(await jobCounters(), countersBefore, 'the job counters do not go down');
    assert.deepEqual(new Set(forgotten), new Set([ids.oldSuccess, ids.oldFailure, ids.oldCancelled]));

    for (const name of ['oldSuccess', 'oldFailure', 'oldCancelled']) {
      const res = await t.http().get(`/v1/jobs/${ids[name]}`).set(t.auth('monitor'));
      assert.equal(res.status, 404, name);
      assert.equal((await t.http().get(`/v1/jobs/${ids[name]}/log`).set(t.auth('monitor'))).status, 404);
      assert.ok(!existsSync(t.app.get(JobLogStore).pathOf(ids[name])), `${name}'s log file is removed`);
    }
    const listed = await t.http().get('/v1/jobs').set(t.auth('monitor'));
    assert.equal(listed.status, 200);
    assert.deepEqual(
      new Set((listed.body.items as Array<{ id: string }>).map((job) => job.id)),
      new Set([ids.newestSuccessButOld, ids.recentExport, ids.queued]),
    );
    const kept = await t.http().get(`/v1/jobs/${ids.newestSuccessButOld}/log`).set(t.auth('monitor'));
    assert.match(kept.text, /newestSuccessButOld ran/);
  });

  it('keeps the last successful backup of a site, so its age still shows in /metrics', async () => {
    const res = await t.http().get('/metrics').set(t.auth('monitor'));
    const line = res.text
      .split('\n')
      .find((l) => l.startsWith('apiscp_backup_last_success_timestamp_seconds{site="site1"'));
    assert.ok(line, 'site1 has a last-success sample');
    assert.ok(Number(line.split(' ').at(-1)) > 0);
  });

  it('a second pass forgets nothing more', async () => {
    assert.deepEqual(await t.app.get(JobRetention).prune(), []);
  });

  it('refuses a retention below one day at start-up', async () => {
    await assert.rejects(startTestApp({ JOB_RETENTION_DAYS: '0' }), /JOB_RETENTION_DAYS/);
  });
});
