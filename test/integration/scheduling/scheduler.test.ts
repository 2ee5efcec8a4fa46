import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SchedulerService } from '../../../src/scheduler/scheduler.service';
import { makeSites } from '../../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { createPolicy, jobsOf, settle, SimulatedTime, tickAndSettle } from './scheduling-support';

const HOUR = 3_600_000;
const RETENTION = { fullDays: 30, minFulls: 1, differentialDays: 0, incrementalDays: 30 };

/** Starts (or restarts) the service on `root`, which survives a `stop`. */
async function start(root: string): Promise<TestApp> {
  const t = await startTestApp(
    { DUPLICITY_TARGET: `file://${root}/target`, SCHEDULE_SPREAD_MINUTES: '0', SHUTDOWN_GRACE_SECONDS: '30' },
    root,
  );
  return t;
}

/** Stops the service and keeps its DATA_DIR (TestApp.close would remove it). */
async function stop(t: TestApp): Promise<void> {
  await t.app.close();
}

describe('the scheduler over simulated time (real duplicity jobs on bare sites)', () => {
  let time: SimulatedTime;
  const roots: string[] = [];

  before(() => {
    time = new SimulatedTime('2026-11-02T00:00:00Z');
  });
  after(async () => {
    time.restore();
    const { rmSync } = await import('node:fs');
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });

  it('makes one job per slot across two callers and a restart in the middle of it, and runs a missed night once at start', async () => {
    const root = tempDir();
    roots.push(root);
    time.set('2026-11-02T01:00:00Z');
    let t = await start(root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.test' }]);
    await createPolicy(
      t,
      {
        name: 'nightly',
        provider: 'duplicity',
        schedules: { incremental: { cron: '0 2 * * *' } },
        retention: RETENTION,
      },
      ['site1'],
    );
    // First sight of the site: the current slot (Nov 1, 02:00) is recorded, not run.
    const first = await tickAndSettle(t);
    assert.equal(first.started.length, 0);
    assert.equal(first.baselined, 1);

    time.set('2026-11-02T02:00:05Z');
    // Two callers at once (a timer tick and a start-up tick): still one job for the slot.
    const scheduler = t.app.get(SchedulerService);
    const ticks = await Promise.all([scheduler.tick(), scheduler.tick()]);
    assert.equal(ticks[0], ticks[1], 'concurrent callers share one evaluation');
    assert.equal(ticks[0].started.length, 1);
    // Restart while the slot's job is queued or running: the new process must not make another.
    await stop(t);
    t = await start(root);
    await settle(t);
    const again = await tickAndSettle(t);
    assert.equal(again.started.length, 0);
    let backups = await jobsOf(t, 'site1', 'backup');
    assert.equal(backups.length, 1, JSON.stringify(backups.map((job) => job.status)));
    assert.equal((backups[0] as unknown as { requestedBy: string }).requestedBy, 'schedule');
    assert.equal(backups[0].level, 'incremental');

    // Down for three nights: at start, the missed slots run once (anacron), not three times.
    await stop(t);
    time.set('2026-11-05T09:00:00Z');
    t = await start(root);
    await settle(t);
    await tickAndSettle(t);
    backups = await jobsOf(t, 'site1', 'backup');
    assert.equal(backups.length, 2, JSON.stringify(backups.map((job) => job.createdAt)));
    assert.equal(backups[1].status, 'succeeded', JSON.stringify(backups[1]));
    assert.match(String((backups[1].result?.notes as string[])[0]), /slot 2026-11-05T02:00:00.000Z/);
    // And nothing more until the next night.
    time.set('2026-11-06T01:59:00Z');
    assert.equal((await tickAndSettle(t)).started.length, 0);
    time.set('2026-11-06T02:00:00Z');
    assert.equal((await tickAndSettle(t)).started.length, 1);
    await t.close();
  });

  it('runs each daily slot once across both DST changes (Europe/Berlin)', async () => {
    const root = tempDir();
    roots.push(root);
    time.set('2026-03-28T11:00:00Z');
    const t = await start(root);
    try {
      makeSites(t.config.virtualRoot, [{ n: 1 }]);
      await createPolicy(
        t,
        {
          name: 'berlin',
          provider: 'duplicity',
          schedules: { incremental: { cron: '30 2 * * *', timezone: 'Europe/Berlin' } },
          retention: RETENTION,
        },
        ['site1'],
      );
      const started: string[] = [];
      const walk = async (from: string, to: string) => {
        time.set(from);
        while (Date.parse(time.iso) <= Date.parse(to)) {
          const summary = await tickAndSettle(t);
          started.push(...summary.started.map(() => time.iso));
          time.advance(HOUR / 4);
        }
      };
      // Spring forward on March 29 (02:30 does not exist that night), fall back on October 25 (02:30 happens twice).
      await walk('2026-03-28T12:00:00Z', '2026-03-30T06:00:00Z');
      await walk('2026-10-24T12:00:00Z', '2026-10-26T06:00:00Z');
      const slots = (await jobsOf(t, 'site1', 'backup')).map(
        (job) => /slot (\S+)/.exec(String((job.result?.notes as string[] | undefined)?.[0]))?.[1],
      );
      assert.deepEqual(slots, [
        '2026-03-29T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST, the first minute after the gap
        '2026-03-30T00:30:00.000Z',
        // After seven months away, the missed slots run once, at the first tick back (Oct 24, 12:00).
        '2026-10-24T00:30:00.000Z',
        '2026-10-25T00:30:00.000Z', // once, at the first 02:30 (CEST), though 02:30 happened twice
        '2026-10-26T01:30:00.000Z',
      ]);
      assert.equal(started.length, slots.length);
    } finally {
      await t.close();
    }
  });

  it('spreads many sites over SCHEDULE_SPREAD_MINUTES after the slot, each at a fixed offset', async () => {
    const root = tempDir();
    roots.push(root);
    time.set('2026-11-02T00:00:00Z');
    const t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target`, SCHEDULE_SPREAD_MINUTES: '30' }, root);
    try {
      const sites = Array.from({ length: 40 }, (_, i) => ({ n: i + 1 }));
      makeSites(t.config.virtualRoot, sites);
      await createPolicy(
        t,
        { name: 'nightly', provider: 'duplicity', schedules: { full: { cron: '0 2 * * *' } }, retention: RETENTION },
        sites.map(({ n }) => `site${n}`),
      );
      const starts: number[] = [];
      for (const { n } of sites) {
        const effective = await t.http().get(`/v1/sites/site${n}/policy`).set(t.auth('monitor')).expect(200);
        starts.push(Date.parse(effective.body.nextRuns[0].at));
      }
      const slot = Date.parse('2026-11-02T02:00:00Z');
      assert.ok(starts.every((at) => at >= slot && at < slot + 30 * 60_000));
      assert.ok(new Set(starts).size >= 30, `only ${new Set(starts).size} distinct start times`);
      // Nothing starts before a site's own time.
      const first = Math.min(...starts);
      time.set(new Date(first - 1000).toISOString());
      await tickAndSettle(t);
      time.set(new Date(first).toISOString());
      const summary = await t.app.get(SchedulerService).tick();
      assert.equal(summary.started.length, starts.filter((at) => at === first).length);
      await settle(t);
    } finally {
      await t.close();
    }
  });
});
