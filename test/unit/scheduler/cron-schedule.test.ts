import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CronSchedule, cronProblem } from '../../../src/scheduler/cron-schedule';
import type { Policy } from '../../../src/policies/policy';
import type { RestorePoint } from '../../../src/providers/backup-provider';
import { budgetDecision } from '../../../src/scheduler/replay-budget';
import { nextRunsOf, spreadOffsetMs } from '../../../src/scheduler/next-runs';

const iso = (date: Date | null) => date?.toISOString() ?? null;

describe('CronSchedule', () => {
  it('runs a daily slot once across both DST changes of its zone', () => {
    const daily = new CronSchedule('30 2 * * *', 'Europe/Berlin');
    const runs: string[] = [];
    let at = new Date('2026-03-27T12:00:00Z');
    for (let i = 0; i < 4; i++) runs.push(iso((at = daily.next(at)!))!);
    assert.deepEqual(runs, [
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z', // 02:30 does not exist: the first minute after the gap
      '2026-03-30T00:30:00.000Z',
      '2026-03-31T00:30:00.000Z',
    ]);
    at = new Date('2026-10-24T12:00:00Z');
    const autumn: string[] = [];
    for (let i = 0; i < 2; i++) autumn.push(iso((at = daily.next(at)!))!);
    assert.deepEqual(autumn, ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('reads steps on day fields and the first Sunday of a month', () => {
    const everyOtherDay = new CronSchedule('0 3 */2 * *');
    assert.equal(iso(everyOtherDay.next(new Date('2026-11-01T04:00:00Z'))), '2026-11-03T03:00:00.000Z');
    const firstSunday = new CronSchedule('0 2 * * 0#1');
    assert.equal(iso(firstSunday.next(new Date('2026-11-02T00:00:00Z'))), '2026-12-06T02:00:00.000Z');
  });

  it('finds the latest slot at or before a time, and the slots of a window', () => {
    const nightly = new CronSchedule('0 2 * * *');
    assert.equal(iso(nightly.latest(new Date('2026-11-02T02:00:00Z'))), '2026-11-02T02:00:00.000Z');
    assert.equal(iso(nightly.latest(new Date('2026-11-02T01:59:59Z'))), '2026-11-01T02:00:00.000Z');
    const quarter = new CronSchedule('*/15 * * * *');
    const slots = quarter.latestSince(new Date('2026-11-02T02:00:00Z'), new Date('2026-11-02T01:30:00Z'), 64);
    assert.deepEqual(slots.map(iso), [
      '2026-11-02T02:00:00.000Z',
      '2026-11-02T01:45:00.000Z',
      '2026-11-02T01:30:00.000Z',
    ]);
  });

  it('explains what is wrong with an expression or a zone', () => {
    assert.equal(cronProblem('0 2 * * *', 'UTC'), undefined);
    assert.match(cronProblem('0 2 * *')!, /five fields/);
    assert.match(cronProblem('0 2 * * * *')!, /five fields/);
    assert.match(cronProblem('61 2 * * *')!, /minute|Invalid/i);
    assert.match(cronProblem('0 2 * * *', 'Mars/Olympus')!, /time zone/);
  });
});

describe('spread and next runs', () => {
  it('gives each site a fixed offset inside the window', () => {
    const offsets = Array.from({ length: 1000 }, (_, i) => spreadOffsetMs(`site${i}`, 30));
    assert.ok(offsets.every((ms) => ms >= 0 && ms < 30 * 60_000 && ms % 1000 === 0));
    assert.ok(new Set(offsets).size > 500);
    assert.equal(spreadOffsetMs('site7', 30), spreadOffsetMs('site7', 30));
    assert.equal(spreadOffsetMs('site7', 0), 0);
    const policy = {
      id: 'p',
      provider: 'duplicity',
      schedules: { full: { cron: '0 2 * * *', timezone: 'UTC' } },
    } as unknown as Policy;
    const [run] = nextRunsOf(policy, 'site7', new Date('2026-11-02T02:00:00Z'), 30);
    const offset = spreadOffsetMs('site7', 30);
    // Just past the slot but before the site's offset: its run is today's slot plus its offset.
    assert.equal(run.at, new Date(Date.parse('2026-11-02T02:00:00Z') + offset).toISOString());
  });
});

describe('budgetDecision', () => {
  const point = (id: string, level: RestorePoint['level'], chain: string[], bytes: number): RestorePoint => ({
    id,
    provider: 'bacula',
    time: `2026-11-0${chain.length}T02:00:00Z`,
    level,
    chain,
    bytes,
    files: 1,
    state: 'complete',
    replay: { sets: chain.length, bytes: bytes * chain.length },
  });
  const chain3 = [
    point('a', 'full', ['a'], 100),
    point('b', 'incremental', ['a', 'b'], 10),
    point('c', 'incremental', ['a', 'b', 'c'], 10),
  ];

  it('turns the incremental that would pass maxChain into a differential, or a full without one', () => {
    assert.equal(budgetDecision(chain3, { maxChain: 4 }, ['full', 'differential', 'incremental']), null);
    const bacula = budgetDecision(chain3, { maxChain: 3 }, ['full', 'differential', 'incremental']);
    assert.equal(bacula?.level, 'differential');
    assert.match(bacula.note, /replay 4 backups, over maxChain 3/);
    assert.equal(budgetDecision(chain3, { maxChain: 3 }, ['full', 'incremental'])?.level, 'full');
  });

  it('counts bytes: the newest chain plus an incremental like the last one', () => {
    // Newest replay: 30 bytes (as reported) + 10 for the next incremental = 40.
    assert.equal(budgetDecision(chain3, { maxReplayBytes: 40 }, ['full', 'incremental']), null);
    assert.match(budgetDecision(chain3, { maxReplayBytes: 39 }, ['full', 'incremental'])!.note, /maxReplayBytes 39/);
    assert.equal(budgetDecision([], { maxChain: 1 }, ['full']), null);
    assert.equal(budgetDecision(chain3, undefined, ['full']), null);
  });
});
