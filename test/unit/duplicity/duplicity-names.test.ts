import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  duplicityTimeToIso,
  parseDuplicityFileName,
  partialSetsIn,
  splitQuotedPath,
  toDuplicityTime,
  unescapeDuplicityPath,
} from '../../../src/providers/duplicity/duplicity-names';

describe('duplicity times', () => {
  it('converts both ways', () => {
    assert.equal(duplicityTimeToIso('20261126T212109Z'), '2026-11-26T21:21:09.000Z');
    assert.equal(toDuplicityTime('2026-11-26T21:21:09.000Z'), '20261126T212109Z');
    assert.equal(toDuplicityTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), '20260102T030405Z');
  });

  it('refuses what is not one', () => {
    assert.throws(() => duplicityTimeToIso('2026-11-26T21:21:09Z'));
    assert.throws(() => duplicityTimeToIso('20261332T212109Z'));
    assert.throws(() => toDuplicityTime('yesterday'));
  });
});

describe('unescapeDuplicityPath', () => {
  it('decodes every escape seen in the fixtures', () => {
    assert.equal(unescapeDuplicityPath("'with space.txt'"), 'with space.txt');
    assert.equal(unescapeDuplicityPath("'new\\nline.txt'"), 'new\nline.txt');
    assert.equal(unescapeDuplicityPath("'tab\\there.txt'"), 'tab\there.txt');
    assert.equal(unescapeDuplicityPath("'caf\\xe9.txt'"), 'café.txt');
    assert.equal(unescapeDuplicityPath("'emoji-\\U0001f600.txt'"), 'emoji-😀.txt');
    assert.equal(unescapeDuplicityPath("'quote\\x27.txt'"), "quote'.txt");
    assert.equal(unescapeDuplicityPath("'back\\\\slash.txt'"), 'back\\slash.txt');
    assert.equal(unescapeDuplicityPath("'\\u20ac and \\r'"), '€ and \r');
  });

  it('returns null for what duplicity would not write', () => {
    assert.equal(unescapeDuplicityPath('no quotes'), null);
    assert.equal(unescapeDuplicityPath("'cut short"), null);
    assert.equal(unescapeDuplicityPath("'bad \\q escape'"), null);
    assert.equal(unescapeDuplicityPath("'short \\x4'"), null);
    assert.equal(unescapeDuplicityPath("'raw ' quote'"), null);
  });

  it('splits a quoted path from what follows it', () => {
    assert.deepEqual(splitQuotedPath("'sub/a b' reg"), { path: 'sub/a b', rest: 'reg' });
    assert.deepEqual(splitQuotedPath("'x\\x27 y'"), { path: "x' y", rest: '' });
    assert.equal(splitQuotedPath('20261126T212109Z'), null);
  });
});

describe('parseDuplicityFileName', () => {
  it('reads full and incremental sets, manifests, volumes, signatures, encryption and .part', () => {
    assert.deepEqual(parseDuplicityFileName('duplicity-full.20261126T212109Z.vol1.difftar.gz'), {
      set: { type: 'full', time: '20261126T212109Z', iso: '2026-11-26T21:21:09.000Z' },
      content: 'volume',
      volume: 1,
      encrypted: false,
      partial: false,
    });
    assert.deepEqual(parseDuplicityFileName('duplicity-inc.20261126T212455Z.to.20261126T212546Z.manifest.part'), {
      set: {
        type: 'inc',
        time: '20261126T212546Z',
        iso: '2026-11-26T21:25:46.000Z',
        startTime: '20261126T212455Z',
      },
      content: 'manifest',
      volume: null,
      encrypted: false,
      partial: true,
    });
    assert.deepEqual(parseDuplicityFileName('duplicity-full-signatures.20261126T212747Z.sigtar.gpg'), {
      set: { type: 'full', time: '20261126T212747Z', iso: '2026-11-26T21:27:47.000Z' },
      content: 'signatures',
      volume: null,
      encrypted: true,
      partial: false,
    });
    assert.equal(
      parseDuplicityFileName('duplicity-new-signatures.20261126T212109Z.to.20261126T212120Z.sigtar.gz')?.set.type,
      'inc',
    );
  });

  it('returns null for other files and impossible combinations', () => {
    for (const name of [
      'lockfile',
      'duplicity-1jwi0k4u-tempdir',
      'duplicity-full.20261126T212109Z.to.20261126T212120Z.manifest',
      'duplicity-inc.20261126T212109Z.manifest',
      'duplicity-full.20261126T212109Z.sigtar.gz',
    ]) {
      assert.equal(parseDuplicityFileName(name), null, name);
    }
  });

  it('partialSetsIn picks the sets with a .part manifest, oldest first', () => {
    assert.deepEqual(
      partialSetsIn([
        'duplicity-inc.20261126T212455Z.to.20261126T212546Z.manifest.part',
        'duplicity-new-signatures.20261126T212455Z.to.20261126T212546Z.sigtar.part',
        'duplicity-full.20261126T212455Z.manifest.part',
        'duplicity-full.20261126T212455Z.manifest',
        'lockfile',
      ]).map((s) => s.time),
      ['20261126T212455Z', '20261126T212546Z'],
    );
  });
});
