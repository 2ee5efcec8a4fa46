import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { msUntilAfter, planRepair, sleepUntilAfter } from '../../../src/providers/duplicity/duplicity-chain-repair';

const F0 = '20261129T100000Z';
const T1 = '20261129T100010Z';
const T2 = '20261129T100011Z';

const full = (time: string, manifest = true): string[] => [
  ...(manifest ? [`duplicity-full.${time}.manifest`] : []),
  `duplicity-full.${time}.vol1.difftar.gz`,
  `duplicity-full-signatures.${time}.sigtar.gz`,
];
const inc = (from: string, to: string, manifest = true): string[] => [
  ...(manifest ? [`duplicity-inc.${from}.to.${to}.manifest`] : []),
  `duplicity-inc.${from}.to.${to}.vol1.difftar.gz`,
  `duplicity-new-signatures.${from}.to.${to}.sigtar.gz`,
];
/** What the archive dir holds for complete sets: plain manifests and signatures. */
const cached = (names: string[]): string[] => names.filter((n) => !n.includes('.vol'));

describe('planRepair', () => {
  it('a sound chain: nothing to do, the newest time is the newest set’s', () => {
    const target = [...full(F0), ...inc(F0, T1)];
    const plan = planRepair(target, [...cached(target), 'lockfile']);
    assert.deepEqual(plan, { remove: [], rename: [], clearArchive: false, notes: [], unsafe: null, newestTime: T1 });
  });

  it('a full in the second an incremental ended: renamed to the next second, the archive dir emptied', () => {
    const target = [...full(F0), ...inc(F0, T1), ...full(T1)];
    const plan = planRepair(target, cached(target));
    assert.deepEqual(
      plan.rename,
      full(T1).map((name) => [name, name.replace(T1, T2)]),
    );
    assert.equal(plan.unsafe, null);
    assert.equal(plan.clearArchive, true);
    assert.equal(plan.newestTime, T2);
    assert.match(plan.notes[0], /renamed it to 20261129T100011Z/);
  });

  it('a set without a manifest (a killed run) is removed with its local .part files', () => {
    const target = [...full(F0), ...inc(F0, T1, false)];
    const plan = planRepair(target, [...cached(full(F0)), `duplicity-inc.${F0}.to.${T1}.manifest.part`]);
    assert.deepEqual(plan.remove.sort(), inc(F0, T1, false).sort());
    assert.equal(plan.clearArchive, true);
    assert.equal(plan.newestTime, F0);
  });

  it('stale local signatures of a set the target lacks empty the archive dir', () => {
    const plan = planRepair(full(F0), [...cached(full(F0)), ...cached(inc(F0, T1))]);
    assert.deepEqual(plan.remove, []);
    assert.equal(plan.clearArchive, true);
    assert.match(plan.notes[0], /emptied the local archive dir/);
  });

  it('encrypted target names match the archive dir’s plain copies', () => {
    const target = [
      `duplicity-full.${F0}.manifest.gpg`,
      `duplicity-full.${F0}.vol1.difftar.gpg`,
      `duplicity-full-signatures.${F0}.sigtar.gpg`,
    ];
    const plan = planRepair(target, [`duplicity-full.${F0}.manifest`, `duplicity-full-signatures.${F0}.sigtar.gz`]);
    assert.equal(plan.clearArchive, false);
  });

  it('a collision it cannot untangle fails safe, naming the files to remove', () => {
    // A set built on the shared second: which chain it extends cannot be told.
    const target = [...full(F0), ...inc(F0, T1), ...full(T1), ...inc(T1, '20261129T100020Z')];
    const plan = planRepair(target, []);
    assert.deepEqual(plan.rename, []);
    assert.match(plan.unsafe!, /end in the same second \(20261129T100010Z\)/);
    assert.match(plan.unsafe!, /duplicity-full\.20261129T100010Z\.manifest/);
    assert.match(plan.unsafe!, /duplicity-inc\.20261129T100010Z\.to\.20261129T100020Z\.manifest/);
  });
});

describe('msUntilAfter', () => {
  it('waits until the second after the newest set, never negative', () => {
    const end = Date.UTC(2026, 10, 29, 10, 0, 10);
    assert.equal(msUntilAfter(T1, end + 300), 700);
    assert.equal(msUntilAfter(T1, end + 1000), 0);
    assert.equal(msUntilAfter(T1, end + 5000), 0);
    assert.equal(msUntilAfter(null, end), 0);
  });
});

describe('sleepUntilAfter', () => {
  it("returns only once the clock has left the newest set's second, even when a timer fires early", async () => {
    // A clock half-way through the newest set's second (T1), moving with real time; timers here fire 3 ms before their
    // end, as a real one can by a millisecond against the wall clock.
    const started = Date.now();
    const clock = (): number => Date.UTC(2026, 10, 29, 10, 0, 10, 500) + (Date.now() - started);
    const realSetTimeout = globalThis.setTimeout;
    let timers = 0;
    globalThis.setTimeout = ((fn: () => void, ms: number) => {
      timers++;
      return realSetTimeout(fn, Math.max(0, ms - 3));
    }) as typeof setTimeout;
    try {
      await sleepUntilAfter(T1, clock, new AbortController().signal);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    const firstFree = Date.UTC(2026, 10, 29, 10, 0, 11);
    assert.ok(clock() >= firstFree, `returned ${firstFree - clock()} ms before the next second`);
    assert.ok(timers >= 1);
  });

  it('does not wait when the newest set is older, and stops at once on abort', async () => {
    await sleepUntilAfter('20200101T000000Z', Date.now, new AbortController().signal);
    const newest = new Date(Date.now() + 60_000).toISOString().replace(/[-:]|\.\d+/g, '');
    const aborted = new AbortController();
    aborted.abort(new Error('cancelled'));
    await assert.rejects(sleepUntilAfter(newest, Date.now, aborted.signal), /cancelled/);
  });
});
