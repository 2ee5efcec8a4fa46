import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collectionFromNames, hasCompleteFull } from '../../../src/providers/duplicity/duplicity-chains';
import { toRestorePoints } from '../../../src/providers/duplicity/duplicity-collection-status';

const A = '20261101T020000Z';
const B = '20261102T020000Z';
const C = '20261103T020000Z';
const D = '20261104T020000Z';
const E = '20261105T020000Z';

const full = (time: string, manifest = true, volumes = 1): string[] => [
  ...(manifest ? [`duplicity-full.${time}.manifest.gpg`] : []),
  ...Array.from({ length: volumes }, (_, i) => `duplicity-full.${time}.vol${i + 1}.difftar.gpg`),
  `duplicity-full-signatures.${time}.sigtar.gpg`,
];
const inc = (from: string, to: string, manifest = true): string[] => [
  ...(manifest ? [`duplicity-inc.${from}.to.${to}.manifest.gpg`] : []),
  `duplicity-inc.${from}.to.${to}.vol1.difftar.gpg`,
  `duplicity-new-signatures.${from}.to.${to}.sigtar.gpg`,
];

describe('collectionFromNames', () => {
  it('builds chains oldest first, each full with the incrementals that extend it; the newest chain is primary', () => {
    const status = collectionFromNames([...inc(C, D), ...full(A, true, 3), ...inc(A, B), ...full(C), 'lockfile']);
    assert.deepEqual(
      status.chains.map((chain) => ({ primary: chain.primary, sets: chain.sets.map((set) => [set.type, set.time]) })),
      [
        {
          primary: false,
          sets: [
            ['full', A],
            ['inc', B],
          ],
        },
        {
          primary: true,
          sets: [
            ['full', C],
            ['inc', D],
          ],
        },
      ],
    );
    assert.equal(status.chains[0].sets[0].volumes, 3);
    assert.equal(status.chains[0].sets[0].encrypted, true);
    assert.equal(status.orphanedSets, 0);
    assert.equal(status.incompleteSets, 0);
  });

  it('a set without a manifest (a killed run) is no point; an incremental whose base is gone is orphaned', () => {
    const status = collectionFromNames([...full(A), ...inc(A, B, false), ...inc(C, D)]);
    assert.equal(status.incompleteSets, 1);
    assert.deepEqual(
      status.orphaned.map((set) => set.time),
      [D],
    );
    const points = toRestorePoints(status);
    assert.deepEqual(
      points.map((point) => [point.id, point.state, point.chain.length]),
      [
        [`duplicity-${D}`, 'orphaned', 1],
        [`duplicity-${A}`, 'complete', 1],
      ],
    );
  });

  it('restore points carry the chain back to the full, and a .part manifest in the archive dir marks a point incomplete', () => {
    const status = collectionFromNames([...full(A), ...inc(A, B), ...inc(B, C), ...inc(C, E)]);
    const points = toRestorePoints(status, 'duplicity', {
      partialSets: [{ type: 'inc', time: E, iso: '2026-11-05T02:00:00.000Z', startTime: C }],
    });
    assert.deepEqual(
      points[0].chain,
      [A, B, C, E].map((time) => `duplicity-${time}`),
    );
    assert.equal(points[0].state, 'incomplete');
    assert.equal(points[1].state, 'complete');
  });

  it('an empty target has no chains', () => {
    assert.deepEqual(collectionFromNames([]).chains, []);
  });
});

describe('hasCompleteFull', () => {
  it('is true only when a full set has its manifest', () => {
    assert.equal(hasCompleteFull([...full(A, false), ...inc(A, B)]), false);
    assert.equal(hasCompleteFull(full(A)), true);
    assert.equal(hasCompleteFull([]), false);
  });
});
