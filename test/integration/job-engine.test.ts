import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID as randomUuid } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { assertProblem } from '../support/problem';
import { makeSites } from '../support/sample-sites';
import { processesWhere } from '../support/processes';
import { startServiceProcess, waitForServiceJob } from '../support/service-process';
import { startTestApp, tempDir, writeTokensFile, type TestApp } from '../support/test-app';
import { eventually } from '../support/wait';
import { JobEngine } from '../../src/jobs/job-engine';

/** A site whose backup takes a few seconds: one large file of random bytes (incompressible). */
function bigSite(virtualRoot: string, n: number, megabytes = 300): void {
  const file = join(virtualRoot, `site${n}`, 'shadow', 'big.bin');
  mkdirSync(join(virtualRoot, `site${n}`, 'shadow'), { recursive: true });
  execFileSync('sh', ['-c', `head -c ${megabytes}M /dev/urandom > '${file}'`]);
}

/** This test's duplicity runs for `site` (its archive or target lies under `root`: other suites may run beside it). */
function duplicityRunsFor(site: string, root: string): number[] {
  return processesWhere(
    (argv) =>
      argv.some((arg) => arg.includes(root)) &&
      argv.some((arg) => arg.includes('duplicity')) &&
      argv.includes(site) &&
      argv.includes('--name'),
  );
}

async function post(t: TestApp, site: string, body: object = { level: 'full' }): Promise<JobBody> {
  const res = await t.http().post(`/v1/sites/${site}/backups`).set(t.auth('operator')).send(body);
  assert.equal(res.status, 202, res.text);
  return res.body as JobBody;
}

async function app(env: Record<string, string> = {}): Promise<TestApp> {
  const root = tempDir();
  const t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target`, ...env }, root);
  makeSites(t.config.virtualRoot, [
    { n: 1, domain: 'one.example' },
    { n: 2, domain: 'two.example' },
  ]);
  return t;
}

describe('job engine', () => {
  it('queues a second job of the same site behind the running one', async () => {
    const t = await app({ MAX_CONCURRENT_JOBS: '4' });
    try {
      bigSite(t.config.virtualRoot, 1, 120);
      const first = await post(t, 'site1');
      const second = await post(t, 'site1', { level: 'incremental' });
      await waitForJob(t, first.id, (job) => job.status === 'running');
      const meanwhile = (await t.http().get(`/v1/jobs/${second.id}`).set(t.auth('monitor'))).body;
      assert.equal(meanwhile.status, 'queued');
      const a = await waitForJob(t, first.id);
      const b = await waitForJob(t, second.id);
      assert.equal(a.status, 'succeeded', JSON.stringify(a));
      assert.equal(b.status, 'succeeded', JSON.stringify(b));
      assert.ok(b.startedAt! >= a.finishedAt!, 'the second started after the first finished');
    } finally {
      await t.close();
    }
  });

  it('never runs more than MAX_CONCURRENT_JOBS, first come first served, and a cancelled queued job never starts', async () => {
    const t = await app({ MAX_CONCURRENT_JOBS: '1' });
    try {
      bigSite(t.config.virtualRoot, 1, 120);
      const first = await post(t, 'site1');
      const second = await post(t, 'site2');
      const third = await post(t, 'site2', { level: 'incremental' });
      await waitForJob(t, first.id, (job) => job.status === 'running');
      assert.equal((await t.http().get(`/v1/jobs/${second.id}`).set(t.auth('monitor'))).body.status, 'queued');
      const cancelled = await t.http().post(`/v1/jobs/${third.id}/cancel`).set(t.auth('operator')).expect(202);
      assert.equal(cancelled.body.status, 'cancelled');
      const a = await waitForJob(t, first.id);
      const b = await waitForJob(t, second.id);
      assert.ok(b.startedAt! >= a.finishedAt!);
      const c = (await t.http().get(`/v1/jobs/${third.id}`).set(t.auth('monitor'))).body as JobBody;
      assert.equal(c.status, 'cancelled');
      assert.equal(c.startedAt, null);
      assertProblem(
        await t.http().post(`/v1/jobs/${first.id}/cancel`).set(t.auth('operator')),
        409,
        'job-not-cancellable',
      );
      assertProblem(await t.http().post(`/v1/jobs/${first.id}/cancel`).set(t.auth('monitor')), 403, 'forbidden');
      assertProblem(
        await t.http().get('/v1/jobs/00000000-0000-0000-0000-000000000000').set(t.auth('monitor')),
        404,
        'job-not-found',
      );
      assertProblem(await t.http().get('/v1/jobs/..%2f..%2fetc').set(t.auth('monitor')), 404, 'job-not-found');
    } finally {
      await t.close();
    }
  });

  it('GET /v1/jobs/{id}?waitSeconds= answers when the job ends (or when the wait is over), one request each', async () => {
    const t = await app({ MAX_CONCURRENT_JOBS: '2' });
    let held = true;
    const release = t.app.get(JobEngine).holdWhile((job) => held && job.site === 'site2');
    try {
      const bad = await Promise.all(
        ['61', '-1', '1.5', 'soon'].map((value) =>
          t.http().get(`/v1/jobs/${randomUuid()}`).query({ waitSeconds: value }).set(t.auth('monitor')),
        ),
      );
      for (const res of bad) assertProblem(res, 400, 'validation-failed');

      const running = await post(t, 'site1');
      const heldJob = await post(t, 'site2');
      const cancelledJob = await post(t, 'site2', { level: 'incremental' });
      const waits = [running, cancelledJob].map((job) =>
        t.http().get(`/v1/jobs/${job.id}`).query({ waitSeconds: 60 }).set(t.auth('monitor')),
      );
      // The engine holds site2's jobs: the wait runs out with the job still queued.
      const stillQueued = await t.http().get(`/v1/jobs/${heldJob.id}`).query({ waitSeconds: 1 }).set(t.auth('monitor'));
      assert.equal(stillQueued.status, 200, stillQueued.text);
      assert.equal(stillQueued.body.status, 'queued');
      await t.http().post(`/v1/jobs/${cancelledJob.id}/cancel`).set(t.auth('operator')).expect(202);
      const [ended, cancelled] = await Promise.all(waits);
      assert.equal(ended.status, 200, ended.text);
      assert.equal(ended.body.status, 'succeeded', ended.text);
      assert.equal(cancelled.body.status, 'cancelled', cancelled.text);
      held = false;
      release();
      const next = await t.http().get(`/v1/jobs/${heldJob.id}`).query({ waitSeconds: 60 }).set(t.auth('monitor'));
      assert.equal(next.body.status, 'succeeded', next.text);
      const unknown = await t.http().get(`/v1/jobs/${randomUuid()}`).query({ waitSeconds: 5 }).set(t.auth('monitor'));
      assertProblem(unknown, 404, 'job-not-found');
    } finally {
      held = false;
      release();
      await t.close();
    }
  });

  it('a held GET /v1/jobs/{id}?waitSeconds= is answered when the service shuts down, not a minute later', async () => {
    const t = await app();
    t.app.get(JobEngine).holdWhile(() => true);
    const queued = await post(t, 'site1');
    const started = Date.now();
    const waiting = t.http().get(`/v1/jobs/${queued.id}`).query({ waitSeconds: 60 }).set(t.auth('monitor'));
    const answered = new Promise<{ status: number; body: JobBody }>((resolve, reject) => {
      waiting.then((res) => resolve(res as { status: number; body: JobBody }), reject);
    });
    // The request is in the engine's hands once the job's wait is registered; then the service shuts down.
    await eventually('the wait to be registered', () => t.app.get(JobEngine).waitingCallers() > 0);
    await t.close();
    const res = await answered;
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'queued');
    assert.ok(Date.now() - started < 30_000, `answered ${Date.now() - started} ms after it was asked`);
  });

  it('cancelling a running backup stops duplicity and the site can be backed up again', async () => {
    const t = await app();
    try {
      bigSite(t.config.virtualRoot, 1, 400);
      const job = await post(t, 'site1');
      await waitForJob(t, job.id, (j) => j.progress.phase === 'backup' && duplicityRunsFor('site1', t.root).length > 0);
      await t.http().post(`/v1/jobs/${job.id}/cancel`).set(t.auth('operator')).expect(202);
      const ended = await waitForJob(t, job.id);
      assert.equal(ended.status, 'cancelled', JSON.stringify(ended));
      assert.equal(ended.error?.code, 'cancelled');
      assert.deepEqual(duplicityRunsFor('site1', t.root), []);
      const again = await runJob(t, '/v1/sites/site1/backups', { level: 'full' });
      assert.equal(again.status, 'succeeded', JSON.stringify(again));
    } finally {
      await t.close();
    }
  });

  it('a service killed mid-backup leaves the job interrupted, no orphan, no stale lock; the next backup succeeds', async () => {
    const root = tempDir();
    const virtualRoot = join(root, 'virtual');
    makeSites(virtualRoot, [{ n: 1, domain: 'one.example' }]);
    bigSite(virtualRoot, 1, 400);
    const env = {
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
    };
    let service = await startServiceProcess(env);
    const started = await service.call('POST', '/v1/sites/site1/backups', { level: 'full' });
    assert.equal(started.status, 202);
    await eventually('the job in its backup phase with duplicity running', async () => {
      const job = await service.call('GET', `/v1/jobs/${started.body.id}`);
      return job.body.progress.phase === 'backup' && duplicityRunsFor('site1', root).length > 0;
    });
    assert.ok(duplicityRunsFor('site1', root).length > 0, 'duplicity is running');
    await service.stop('SIGKILL');

    service = await startServiceProcess(env);
    try {
      const job = await service.call('GET', `/v1/jobs/${started.body.id}`);
      assert.equal(job.body.status, 'interrupted');
      assert.equal(job.body.error.code, 'interrupted');
      assert.deepEqual(duplicityRunsFor('site1', root), [], 'the orphaned duplicity was stopped');
      assert.ok(!existsSync(join(root, 'data', 'duplicity', 'archive', 'site1', 'lockfile')), 'stale lock cleared');
      const next = await service.call('POST', '/v1/sites/site1/backups', { level: 'full' });
      const ended = await waitForServiceJob(service, next.body.id, undefined, 300_000);
      assert.equal(ended.status, 'succeeded', service.output());
    } finally {
      await service.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('on SIGTERM it stops taking jobs, gives running ones a grace period, and marks the rest interrupted', async () => {
    const root = tempDir();
    const virtualRoot = join(root, 'virtual');
    makeSites(virtualRoot, [{ n: 1, domain: 'one.example' }]);
    bigSite(virtualRoot, 1, 400);
    writeFileSync(join(root, 'x'), '');
    const env = {
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
      SHUTDOWN_GRACE_SECONDS: '1',
    };
    let service = await startServiceProcess(env);
    const started = await service.call('POST', '/v1/sites/site1/backups', { level: 'full' });
    await eventually('duplicity to run', () => duplicityRunsFor('site1', root).length > 0);
    const code = await service.stop('SIGTERM');
    assert.ok(code === 0 || code === null, `exit ${code}: ${service.output()}`);
    // A SIGKILLed process takes a moment to leave the process table.
    await eventually('duplicity to exit', () => duplicityRunsFor('site1', root).length === 0);
    assert.deepEqual(duplicityRunsFor('site1', root), []);
    service = await startServiceProcess(env);
    try {
      const job = await service.call('GET', `/v1/jobs/${started.body.id}`);
      assert.equal(job.body.status, 'interrupted', JSON.stringify(job.body));
    } finally {
      await service.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
