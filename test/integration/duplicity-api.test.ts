import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { assertProblem } from '../support/problem';
import { startAppWithSampleSite } from '../support/site-app';
import { diffSnapshots, mutateSiteTree, SITE_TREE, snapshotTree, type TreeSnapshot } from '../support/site-tree';
import { tempDir, type TestApp } from '../support/test-app';
import { nextWholeSecond } from '../support/wait';

const PATHS = [...SITE_TREE.paths];
const EXCLUDE = [...SITE_TREE.exclude];

function setUp(env: Record<string, string> = {}): Promise<{ t: TestApp; site: string }> {
  return startAppWithSampleSite(env, { largeFileBytes: 4 * 1024 * 1024 });
}

describe('duplicity through the API: back up, list, restore exactly', () => {
  let t: TestApp;
  let site: string;
  const states: TreeSnapshot[] = [];
  const jobs: JobBody[] = [];

  before(async () => {
    ({ t, site } = await setUp());
  });
  after(() => t.close());

  it('makes a full backup, then incrementals, each a job that succeeds', async () => {
    states.push(await snapshotTree(site, PATHS, EXCLUDE));
    const full = await runJob(t, '/v1/sites/site1/backups', { level: 'full' });
    assert.equal(full.status, 'succeeded', JSON.stringify(full));
    assert.deepEqual(
      full.steps.map((s) => [s.name, s.status]),
      [
        ['backup', 'succeeded'],
        ['restore-points', 'succeeded'],
      ],
    );
    jobs.push(full);
    for (const step of [1, 2]) {
      // duplicity compares whole-second mtimes: a change in the same second as the last read would go unseen.
      await nextWholeSecond();
      await mutateSiteTree(site, step);
      states.push(await snapshotTree(site, PATHS, EXCLUDE));
      const incremental = await runJob(t, `/v1/sites/${SITE_TREE.domain}/backups`, { level: 'incremental' });
      assert.equal(incremental.status, 'succeeded', JSON.stringify(incremental));
      assert.equal(incremental.result?.level, 'incremental');
      assert.equal(incremental.progress.percent, 100);
      assert.ok((incremental.progress.bytes ?? 0) > 4 * 1024 * 1024, "bytes read, from duplicity's statistics");
      jobs.push(incremental);
    }
  });

  it('lists the restore points newest first, each with its chain back to the full', async () => {
    const res = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200);
    const points = res.body.items as Array<{
      id: string;
      level: string;
      chain: string[];
      state: string;
      provider: string;
    }>;
    assert.equal(points.length, 3);
    const [newest, middle, oldest] = points;
    assert.deepEqual(
      points.map((p) => p.level),
      ['incremental', 'incremental', 'full'],
    );
    assert.ok(points.every((p) => p.state === 'complete' && p.provider === 'duplicity'));
    assert.deepEqual(oldest.chain, [oldest.id]);
    assert.deepEqual(middle.chain, [oldest.id, middle.id]);
    assert.deepEqual(newest.chain, [oldest.id, middle.id, newest.id]);
    assert.equal(jobs[2].result?.restorePoint, newest.id);
    // Paging walks the same list.
    const first = await t.http().get('/v1/sites/site1/restore-points?limit=2').set(t.auth('monitor')).expect(200);
    const second = await t
      .http()
      .get(`/v1/sites/site1/restore-points?limit=2&cursor=${first.body.nextCursor}`)
      .set(t.auth('monitor'))
      .expect(200);
    assert.deepEqual(
      [...first.body.items, ...second.body.items].map((p: { id: string }) => p.id),
      points.map((p) => p.id),
    );
    assert.equal(second.body.nextCursor, null);
  });

  it('restores each point into staging, identical to the source at that point (content, modes, owners, links, xattrs, ACLs)', async () => {
    const points = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items.reverse();
    for (const [index, point] of points.entries()) {
      const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point.id });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      const destination = job.result?.destination as string;
      assert.ok(destination.startsWith(t.config.dataDir), destination);
      assert.deepEqual(job.result?.chain, point.chain);
      const restored = await snapshotTree(destination, PATHS, EXCLUDE);
      assert.deepEqual(diffSnapshots(states[index], restored), [], `point ${index} (${point.id})`);
      assert.ok(!existsSync(join(destination, SITE_TREE.databaseFile)), 'raw database files are never in a backup');
    }
  });

  it('restores only the asked-for paths', async () => {
    const newest = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items[0];
    const job = await runJob(t, '/v1/sites/site1/restores', {
      restorePoint: newest.id,
      paths: [SITE_TREE.aclFile, 'info'],
    });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const destination = job.result?.destination as string;
    assert.deepEqual(readdirSync(destination).sort(), ['info', 'shadow']);
    const restored = await snapshotTree(destination, [SITE_TREE.aclFile, 'info']);
    const expected = await snapshotTree(site, [SITE_TREE.aclFile, 'info']);
    assert.deepEqual(diffSnapshots(expected, restored), []);
    assert.ok(!existsSync(join(destination, SITE_TREE.plainFile)));
  });

  it('restores in place (admin) by swapping, keeping shadow/var/lib untouched', async () => {
    const oldest = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items.at(-1);
    const forbidden = await t
      .http()
      .post('/v1/sites/site1/restores')
      .set(t.auth('operator'))
      .send({ restorePoint: oldest.id, target: 'in-place' });
    assertProblem(forbidden, 403, 'forbidden');
    const dbFile = join(site, SITE_TREE.databaseFile);
    writeFileSync(dbFile, 'live database bytes');
    const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: oldest.id, target: 'in-place' }, 'admin');
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.deepEqual(diffSnapshots(states[0], await snapshotTree(site, PATHS, EXCLUDE)), []);
    assert.equal(readFileSync(dbFile, 'utf8'), 'live database bytes');
    assert.deepEqual(
      readdirSync(t.config.virtualRoot).filter((name) => name.startsWith('.restore')),
      [],
      'no temporary sibling left behind',
    );
  });

  it('refuses what duplicity cannot do and bad restore requests, changing nothing', async () => {
    const before = (await t.http().get('/v1/sites/site1/backups').set(t.auth('monitor'))).body.items.length;
    const differential = await t
      .http()
      .post('/v1/sites/site1/backups')
      .set(t.auth('operator'))
      .send({ level: 'differential' });
    assertProblem(differential, 422, 'level-not-supported');
    assert.match(differential.body.detail, /differential/);
    assertProblem(
      await t.http().post('/v1/sites/site1/backups').set(t.auth('operator')).send({ level: 'weekly' }),
      400,
      'validation-failed',
    );
    assertProblem(
      await t
        .http()
        .post('/v1/sites/site1/backups')
        .set(t.auth('operator'))
        .send({ level: 'full', provider: 'bacula' }),
      422,
      'provider-not-enabled',
    );
    assertProblem(
      await t.http().post('/v1/sites/site9/backups').set(t.auth('operator')).send({ level: 'full' }),
      404,
      'site-not-found',
    );
    assert.equal((await t.http().get('/v1/sites/site1/backups').set(t.auth('monitor'))).body.items.length, before);

    const newest = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items[0];
    assertProblem(
      await t
        .http()
        .post('/v1/sites/site1/restores')
        .set(t.auth('operator'))
        .send({ restorePoint: 'duplicity-20000101T000000Z' }),
      404,
      'restore-point-not-found',
    );
    for (const paths of [
      ['../etc/passwd'],
      ['/etc/passwd'],
      ['shadow/../../x'],
      ['tmp'],
      ['shadow/var/lib/mysql'],
      'shadow',
    ]) {
      const res = await t
        .http()
        .post('/v1/sites/site1/restores')
        .set(t.auth('operator'))
        .send({ restorePoint: newest.id, paths });
      assertProblem(res, 400, 'validation-failed');
    }
  });

  it('lists the site backup jobs newest first and serves each job log', async () => {
    const res = await t.http().get('/v1/sites/site1/backups').set(t.auth('monitor')).expect(200);
    assert.equal(res.body.items.length, 3);
    assert.deepEqual(
      res.body.items.map((j: { level: string }) => j.level),
      ['incremental', 'incremental', 'full'],
    );
    const log = await t.http().get(`/v1/jobs/${res.body.items[2].id}/log`).set(t.auth('monitor')).expect(200);
    assert.match(String(log.headers['content-type']), /^text\/plain/);
    assert.match(log.text, /duplicity full/);
    assert.match(log.text, /job succeeded/);
  });
});

describe('duplicity with encryption', () => {
  it('backs up encrypted and restores exactly; the passphrase never shows in argv, logs or responses', async () => {
    const passphraseFile = join(tempDir(), 'passphrase');
    const passphrase = 'correct horse battery staple 42';
    writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
    const { t, site } = await setUp({ DUPLICITY_PASSPHRASE_FILE: passphraseFile });
    try {
      const source = await snapshotTree(site, PATHS, EXCLUDE);
      const start = await t
        .http()
        .post('/v1/sites/site1/backups')
        .set(t.auth('operator'))
        .send({ level: 'full' })
        .expect(202);
      const seenArgv: string[] = [];
      const running = await waitForJob(t, start.body.id, (job) => {
        for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
          try {
            seenArgv.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
          } catch {
            // exited
          }
        }
        return ['succeeded', 'failed'].includes(job.status);
      });
      assert.equal(running.status, 'succeeded', JSON.stringify(running));
      assert.ok(
        seenArgv.every((argv) => !argv.includes(passphrase)),
        'passphrase not in any argv',
      );
      const target = t.config.duplicity.target.replace('file://', '');
      assert.ok(
        readdirSync(join(target, 'site1')).some((name) => name.endsWith('.difftar.gpg')),
        'volumes are encrypted',
      );

      const points = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items;
      const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: points[0].id });
      assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
      assert.deepEqual(
        diffSnapshots(source, await snapshotTree(restore.result?.destination as string, PATHS, EXCLUDE)),
        [],
      );

      const log = await t.http().get(`/v1/jobs/${start.body.id}/log`).set(t.auth('monitor'));
      assert.ok(!log.text.includes(passphrase));
      assert.ok(
        t.logs.every((line) => !line.includes(passphrase)),
        'passphrase not in service logs',
      );
      const providers = await t.http().get('/v1/providers').set(t.auth('monitor'));
      assert.deepEqual(providers.body[0].warnings, []);
      assert.ok(!JSON.stringify(providers.body).includes(passphrase));
    } finally {
      await t.close();
    }
  });
});
