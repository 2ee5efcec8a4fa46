import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { partialSetsIn } from '../../../src/providers/duplicity/duplicity-names';
import {
  parseCollectionStatus,
  toRestorePoints,
  type CollectionStatus,
} from '../../../src/providers/duplicity/duplicity-collection-status';
import { fixtureLines, fixtureRecords } from './duplicity-fixtures';

function status(name: string): CollectionStatus {
  const parsed = parseCollectionStatus(fixtureRecords(name));
  assert.ok(parsed, `no collection status in ${name}`);
  assert.deepEqual(parsed.unrecognized, []);
  return parsed;
}

const set = (type: 'full' | 'inc', time: string, iso: string, volumes = 1, encrypted = false) => ({
  type,
  time,
  iso,
  volumes,
  encrypted,
});

const FIRST_CHAIN = [
  set('full', '20261126T212109Z', '2026-11-26T21:21:09.000Z'),
  set('inc', '20261126T212120Z', '2026-11-26T21:21:20.000Z'),
  set('inc', '20261126T212128Z', '2026-11-26T21:21:28.000Z'),
];
const SECOND_CHAIN = [
  set('full', '20261126T212412Z', '2026-11-26T21:24:12.000Z'),
  set('inc', '20261126T212414Z', '2026-11-26T21:24:14.000Z'),
];

describe('parseCollectionStatus', () => {
  it('no backups at all: exit 0, no chains', () => {
    assert.deepEqual(status('no-backups-collection-status'), {
      backend: 'BackendWrapper',
      chains: [],
      orphanedSets: 0,
      incompleteSets: 0,
      orphaned: [],
      unrecognized: [],
    });
  });

  it('one chain: the primary, full then incrementals with their times and volumes', () => {
    const parsed = status('collection-status-one-chain');
    assert.deepEqual(parsed.chains, [{ primary: true, sets: FIRST_CHAIN }]);
    assert.equal(parsed.orphanedSets, 0);
    assert.equal(parsed.incompleteSets, 0);
  });

  it('two chains: the older one is "chain-no-sig 0" (secondary), the newer the primary', () => {
    assert.deepEqual(status('collection-status-two-chains').chains, [
      { primary: false, sets: FIRST_CHAIN },
      { primary: true, sets: SECOND_CHAIN },
    ]);
  });

  it('the older chain reads the same with its signatures deleted', () => {
    assert.deepEqual(
      status('collection-status-old-chain-sigs-deleted').chains,
      status('collection-status-two-chains').chains,
    );
  });

  it('with the newest chain’s signatures deleted, no chain is primary', () => {
    assert.deepEqual(status('collection-status-newest-chain-sigs-deleted').chains, [
      { primary: false, sets: FIRST_CHAIN },
      { primary: false, sets: SECOND_CHAIN },
    ]);
  });

  it('a full killed mid-way, read with its archive dir: duplicity calls it a complete chain of 39 volumes', () => {
    const parsed = status('collection-status-incomplete');
    assert.deepEqual(parsed.chains, [
      { primary: true, sets: [set('full', '20261126T212455Z', '2026-11-26T21:24:55.000Z', 39)] },
    ]);
    assert.equal(parsed.incompleteSets, 0);
  });

  it('the same target read with an empty archive dir: no chain, one incomplete set', () => {
    const parsed = status('collection-status-incomplete-fresh-cache');
    assert.deepEqual(parsed.chains, []);
    assert.equal(parsed.incompleteSets, 1);
    assert.equal(parsed.orphanedSets, 0);
  });

  it('an incremental killed mid-way: in the chain with the archive dir, counted incomplete without it', () => {
    const full = set('full', '20261126T212455Z', '2026-11-26T21:24:55.000Z', 61);
    const withCache = status('collection-status-incomplete-inc');
    assert.deepEqual(withCache.chains, [
      { primary: true, sets: [full, set('inc', '20261126T212546Z', '2026-11-26T21:25:46.000Z', 11)] },
    ]);
    assert.equal(withCache.incompleteSets, 0);
    const fresh = status('collection-status-incomplete-inc-fresh-cache');
    assert.deepEqual(fresh.chains, [{ primary: true, sets: [full] }]);
    assert.equal(fresh.incompleteSets, 1);
  });

  it('orphaned sets: counted, and named by the WARNING 6 that lists their files', () => {
    const parsed = status('collection-status-orphaned');
    assert.deepEqual(parsed.chains, [{ primary: true, sets: SECOND_CHAIN }]);
    assert.equal(parsed.orphanedSets, 2);
    assert.deepEqual(parsed.orphaned, [
      { type: 'inc', time: '20261126T212120Z', iso: '2026-11-26T21:21:20.000Z', startTime: '20261126T212109Z' },
      { type: 'inc', time: '20261126T212128Z', iso: '2026-11-26T21:21:28.000Z', startTime: '20261126T212120Z' },
    ]);
  });

  it('encrypted sets say enc (and collection-status needs no passphrase, with or without the archive dir)', () => {
    const expected = [{ primary: true, sets: [set('full', '20261126T212747Z', '2026-11-26T21:27:47.000Z', 1, true)] }];
    assert.deepEqual(status('collection-status-encrypted').chains, expected);
    assert.deepEqual(status('collection-status-encrypted-fresh-cache').chains, expected);
  });

  it('returns null when the run failed before printing a status (archive locked)', () => {
    assert.equal(parseCollectionStatus(fixtureRecords('error-archive-locked')), null);
  });

  it('keeps lines it does not know instead of dropping them silently', () => {
    const parsed = parseCollectionStatus([
      {
        level: 'INFO',
        code: 3,
        extra: '\nbackend X\nchain-complete\n full 20261126T212109Z 1 noenc\nnew-thing 4',
        text: [],
      },
    ]);
    assert.deepEqual(parsed?.unrecognized, ['new-thing 4']);
    assert.equal(parsed?.chains[0].sets.length, 1);
  });
});

describe('toRestorePoints', () => {
  it('two chains: five complete points, newest first, each chain back to its full', () => {
    const points = toRestorePoints(status('collection-status-two-chains'));
    assert.deepEqual(points, [
      {
        id: 'duplicity-20261126T212414Z',
        provider: 'duplicity',
        time: '2026-11-26T21:24:14.000Z',
        level: 'incremental',
        chain: ['duplicity-20261126T212412Z', 'duplicity-20261126T212414Z'],
        bytes: null,
        files: null,
        state: 'complete',
      },
      {
        id: 'duplicity-20261126T212412Z',
        provider: 'duplicity',
        time: '2026-11-26T21:24:12.000Z',
        level: 'full',
        chain: ['duplicity-20261126T212412Z'],
        bytes: null,
        files: null,
        state: 'complete',
      },
      {
        id: 'duplicity-20261126T212128Z',
        provider: 'duplicity',
        time: '2026-11-26T21:21:28.000Z',
        level: 'incremental',
        chain: ['duplicity-20261126T212109Z', 'duplicity-20261126T212120Z', 'duplicity-20261126T212128Z'],
        bytes: null,
        files: null,
        state: 'complete',
      },
      {
        id: 'duplicity-20261126T212120Z',
        provider: 'duplicity',
        time: '2026-11-26T21:21:20.000Z',
        level: 'incremental',
        chain: ['duplicity-20261126T212109Z', 'duplicity-20261126T212120Z'],
        bytes: null,
        files: null,
        state: 'complete',
      },
      {
        id: 'duplicity-20261126T212109Z',
        provider: 'duplicity',
        time: '2026-11-26T21:21:09.000Z',
        level: 'full',
        chain: ['duplicity-20261126T212109Z'],
        bytes: null,
        files: null,
        state: 'complete',
      },
    ]);
  });

  it('no backups: no points', () => {
    assert.deepEqual(toRestorePoints(status('no-backups-collection-status')), []);
  });

  it('a killed full that duplicity lists as complete is incomplete once the archive dir’s .part files are given', () => {
    const partialSets = partialSetsIn(fixtureLines('archive-dir-after-full-killed.txt'));
    assert.deepEqual(partialSets, [{ type: 'full', time: '20261126T212455Z', iso: '2026-11-26T21:24:55.000Z' }]);
    const points = toRestorePoints(status('collection-status-incomplete'), 'duplicity', { partialSets });
    assert.deepEqual(
      points.map((p) => [p.id, p.level, p.state, p.chain]),
      [['duplicity-20261126T212455Z', 'full', 'incomplete', ['duplicity-20261126T212455Z']]],
    );
    // Without that listing the status alone cannot tell.
    assert.equal(toRestorePoints(status('collection-status-incomplete'))[0].state, 'complete');
  });

  it('a killed incremental: the full stays complete, the incremental is incomplete (either way it was read)', () => {
    const partialSets = partialSetsIn(fixtureLines('archive-dir-after-incremental-killed.txt'));
    const expected = [
      [
        'duplicity-20261126T212546Z',
        'incremental',
        'incomplete',
        ['duplicity-20261126T212455Z', 'duplicity-20261126T212546Z'],
      ],
      ['duplicity-20261126T212455Z', 'full', 'complete', ['duplicity-20261126T212455Z']],
    ];
    for (const name of ['collection-status-incomplete-inc', 'collection-status-incomplete-inc-fresh-cache']) {
      const points = toRestorePoints(status(name), 'duplicity', { partialSets });
      assert.deepEqual(
        points.map((p) => [p.id, p.level, p.state, p.chain]),
        expected,
        name,
      );
    }
  });

  it('orphaned incrementals are listed as orphaned, chained to nothing but themselves', () => {
    const points = toRestorePoints(status('collection-status-orphaned'));
    assert.deepEqual(
      points.map((p) => [p.id, p.level, p.state, p.chain.length]),
      [
        ['duplicity-20261126T212414Z', 'incremental', 'complete', 2],
        ['duplicity-20261126T212412Z', 'full', 'complete', 1],
        ['duplicity-20261126T212128Z', 'incremental', 'orphaned', 1],
        ['duplicity-20261126T212120Z', 'incremental', 'orphaned', 1],
      ],
    );
  });

  it('uses the provider name it is given', () => {
    const [point] = toRestorePoints(status('collection-status-one-chain'), 'bacula');
    assert.equal(point.provider, 'bacula');
  });
});
