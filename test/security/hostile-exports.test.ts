import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createMysqlDatabase,
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  makeSite,
  uniquePrefix,
} from '../support/databases';
import { fingerprint, plantSentinel, startSwapRacer } from '../support/hostile-tenant';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';

/**
 * A site owner against database exports (real MariaDB): a pre-made export directory of their own with a partial
 * name planted as a link to a file outside, the export directory's parent swapped for a link hundreds of times while
 * exports run, and a backup asked for while a multi-site export works on the same site.
 */
describe('security: exports against a hostile site owner', () => {
  const root = tempDir('sec-exports-');
  const outside = join(root, 'outside');
  const prefix = uniquePrefix();
  let t: TestApp;
  let sentinel: string[];
  const exportDir = (n: number): string => join(t.config.virtualRoot, `site${n}`, 'shadow/var/backups/databases');

  before(async () => {
    await ensureDatabaseServers();
    await plantSentinel(outside);
    sentinel = await fingerprint(outside);
    t = await startTestApp({ ...DATABASE_ENV, DUPLICITY_TARGET: `file://${root}/target` }, root);
    for (const n of [1, 2, 7]) {
      makeSite(t.config.virtualRoot, n, { mysql: `${prefix}${n}_` });
      await createMysqlDatabase(`${prefix}${n}_shop`);
    }
  });
  after(async () => {
    await t.close();
    await dropDatabasesWithPrefix(prefix);
  });

  const untouched = async (): Promise<void> => {
    assert.deepEqual(await fingerprint(outside), sentinel, 'the tree outside every site is unchanged');
    assert.equal((await t.http().get('/readyz')).status, 200);
  };

  it('a tenant-made export directory with a planted partial link is refused; the link target is untouched', async () => {
    mkdirSync(join(exportDir(1), 'mysql'), { recursive: true });
    chownSync(join(exportDir(1), 'mysql'), 1000, 1000);
    chownSync(exportDir(1), 1000, 1000);
    symlinkSync(join(outside, 'victim'), join(exportDir(1), 'mysql', '.manifest.json.partial'));
    const job = await runJob(t, '/v1/exports', { sites: ['site1'] });
    assert.equal(job.status, 'failed', JSON.stringify(job));
    assert.match(JSON.stringify(job.error), /unsafe-path|belongs to uid 1000/);
    await untouched();
  });

  it('a racer swapping the export directory’s parent for a link while exports run never gets a write outside', async () => {
    mkdirSync(join(t.config.virtualRoot, 'site2', 'shadow/var/backups'), { recursive: true });
    const racer = await startSwapRacer(join(t.config.virtualRoot, 'site2', 'shadow/var/backups'), outside, {
      maxMs: 60_000,
    });
    const jobs: JobBody[] = [];
    try {
      for (let i = 0; i < 5; i++) jobs.push(await runJob(t, '/v1/exports', { sites: ['site2'] }));
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
    }
    for (const job of jobs) assert.ok(['succeeded', 'failed'].includes(job.status), JSON.stringify(job));
    assert.ok(!readdirSync(outside).some((name) => /databases|\.sql\.gz|partial/.test(name)));
    await untouched();
  });

  it('a multi-site export holds each site’s lock: a backup of one of its sites never runs beside its export', async () => {
    const exportRes = await t
      .http()
      .post('/v1/exports')
      .set(t.auth('operator'))
      .send({ sites: ['site7', 'site2'] });
    assert.equal(exportRes.status, 202, exportRes.text);
    const backupRes = await t
      .http()
      .post('/v1/sites/site7/backups')
      .set(t.auth('operator'))
      .send({ level: 'full', exportDatabases: false });
    assert.equal(backupRes.status, 202, backupRes.text);
    const exported = await waitForJob(t, exportRes.body.id);
    const backup = await waitForJob(t, backupRes.body.id);
    assert.equal(backup.status, 'succeeded', JSON.stringify(backup));
    const site7Steps = exported.steps.filter((step) => step.name.startsWith('export site7/'));
    assert.ok(site7Steps.length > 0, JSON.stringify(exported.steps));
    const from = Math.min(...site7Steps.map((step) => Date.parse(step.startedAt!)));
    const to = Math.max(...site7Steps.map((step) => Date.parse(step.finishedAt!)));
    const overlaps = Date.parse(backup.startedAt!) < to && Date.parse(backup.finishedAt!) > from;
    assert.equal(overlaps, false, `backup ${backup.startedAt}..${backup.finishedAt} vs export ${from}..${to}`);
    assert.equal(existsSync(join(exportDir(7), 'mysql')), true);
  });
});
