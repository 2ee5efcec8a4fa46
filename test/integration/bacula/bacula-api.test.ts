import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import { runJob } from '../../support/jobs';
import { assertProblem } from '../../support/problem';
import { startAppWithSampleSite } from '../../support/site-app';
import { diffSnapshots, mutateSiteTree, SITE_TREE, snapshotTree, type TreeSnapshot } from '../../support/site-tree';
import type { TestApp } from '../../support/test-app';
import { nextWholeSecond } from '../../support/wait';

const PATHS = [...SITE_TREE.paths];
const EXCLUDE = [...SITE_TREE.exclude];

/** The same API drives Bacula as duplicity: full, differential, incremental, chains, exact restores. */
describe('bacula through the API', () => {
  let bacula: BaculaHarness;
  let t: TestApp;
  let site: string;
  const states = new Map<string, TreeSnapshot>();

  before(async () => {
    bacula = await startBacula();
    ({ t, site } = await startAppWithSampleSite(
      { ...bacula.env, PROVIDERS: 'bacula,duplicity' },
      { largeFileBytes: 1024 * 1024 },
    ));
  });
  after(async () => {
    await t?.close();
    await bacula?.stop();
  });

  it('lists bacula as available with its three levels', async () => {
    const res = await t.http().get('/v1/providers').set(t.auth('monitor')).expect(200);
    const provider = res.body.find((p: { name: string }) => p.name === 'bacula');
    assert.deepEqual(provider.levels, ['full', 'differential', 'incremental']);
    assert.equal(provider.available, true, JSON.stringify(provider));
    assert.equal(provider.default, true);
  });

  it('full → differential → incremental → incremental, each point with the seed’s chain', async () => {
    const levels = ['full', 'differential', 'incremental', 'incremental'] as const;
    const jobs: string[] = [];
    for (const [index, level] of levels.entries()) {
      if (index > 0) {
        await nextWholeSecond(); // duplicity, and Bacula's mtime checks, see a change by the second
        await mutateSiteTree(site, index);
      }
      const job = await runJob(t, '/v1/sites/site1/backups', { level, provider: 'bacula' });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      assert.equal(job.result?.level, level);
      const point = job.result?.restorePoint as string;
      assert.match(point, /^bacula-\d+$/);
      states.set(point, await snapshotTree(site, PATHS, EXCLUDE));
      jobs.push(point);
    }
    const res = await t.http().get('/v1/sites/site1/restore-points?provider=bacula').set(t.auth('monitor')).expect(200);
    const points = res.body.items as Array<{ id: string; level: string; chain: string[]; state: string }>;
    assert.deepEqual(
      points.map((p) => p.id),
      [...jobs].reverse(),
    );
    const [full, differential, inc1, inc2] = jobs;
    const chainOf = (id: string) => points.find((p) => p.id === id)!.chain;
    assert.deepEqual(chainOf(full), [full]);
    assert.deepEqual(chainOf(differential), [full, differential]);
    assert.deepEqual(chainOf(inc1), [full, differential, inc1]);
    assert.deepEqual(
      chainOf(inc2),
      [full, differential, inc1, inc2],
      'the last incremental replays full, differential, incrementals after it',
    );
  });

  it('restores every point to staging, identical to the source at that point, xattrs and default ACLs included', async () => {
    for (const [point, state] of states) {
      const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      const restored = await snapshotTree(job.result?.destination as string, PATHS, EXCLUDE);
      assert.deepEqual(diffSnapshots(state, restored), [], point);
    }
  });

  it('refuses a provider that is not enabled and a level it cannot do, through the same errors', async () => {
    assertProblem(
      await t
        .http()
        .post('/v1/sites/site1/backups')
        .set(t.auth('operator'))
        .send({ level: 'differential', provider: 'duplicity' }),
      422,
      'level-not-supported',
    );
  });

  it('a stopped file daemon fails the job fast and clearly, and /v1/providers stays honest', async () => {
    await bacula.stopDaemon('fd');
    try {
      const started = Date.now();
      const job = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', provider: 'bacula' });
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'provider-unavailable', JSON.stringify(job.error));
      assert.match(job.error.message, /file daemon|client/i);
      assert.ok(Date.now() - started < 30_000, 'fails within seconds');
    } finally {
      await bacula.startDaemon('fd');
    }
  });
});
