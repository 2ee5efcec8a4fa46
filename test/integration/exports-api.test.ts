import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ExportScheduleService } from '../../src/exports/export-schedule.service';
import { JobEngine } from '../../src/jobs/job-engine';
import {
  createMysqlDatabase,
  createPgsqlDatabase,
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  makeSite,
  mysql,
  uniquePrefix,
} from '../support/databases';
import { runJob, waitForJob } from '../support/jobs';
import { parsePrometheusText, sampleValue } from '../support/prometheus';
import { assertProblem } from '../support/problem';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';
import { eventually } from '../support/wait';

const SCOPE = '/v1/scopes/backups.automatic-database-exports';

describe('database exports through the API', () => {
  let t: TestApp;
  const one = uniquePrefix();
  const two = uniquePrefix();

  before(async () => {
    await ensureDatabaseServers();
    const root = tempDir();
    t = await startTestApp({ ...DATABASE_ENV, DUPLICITY_TARGET: `file://${root}/target` }, root);
    makeSite(t.config.virtualRoot, 1, { mysql: one, pgsql: one });
    makeSite(t.config.virtualRoot, 2, { mysql: two });
    execFileSync('ln', ['-s', 'site1', join(t.config.virtualRoot, 'one.example')]);
    await createMysqlDatabase(`${one}shop`);
    await mysql('CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(64), balance INT)', `${one}shop`);
    await mysql("INSERT INTO accounts VALUES (1, 'alice', 100), (2, 'bob', 50)", `${one}shop`);
    await createPgsqlDatabase(`${one}blog`);
    await createMysqlDatabase(`${two}wp`);
    await createMysqlDatabase(`${uniquePrefix()}nobody`);
  });
  after(async () => {
    await t.close();
    for (const prefix of [one, two]) await dropDatabasesWithPrefix(prefix);
  });

  it('GET /v1/sites/{site} lists the site’s databases by its ApisCP prefix', async () => {
    const res = await t.http().get('/v1/sites/one.example').set(t.auth('monitor')).expect(200);
    assert.deepEqual(res.body.databases, [
      { engine: 'mysql', name: `${one}shop` },
      { engine: 'pgsql', name: `${one}blog` },
    ]);
    assert.deepEqual(res.body.databaseServersUnavailable, []);
  });

  it('unknown sites are a 404 naming them, and nothing starts', async () => {
    const before = (await t.http().get('/v1/jobs?kind=export').set(t.auth('monitor'))).body.items.length;
    const res = await t
      .http()
      .post('/v1/exports')
      .set(t.auth('operator'))
      .send({ sites: ['site1', 'nope.example', 'site77'] });
    assertProblem(res, 404, 'site-not-found');
    assert.deepEqual(res.body.missing, ['nope.example', 'site77']);
    assertProblem(
      await t
        .http()
        .post('/v1/exports')
        .set(t.auth('operator'))
        .send({ sites: ['../etc'] }),
      400,
      'invalid-site-reference',
    );
    assertProblem(
      await t.http().post('/v1/exports').set(t.auth('operator')).send({ sites: 'site1' }),
      400,
      'validation-failed',
    );
    assert.equal((await t.http().get('/v1/jobs?kind=export').set(t.auth('monitor'))).body.items.length, before);
  });

  it('exports the named sites, one step per database, and lists the files with checksums that verify', async () => {
    const job = await runJob(t, '/v1/exports', { sites: ['site1', 'site2'] });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.deepEqual(
      job.steps.map((step) => step.name).sort(),
      [`export site1/mysql/${one}shop`, `export site1/pgsql/${one}blog`, `export site2/mysql/${two}wp`].sort(),
    );
    const files = (await t.http().get('/v1/sites/site1/exports').set(t.auth('monitor')).expect(200)).body as Array<{
      engine: string;
      database: string;
      file: string;
      sha256: string;
      bytes: number;
    }>;
    assert.equal(files.length, 2);
    for (const file of files) {
      const bytes = readFileSync(join(t.config.virtualRoot, 'site1', file.file));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), file.sha256);
      assert.equal(bytes.length, file.bytes);
      assert.ok(file.file.startsWith('shadow/'), 'inside shadow, so the site backup carries it');
    }
    const metrics = parsePrometheusText((await t.http().get('/metrics').set(t.auth('monitor'))).text);
    const newest = sampleValue(metrics, 'apiscp_backup_export_newest_timestamp_seconds', {
      site: 'site1',
      engine: 'mysql',
      database: `${one}shop`,
    });
    assert.ok(newest && Math.abs(newest - Date.now() / 1000) < 120, `export age metric: ${newest}`);
  });

  it('with automatic exports off, a backup exports first, so its restored export holds data changed after the last export', async () => {
    await t.http().put(SCOPE).set(t.auth('admin')).send({ value: false }).expect(200);
    await mysql("UPDATE accounts SET owner = 'carol-after-last-export' WHERE id = 2", `${one}shop`);
    const backup = await runJob(t, '/v1/sites/site1/backups', { level: 'full' });
    assert.equal(backup.status, 'succeeded', JSON.stringify(backup));
    assert.equal(backup.steps[0].name, 'export-databases');
    const exportStep = backup.steps.findIndex((step) => step.name.startsWith('export site1/mysql'));
    const backupStep = backup.steps.findIndex((step) => step.name === 'backup');
    assert.ok(exportStep >= 0 && exportStep < backupStep, 'the export step is listed before the backup');
    assert.ok(backup.steps[exportStep].finishedAt! <= backup.steps[backupStep].startedAt!, 'and ran before it');

    const point = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items[0];
    const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point.id, paths: ['shadow'] });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const dir = join(restore.result?.destination as string, t.config.exports.dir, 'mysql');
    const newest = readdirSync(dir)
      .filter((name) => name.startsWith(`${one}shop.`) && name.endsWith('.sql.gz'))
      .sort()
      .at(-1)!;
    assert.match(gunzipSync(readFileSync(join(dir, newest))).toString('utf8'), /carol-after-last-export/);
  });

  it('an explicit exportDatabases wins over the scope', async () => {
    const backup = await runJob(t, '/v1/sites/site2/backups', { level: 'full', exportDatabases: false });
    assert.equal(backup.status, 'succeeded');
    assert.ok(!backup.steps.some((step) => step.name === 'export-databases'));
  });

  it('nightly: starts one export when the scope is on, never beside a running one, nothing when off', async () => {
    const schedule = t.app.get(ExportScheduleService);
    assert.equal(await schedule.tick(), 'scope-off');
    await t.http().put(SCOPE).set(t.auth('admin')).send({ value: true }).expect(200);
    assert.equal(await schedule.tick(), 'started');
    assert.equal(await schedule.tick(), 'already-running');
    const jobs = (await t.http().get('/v1/jobs?kind=export&limit=1').set(t.auth('monitor'))).body.items;
    const ended = await waitForJob(t, jobs[0].id);
    assert.equal(ended.status, 'succeeded', JSON.stringify(ended));
    assert.equal(ended.request?.sites, null, 'every site');
  });
});

describe('database exports when the server is down', () => {
  it('an export job fails clearly; a backup that must export first fails before any file is backed up', async () => {
    const root = tempDir();
    const t = await startTestApp(
      { ...DATABASE_ENV, MYSQL_HOST: '127.0.0.1', MYSQL_PORT: '1', DUPLICITY_TARGET: `file://${root}/target` },
      root,
    );
    try {
      makeSite(t.config.virtualRoot, 1, { mysql: uniquePrefix() });
      const job = await runJob(t, '/v1/exports', {});
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'export-failed');
      assert.match(job.error.message, /site1\/mysql/);
      const backup = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: true });
      assert.equal(backup.status, 'failed');
      assert.equal(backup.error?.code, 'export-failed');
      assert.equal(backup.steps.find((step) => step.name === 'backup')?.status, 'skipped');
      const points = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items;
      assert.deepEqual(points, [], 'no file backup was made');
      const anyway = await runJob(t, '/v1/sites/site1/backups', {
        level: 'full',
        exportDatabases: true,
        continueOnExportFailure: true,
      });
      assert.equal(anyway.status, 'succeeded', JSON.stringify(anyway));
      assert.ok((anyway.result?.warnings as string[]).some((warning) => /export of mysql/.test(warning)));
      // A job's status is final before the engine lets go of it (it closes the job's log and removes its work
      // directory first): the poll that saw the last job succeed may come while it is still counted as running.
      const engine = t.app.get(JobEngine);
      await eventually('the engine to let go of every ended job', () => engine.runningCount() === 0);
    } finally {
      await t.close();
    }
  });
});
