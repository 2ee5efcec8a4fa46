import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Retention } from '../../../src/policies/policy';
import type { RestorePoint } from '../../../src/providers/backup-provider';
import type { BackupLevel } from '../../../src/jobs/backup-level';
import { planRetention } from '../../../src/retention/retention-rules';

const DAY = 86_400_000;
const START = Date.parse('2026-11-01T02:00:00Z'); // a Sunday

/** Builds points as Bacula chains them: a differential skips the incrementals before it. */
function baculaPoints(levels: BackupLevel[], start = START): RestorePoint[] {
  let full: string | null = null;
  let diff: string | null = null;
  let incs: string[] = [];
  return levels.map((level, day) => {
    const id = `p${day}`;
    if (level === 'full') [full, diff, incs] = [id, null, []];
    else if (level === 'differential') [diff, incs] = [id, []];
    else incs.push(id);
    const chain =
      level === 'full' ? [id] : level === 'differential' ? [full!, id] : [full!, ...(diff ? [diff] : []), ...incs];
    return point(id, start + day * DAY, level, chain);
  });
}

/** Duplicity chains: every incremental replays the full and every incremental before it. */
function duplicityPoints(levels: BackupLevel[], start = START): RestorePoint[] {
  let chain: string[] = [];
  return levels.map((level, day) => {
    const id = `d${day}`;
    chain = level === 'full' ? [id] : [...chain, id];
    return point(id, start + day * DAY, level, [...chain]);
  });
}

function point(id: string, time: number, level: BackupLevel, chain: string[]): RestorePoint {
  return {
    id,
    provider: 'bacula',
    time: new Date(time).toISOString(),
    level,
    chain,
    bytes: 1,
    files: 1,
    state: 'complete',
  };
}

/** The ApisCP add-in's weekly cycle: Full on the first Sunday, Differential other Sundays, Incremental on weekdays. */
function weeklyCycle(days: number): BackupLevel[] {
  return Array.from({ length: days }, (_, day) => {
    const date = new Date(START + day * DAY);
    if (date.getUTCDay() !== 0) return 'incremental';
    return date.getUTCDate() <= 7 ? 'full' : 'differential';
  });
}

const ids = (entries: Array<{ point: RestorePoint }>) => entries.map((entry) => entry.point.id).sort();

describe('planRetention', () => {
  it('keeps on the weekly cycle exactly the fulls, differentials and incrementals of the policy', () => {
    const points = baculaPoints(weeklyCycle(36)); // Nov 1 .. Dec 6 (a second first Sunday)
    const retention: Retention = { fullDays: 60, minFulls: 1, differentialDays: 20, incrementalDays: 4 };
    const now = new Date(START + 35 * DAY + 3_600_000);
    const plan = planRetention(points, retention, now, 'point');
    // Fulls: day 0 and day 35. Differentials within 20 days: days 21, 28 (day 14 is 21 days old).
    // Incrementals within 4 days: days 31..34. Their chains need full 0, differential 28 and the incrementals of days
    // 29 and 30 (each Bacula incremental builds on the one before). Day 35 is the newest.
    assert.deepEqual(ids(plan.keep), ['p0', 'p21', 'p28', 'p29', 'p30', 'p31', 'p32', 'p33', 'p34', 'p35'].sort());
    assert.match(plan.keep.find((entry) => entry.point.id === 'p29')!.reason, /needed to restore/);
    assert.equal(plan.keep.length + plan.remove.length, points.length);
    assert.match(plan.keep.find((entry) => entry.point.id === 'p28')!.reason, /differential younger/);
  });

  it('keeps the incrementals a kept incremental replays, back to the full (duplicity) and whole chains only', () => {
    // Monthly full, daily incremental: two chains of 30 days, then 5 days of a third.
    const levels = Array.from({ length: 65 }, (_, day): BackupLevel => (day % 30 === 0 ? 'full' : 'incremental'));
    const points = duplicityPoints(levels);
    const retention: Retention = { fullDays: 35, minFulls: 1, differentialDays: 0, incrementalDays: 3 };
    const now = new Date(START + 64 * DAY);
    const plan = planRetention(points, retention, now, 'chain');
    // The full of day 30 is 34 days old: kept, so its whole chain (days 30..59) is kept; chain 0..29 goes.
    assert.deepEqual(ids(plan.remove), Array.from({ length: 30 }, (_, day) => `d${day}`).sort());
    const perPoint = planRetention(points, retention, now, 'point');
    // Point by point, only the full of day 30 and the incrementals since day 61 with their chain stay.
    assert.ok(perPoint.remove.length > plan.remove.length);
  });

  it('never removes the newest complete chain, even past every retention', () => {
    const points = duplicityPoints(['full', 'incremental', 'incremental']);
    const plan = planRetention(
      points,
      { fullDays: 0, minFulls: 0, differentialDays: 0, incrementalDays: 0 },
      new Date(START + 400 * DAY),
      'point',
    );
    assert.deepEqual(ids(plan.keep), ['d0', 'd1', 'd2']);
    assert.equal(plan.remove.length, 0);
  });

  it('leaves incomplete and orphaned sets alone', () => {
    const points = duplicityPoints(['full', 'incremental']);
    points.push({ ...point('x', START + 5 * DAY, 'incremental', ['x']), state: 'incomplete' });
    const plan = planRetention(
      points,
      { fullDays: 0, minFulls: 1, differentialDays: 0, incrementalDays: 0 },
      new Date(START + 9 * DAY),
      'point',
    );
    assert.deepEqual(
      plan.untouched.map((p) => p.id),
      ['x'],
    );
    assert.ok(!ids(plan.remove).includes('x'));
  });

  it('holds its invariants on any history (property)', () => {
    const level = fc.constantFrom<BackupLevel>('full', 'differential', 'incremental', 'incremental');
    fc.assert(
      fc.property(
        fc.array(level, { minLength: 1, maxLength: 60 }),
        fc.record({
          fullDays: fc.integer({ min: 0, max: 40 }),
          minFulls: fc.integer({ min: 0, max: 3 }),
          differentialDays: fc.integer({ min: 0, max: 30 }),
          incrementalDays: fc.integer({ min: 0, max: 10 }),
        }),
        fc.integer({ min: 0, max: 90 }),
        fc.constantFrom<'point' | 'chain'>('point', 'chain'),
        (levels, retention, extraDays, unit) => {
          levels[0] = 'full';
          const points =
            unit === 'chain'
              ? duplicityPoints(levels.map((l) => (l === 'differential' ? 'incremental' : l)))
              : baculaPoints(levels);
          const now = new Date(START + (levels.length + extraDays) * DAY);
          const plan = planRetention(points, retention, now, unit);
          const kept = new Set(plan.keep.map((entry) => entry.point.id));
          // Every point is decided once.
          assert.equal(kept.size + plan.remove.length, points.length);
          // The newest point and everything a kept point replays are kept.
          assert.ok(kept.has(points[points.length - 1].id));
          for (const entry of plan.keep) for (const member of entry.point.chain) assert.ok(kept.has(member));
          // Nothing young enough to keep is removed.
          for (const { point: p } of plan.remove) {
            const age = now.getTime() - Date.parse(p.time);
            const days =
              p.level === 'full'
                ? retention.fullDays
                : p.level === 'differential'
                  ? retention.differentialDays
                  : retention.incrementalDays;
            assert.ok(age > days * DAY, `${p.id} removed at age ${age / DAY} d`);
          }
          if (unit === 'chain' && plan.remove.length > 0) {
            // Removed points are the oldest ones: a prefix in time, made of whole chains.
            const newestRemoved = Math.max(...plan.remove.map((entry) => Date.parse(entry.point.time)));
            for (const entry of plan.keep) assert.ok(Date.parse(entry.point.time) > newestRemoved);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
