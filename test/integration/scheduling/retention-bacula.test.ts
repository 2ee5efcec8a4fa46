import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import { runJob } from '../../support/jobs';
import { addSampleSite, diffSnapshots, SITE_TREE, snapshotTree, type TreeSnapshot } from '../../support/site-tree';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { createPolicy, jobsOf, SimulatedTime, tickAndSettle } from './scheduling-support';

const PATHS = [...SITE_TREE.paths];
const EXCLUDE = [...SITE_TREE.exclude];
const DAY = 86_400_000;

interface Point {
  id: string;
  level: string;
  chain: string[];
  replay: { sets: number; bytes: number | null };
}

function storageBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

/**
 * Bacula under a policy: the scheduler's days are simulated (the director's job times are real, a day before them),
 * every job runs for real; each job gets its own volume, and the pool truncates purged volumes.
 */
describe('bacula backups that run and prune themselves', () => {
  let bacula: BaculaHarness;
  let t: TestApp;
  let time: SimulatedTime;
  let site: string;
  const states = new Map<string, TreeSnapshot>();
  const policyBody = {
    name: 'nightly-bacula',
    provider: 'bacula',
    schedules: { incremental: { cron: '0 2 * * *' } },
    retention: { fullDays: 36500, minFulls: 1, differentialDays: 36500, incrementalDays: 36500 },
    budget: { maxChain: 3 },
    exportDatabases: false,
  };
  let policyId = '';
  const slot0 = Math.ceil((Date.now() + DAY) / DAY) * DAY + 2 * 3_600_000;

  before(async () => {
    bacula = await startBacula({ maximumVolumeJobs: 1 });
    time = new SimulatedTime(new Date(slot0 - 3_600_000).toISOString());
    const root = tempDir();
    t = await startTestApp({ ...bacula.env, PROVIDERS: 'bacula', SCHEDULE_SPREAD_MINUTES: '0' }, root);
    site = await addSampleSite(t.config.virtualRoot, { largeFileBytes: 64 * 1024 });
  });
  after(async () => {
    time?.restore();
    await t?.close();
    await bacula?.stop();
  });

  const points = async (): Promise<Point[]> =>
    (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200)).body.items as Point[];

  it('turns the incremental that would exceed maxChain into a differential, at the right step', async () => {
    policyId = (await createPolicy(t, policyBody, ['site1'])).id;
    assert.equal((await tickAndSettle(t)).started.length, 0);
    for (let day = 0; day < 4; day++) {
      time.set(new Date(slot0 + day * DAY + 5_000).toISOString());
      writeFileSync(join(site, 'shadow/var/www/html/index.php'), `<?php // day ${day} ${'x'.repeat(day * 1000)}\n`);
      assert.equal((await tickAndSettle(t)).started.length, 1, `day ${day}`);
      states.set((await points())[0].id, await snapshotTree(site, PATHS, EXCLUDE));
    }
    const backups = await jobsOf(t, 'site1', 'backup');
    assert.ok(
      backups.every((job) => job.status === 'succeeded'),
      JSON.stringify(backups.map((j) => j.error)),
    );
    // Day 0 had no full (Bacula made one); days 1-2 incremental; day 3's incremental would replay 4 jobs.
    assert.deepEqual(
      backups.map((job) => job.result?.level),
      ['full', 'incremental', 'incremental', 'differential'],
    );
    assert.equal(backups[3].level, 'differential');
    assert.match(
      (backups[3].result?.notes as string[]).join(' '),
      /replay 4 backups, over maxChain 3; made a differential/,
    );
    const newest = (await points())[0];
    assert.equal(newest.level, 'differential');
    assert.equal(newest.replay.sets, 2);
    assert.ok((newest.replay.bytes ?? 0) > 0);
  });

  it('a dry run lists exactly what the real prune removes: the incrementals the differential made unneeded', async () => {
    const res = await t
      .http()
      .put(`/v1/policies/${policyId}`)
      .set(t.auth('admin'))
      .send({ ...policyBody, retention: { fullDays: 0, minFulls: 1, differentialDays: 0, incrementalDays: 0 } });
    assert.equal(res.status, 200, res.text);
    const all = await points();
    const incrementals = all
      .filter((p) => p.level === 'incremental')
      .map((p) => p.id)
      .sort();
    assert.equal(incrementals.length, 2);
    const dry = await runJob(t, '/v1/sites/site1/prune', { dryRun: true });
    assert.equal(dry.status, 'succeeded', JSON.stringify(dry));
    assert.deepEqual((dry.result?.remove as Array<{ id: string }>).map((p) => p.id).sort(), incrementals);
    assert.equal((await points()).length, all.length, 'a dry run removes nothing');

    const before = storageBytes(bacula.storageDir);
    const real = await runJob(t, '/v1/sites/site1/prune', { provider: 'bacula' }, 'admin');
    assert.equal(real.status, 'succeeded', JSON.stringify(real));
    assert.deepEqual((real.result?.removed as Array<{ id: string }>).map((p) => p.id).sort(), incrementals);
    const kept = await points();
    assert.deepEqual(
      kept.map((p) => p.level),
      ['differential', 'full'],
    );
    const after = storageBytes(bacula.storageDir);
    assert.ok(after < before, `the storage shrinks (${before} → ${after})`);
    assert.equal(real.result?.bytesFreed, before - after);
    const metrics = await t.http().get('/metrics').set(t.auth('monitor')).expect(200);
    assert.match(metrics.text, /apiscp_backup_prune_points_removed_total\{provider="bacula"\} 2/);
    assert.match(metrics.text, /apiscp_backup_prune_points_kept\{site="site1",provider="bacula"\} 2/);
  });

  it('restores every kept point exactly', async () => {
    for (const point of await points()) {
      const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point.id });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      const restored = await snapshotTree(job.result?.destination as string, PATHS, EXCLUDE);
      assert.deepEqual(diffSnapshots(states.get(point.id)!, restored), [], point.id);
    }
  });
});
