import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JobEngine } from '../../src/jobs/job-engine';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { assertProblem } from '../support/problem';
import { parsePrometheusText, sampleValue } from '../support/prometheus';
import { makeSites } from '../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';

/** An export job's request as the service stores it: every site. */
const EXPORT_ALL = { sites: null };

/** Features for the programs that call the service: metrics, idempotent triggers, job queries, site status. */
describe('for calling systems', () => {
  let t: TestApp;
  before(async () => {
    const root = tempDir();
    t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target`, MAX_CONCURRENT_JOBS: '1' }, root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.example' }, { n: 2, domain: 'two.example' }, { n: 3 }]);
    for (const n of [1, 2]) {
      mkdirSync(join(t.config.virtualRoot, `site${n}`, 'shadow', 'www'), { recursive: true });
      writeFileSync(join(t.config.virtualRoot, `site${n}`, 'shadow', 'www', 'index.html'), `site ${n}`);
    }
  });
  after(() => t.close());

  it('/metrics parses as Prometheus text and carries the values of real jobs', async () => {
    const ok = await runJob(t, '/v1/sites/site1/backups', { level: 'full' });
    assert.equal(ok.status, 'succeeded', JSON.stringify(ok));
    const failedLevel = await runJob(t, '/v1/sites/site2/backups', { level: 'full', provider: 'duplicity' });
    assert.equal(failedLevel.status, 'succeeded');
    assertProblem(await t.http().get('/metrics'), 401, 'unauthenticated');
    const res = await t.http().get('/metrics').set(t.auth('monitor')).expect(200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    const families = parsePrometheusText(res.text);
    const value = (name: string, labels: Record<string, string>) => sampleValue(families, name, labels);

    assert.equal(families.get('apiscp_backup_jobs_finished_total')?.type, 'counter');
    assert.equal(
      value('apiscp_backup_jobs_finished_total', { kind: 'backup', provider: 'duplicity', status: 'succeeded' }),
      2,
    );
    assert.equal(value('apiscp_backup_jobs_started_total', { kind: 'backup', provider: 'duplicity' }), 2);
    assert.equal(value('apiscp_backup_jobs', { status: 'running' }), 0);
    const last = value('apiscp_backup_last_success_timestamp_seconds', { site: 'site1', provider: 'duplicity' })!;
    assert.ok(Math.abs(last - Date.parse(ok.finishedAt!) / 1000) < 1, `last success ${last}`);
    assert.equal(value('apiscp_backup_last_success_timestamp_seconds', { site: 'site3' }), 0, 'never backed up: 0');
    assert.equal(value('apiscp_backup_restore_points', { site: 'site1', provider: 'duplicity' }), 1);
    assert.equal(value('apiscp_backup_provider_up', { provider: 'duplicity' }), 1);
    assert.equal(families.get('apiscp_backup_job_duration_seconds')?.type, 'histogram');
    assert.equal(value('apiscp_backup_job_duration_seconds_count', { kind: 'backup', status: 'succeeded' }), 2);
    assert.throws(() => parsePrometheusText('not a metric line !'), /not a sample/);
  });

  it('Idempotency-Key: the same key and body return the original job; another body is a 422', async () => {
    const key = 'order-4711-backup';
    const first = await t
      .http()
      .post('/v1/sites/site1/backups')
      .set(t.auth('operator'))
      .set('Idempotency-Key', key)
      .send({ level: 'incremental', provider: 'duplicity' });
    assert.equal(first.status, 202);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    // The same request by meaning: keys in another order, other spacing.
    const again = await t
      .http()
      .post('/v1/sites/site1/backups')
      .set(t.auth('operator'))
      .set('Idempotency-Key', key)
      .set('Content-Type', 'application/json')
      .send('{ "provider" : "duplicity",\n  "level" : "incremental" }');
    assert.equal(again.status, 202, again.text);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.headers.location, `/v1/jobs/${first.body.id}`);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const other = await t
      .http()
      .post('/v1/sites/site1/backups')
      .set(t.auth('operator'))
      .set('Idempotency-Key', key)
      .send({ level: 'full' });
    assertProblem(other, 422, 'idempotency-key-reused');
    assertProblem(
      await t
        .http()
        .post('/v1/sites/site1/backups')
        .set(t.auth('operator'))
        .set('Idempotency-Key', 'bad key with spaces')
        .send({ level: 'full' }),
      400,
      'validation-failed',
    );
    await waitForJob(t, first.body.id);
  });

  it('Idempotency-Key: two concurrent requests with one key make exactly one job', async () => {
    const before = (await t.http().get('/v1/jobs?kind=backup&site=site2').set(t.auth('monitor'))).body.items.length;
    const send = () =>
      t
        .http()
        .post('/v1/sites/site2/backups')
        .set(t.auth('operator'))
        .set('Idempotency-Key', 'concurrent-1')
        .send({ level: 'incremental' });
    const responses = await Promise.all([send(), send(), send(), send()]);
    assert.deepEqual(
      responses.map((res) => res.status),
      [202, 202, 202, 202],
    );
    assert.equal(new Set(responses.map((res) => (res.body as JobBody).id)).size, 1);
    const afterList = (await t.http().get('/v1/jobs?kind=backup&site=site2').set(t.auth('monitor'))).body.items.length;
    assert.equal(afterList, before + 1);
    await waitForJob(t, responses[0].body.id);
  });

  it('GET /v1/jobs pages through every job exactly once while new jobs arrive, and filters', async () => {
    const engine = t.app.get(JobEngine);
    // Jobs over no site, added straight to the engine; they end fast (no handler) or are cancelled at the end.
    const made: string[] = [];
    for (let i = 0; i < 7; i++)
      made.push(
        engine.enqueue({
          kind: 'export',
          site: null,
          provider: null,
          level: null,
          params: EXPORT_ALL,
          requestedBy: 'test',
        }).id,
      );
    const seen: string[] = [];
    let cursor: string | null = null;
    let page = 0;
    do {
      const res: { body: { items: JobBody[]; nextCursor: string | null } } = await t
        .http()
        .get(`/v1/jobs?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        .set(t.auth('monitor'))
        .expect(200);
      seen.push(...res.body.items.map((job: JobBody) => job.id));
      cursor = res.body.nextCursor;
      // New jobs arrive between pages.
      made.push(
        engine.enqueue({
          kind: 'export',
          site: null,
          provider: null,
          level: null,
          params: EXPORT_ALL,
          requestedBy: 'test',
        }).id,
      );
      page++;
    } while (cursor && page < 50);
    assert.equal(new Set(seen).size, seen.length, 'no job twice');
    const allNow = (await t.http().get('/v1/jobs?limit=500').set(t.auth('monitor'))).body.items.map(
      (job: JobBody) => job.id,
    );
    const firstPageTime = allNow.indexOf(seen[0]);
    assert.deepEqual(seen, allNow.slice(firstPageTime), 'every job that existed at the first page, once, newest first');

    const filtered = await t
      .http()
      .get('/v1/jobs?kind=backup&status=succeeded&site=site1&provider=duplicity')
      .set(t.auth('monitor'))
      .expect(200);
    assert.ok(filtered.body.items.length >= 2);
    assert.ok(filtered.body.items.every((job: JobBody) => job.site === 'site1' && job.status === 'succeeded'));
    const future = await t
      .http()
      .get(`/v1/jobs?since=${new Date(Date.now() + 60_000).toISOString()}`)
      .set(t.auth('monitor'))
      .expect(200);
    assert.deepEqual(future.body.items, []);
    for (const query of ['kind=nope', 'status=done', 'since=yesterday', 'site=..', 'limit=0']) {
      assertProblem(await t.http().get(`/v1/jobs?${query}`).set(t.auth('monitor')), 400, 'validation-failed');
    }
    for (const id of made) {
      if (['queued', 'running'].includes(engine.get(id).status)) engine.cancel(id, 'test');
    }
  });

  it('GET /v1/sites/{site}/status answers last success, newest restore point and active jobs', async () => {
    const res = await t.http().get('/v1/sites/one.example/status').set(t.auth('monitor')).expect(200);
    assert.equal(res.body.site, 'site1');
    assert.equal(res.body.lastSuccessfulBackups.length, 1);
    assert.equal(res.body.lastSuccessfulBackups[0].provider, 'duplicity');
    assert.match(res.body.lastSuccessfulBackups[0].restorePoint, /^duplicity-\d{8}T\d{6}Z$/);
    assert.equal(res.body.newestRestorePoint.id, res.body.lastSuccessfulBackups[0].restorePoint);
    assert.deepEqual(res.body.activeJobs, []);
    const none = await t.http().get('/v1/sites/site3/status').set(t.auth('monitor')).expect(200);
    assert.deepEqual(none.body.lastSuccessfulBackups, []);
    assert.equal(none.body.newestRestorePoint, null);
  });
});
