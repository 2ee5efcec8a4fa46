import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  findStatistics,
  interpretRecord,
  type DuplicityEvent,
} from '../../../src/providers/duplicity/duplicity-events';
import { fixtureRecords } from './duplicity-fixtures';

function events(name: string): DuplicityEvent[] {
  return fixtureRecords(name).map(interpretRecord);
}

function ofKind<K extends DuplicityEvent['kind']>(list: DuplicityEvent[], kind: K) {
  return list.filter((e): e is Extract<DuplicityEvent, { kind: K }> => e.kind === kind);
}

describe('interpretRecord: a full backup at --verbosity info', () => {
  const all = events('full-verbose');

  it('reports every file with its name decoded (spaces, newline, tab, quote, backslash, UTF-8)', () => {
    const files = ofKind(all, 'file');
    assert.ok(files.every((f) => f.change === 'added'));
    assert.deepEqual(
      files.map((f) => f.path),
      [
        '.',
        'a.txt',
        'back\\slash.txt',
        'café.txt',
        'emoji-😀.txt',
        'empty-dir',
        'link-to-a',
        'new\nline.txt',
        "quote'.txt",
        'sub',
        'sub/b.txt',
        'sub/change-me.txt',
        'sub/delete-me.txt',
        'tab\there.txt',
        'with space.txt',
      ],
    );
  });

  it('misses the file whose name is not UTF-8, although duplicity counts (and backs up) 16 entries', () => {
    assert.equal(ofKind(all, 'file').length, 15);
    assert.equal(findStatistics(fixtureRecords('full-verbose'))?.SourceFiles, 16);
  });

  it('reads the bytes after each volume and the statistics block', () => {
    assert.deepEqual(ofKind(all, 'bytes'), [{ kind: 'bytes', bytes: 12368, volume: 1 }]);
    const [stats] = ofKind(all, 'statistics');
    assert.deepEqual(stats.values, {
      StartTime: 1795728069.02,
      EndTime: 1795728069.03,
      ElapsedTime: 0.01,
      SourceFiles: 16,
      SourceFileSize: 12368,
      NewFiles: 16,
      NewFileSize: 12368,
      DeletedFiles: 0,
      ChangedFiles: 0,
      ChangedFileSize: 0,
      ChangedDeltaSize: 0,
      DeltaEntries: 16,
      RawDeltaSize: 75,
      TotalDestinationSizeChange: 662,
      Errors: 0,
    });
  });

  it('leaves the chatter (backend imports, temp dirs) as other, with its message', () => {
    const others = ofKind(all, 'other');
    assert.ok(others.some((o) => o.level === 'INFO' && o.code === 1 && o.message === 'Main action: full'));
    assert.ok(others.some((o) => o.level === 'NOTICE' && o.message === 'Last full backup date: none'));
    assert.equal(ofKind(all, 'error').length, 0);
  });
});

describe('interpretRecord: incrementals', () => {
  it('at --verbosity info: added, changed, deleted (a directory whose mtime changed counts as added)', () => {
    const all = events('incremental-verbose');
    assert.deepEqual(ofKind(all, 'file'), [
      { kind: 'file', change: 'added', path: 'sub' },
      { kind: 'file', change: 'added', path: 'sub/added file.txt' },
      { kind: 'file', change: 'changed', path: 'sub/change-me.txt' },
      { kind: 'file', change: 'deleted', path: 'sub/delete-me.txt' },
    ]);
    const stats = findStatistics(fixtureRecords('incremental-verbose'));
    assert.equal(stats?.NewFiles, 2);
    assert.equal(stats?.ChangedFiles, 1);
    assert.equal(stats?.DeletedFiles, 1);
    assert.equal(stats?.TotalDestinationSizeChange, 218);
  });

  it('at the default verbosity: no file or bytes records, only the statistics', () => {
    const all = events('incremental-default');
    assert.deepEqual(
      all.map((e) => e.kind),
      ['other', 'other', 'statistics'],
    );
    const stats = findStatistics(fixtureRecords('incremental-default'));
    assert.equal(stats?.ChangedFiles, 1);
    assert.equal(stats?.SourceFileSize, 12370);
    assert.equal(stats?.TotalDestinationSizeChange, 116);
  });

  it('a resumed full says so in NOTICE 1 text, keeps its time, and reports the whole source', () => {
    const all = events('full-resumed');
    const notices = ofKind(all, 'other').map((o) => o.message);
    assert.ok(notices.includes('Last full backup left a partial set, restarting.'));
    assert.ok(
      notices.includes(
        'RESTART: Volumes 39 to 39 failed to upload before termination.\n         Restarting backup at volume 39.',
      ),
    );
    const stats = findStatistics(fixtureRecords('full-resumed'));
    assert.equal(stats?.SourceFileSize, 314576896);
    assert.equal(stats?.TotalDestinationSizeChange, 118126201);
  });
});

describe('interpretRecord: progress', () => {
  it('NOTICE 16 (--progress): written bytes, elapsed s, percent, ETA s, bytes/s, stalled', () => {
    assert.deepEqual(ofKind(events('full-progress-200mb'), 'progress'), [
      {
        kind: 'progress',
        bytes: 114183764,
        elapsedSeconds: 3,
        percent: 54,
        etaSeconds: 2,
        bytesPerSecond: 11418018,
        stalled: false,
      },
      {
        kind: 'progress',
        bytes: 210235353,
        elapsedSeconds: 6,
        percent: 100,
        etaSeconds: 0,
        bytesPerSecond: 11418018,
        stalled: false,
      },
    ]);
    // The final record's bytes are what went to the target.
    assert.equal(findStatistics(fixtureRecords('full-progress-200mb'))?.TotalDestinationSizeChange, 210235353);
  });

  it('without --progress there is no NOTICE 16 at all', () => {
    assert.equal(ofKind(events('full-no-progress-200mb'), 'progress').length, 0);
  });

  it('--progress at --verbosity info: a dry-run scan (totals), then bytes per volume, files reported twice', () => {
    const all = events('full-progress-verbose');
    const scanned = ofKind(all, 'scanned');
    assert.equal(scanned.length, 21);
    assert.equal(scanned.at(-1)?.bytes, 209719296);
    const bytes = ofKind(all, 'bytes');
    assert.equal(bytes.length, 41);
    assert.deepEqual(bytes[0], { kind: 'bytes', bytes: 5181440, volume: 1 });
    assert.deepEqual(bytes.at(-1), { kind: 'bytes', bytes: 209719296, volume: 41 });
    assert.equal(findStatistics(fixtureRecords('full-progress-verbose'))?.SourceFileSize, 209719296);
    const blob01 = ofKind(all, 'file').filter((f) => f.path === 'blob-01.bin');
    assert.equal(blob01.length, 2);
    const progress = ofKind(all, 'progress');
    assert.equal(progress.length, 6);
    assert.deepEqual(
      progress.map((p) => p.percent),
      [...progress.map((p) => p.percent)].sort((a, b) => a - b),
      'percent never goes back',
    );
    assert.equal(progress.at(-1)?.percent, 100);
  });
});

describe('interpretRecord: restore', () => {
  it('at --verbosity info: each written path with its type, and volumes done out of total', () => {
    const all = events('restore-verbose');
    assert.deepEqual(ofKind(all, 'volumes'), [
      { kind: 'volumes', done: 1, total: 3 },
      { kind: 'volumes', done: 2, total: 3 },
      { kind: 'volumes', done: 3, total: 3 },
    ]);
    const restored = ofKind(all, 'restored');
    assert.deepEqual(
      restored.find((r) => r.path === 'new\nline.txt'),
      {
        kind: 'restored',
        path: 'new\nline.txt',
        type: 'reg',
      },
    );
    assert.deepEqual(
      restored.find((r) => r.path === 'link-to-a'),
      { kind: 'restored', path: 'link-to-a', type: 'sym' },
    );
    assert.deepEqual(
      restored.find((r) => r.path === 'empty-dir'),
      { kind: 'restored', path: 'empty-dir', type: 'dir' },
    );
    assert.ok(restored.some((r) => r.path === 'sub/added file.txt'));
  });

  it('at the default verbosity: nothing but two notices', () => {
    assert.deepEqual(
      events('restore-default').map((e) => e.kind),
      ['other', 'other'],
    );
  });
});

describe('interpretRecord: errors and warnings', () => {
  it('ERROR records carry their code and text', () => {
    assert.deepEqual(ofKind(events('restore-into-existing-dir'), 'error'), [
      {
        kind: 'error',
        code: 11,
        message: 'Restore destination directory /tmp/dupcap/r1 already exists.\nWill not overwrite.',
      },
    ]);
    assert.deepEqual(ofKind(events('error-source-missing'), 'error'), [
      { kind: 'error', code: 13, message: 'Backup source directory /tmp/dupcap/no-such-src does not exist.' },
    ]);
  });

  it('a backend that keeps failing warns once per retry before the error', () => {
    const all = events('error-backend-error');
    const warnings = ofKind(all, 'warning');
    assert.equal(warnings.length, 4);
    assert.equal(warnings[0].message, 'Attempt of list Nr. 1 failed. NotADirectoryError: Not a directory');
    assert.deepEqual(ofKind(all, 'error'), [
      { kind: 'error', code: 50, message: 'Giving up after 5 attempts. NotADirectoryError: Not a directory' },
    ]);
  });

  it('WARNING 11: list-current-files had no signatures for the time and listed another chain', () => {
    const [warning] = ofKind(events('list-files-chain-without-signatures'), 'warning');
    assert.equal(warning.code, 11);
    assert.match(warning.message, /^No signature chain for the requested time\./);
  });

  it('an unparsable file record stays other instead of throwing', () => {
    assert.equal(interpretRecord({ level: 'INFO', code: 4, extra: "'cut sho", text: [] }).kind, 'other');
    assert.equal(interpretRecord({ level: 'NOTICE', code: 16, extra: '1 2 3', text: [] }).kind, 'other');
    assert.equal(interpretRecord({ level: 'INFO', code: 2, extra: 'x', text: [] }).kind, 'other');
  });
});
