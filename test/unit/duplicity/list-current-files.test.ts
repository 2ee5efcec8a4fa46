import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListCurrentFiles } from '../../../src/providers/duplicity/duplicity-events';
import { fixtureMeta, fixtureRecords } from './duplicity-fixtures';

describe('parseListCurrentFiles', () => {
  it('lists the newest backup: paths decoded, mtime as ISO, duplicity’s type', () => {
    const files = parseListCurrentFiles(fixtureRecords('list-current-files'));
    assert.deepEqual(files, [
      { path: '.', mtime: '2026-11-26T21:21:00.000Z', type: 'dir' },
      { path: 'a.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'back\\slash.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'café.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'emoji-😀.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'empty-dir', mtime: '2026-11-26T21:21:00.000Z', type: 'dir' },
      { path: 'link-to-a', mtime: '2026-11-26T21:21:00.000Z', type: 'sym' },
      { path: 'new\nline.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: "quote'.txt", mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'sub', mtime: '2026-11-26T21:21:20.000Z', type: 'dir' },
      { path: 'sub/added file.txt', mtime: '2026-11-26T21:21:20.000Z', type: 'reg' },
      { path: 'sub/b.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'sub/change-me.txt', mtime: '2026-11-26T21:21:28.000Z', type: 'reg' },
      { path: 'tab\there.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
      { path: 'with space.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
    ]);
  });

  it('leaves out the backed-up file whose name is not UTF-8 (duplicity’s logger fails on it, on stderr)', () => {
    const paths = parseListCurrentFiles(fixtureRecords('list-current-files')).map((f) => f.path);
    assert.ok(!paths.some((p) => p.startsWith('latin1-')));
    assert.match(fixtureMeta('list-current-files').stderr, /--- Logging error ---/);
  });

  it('--time of the full: the file deleted later is there, the one added later is not', () => {
    const files = parseListCurrentFiles(fixtureRecords('list-current-files-at-full'));
    assert.equal(files.length, 15);
    const paths = files.map((f) => f.path);
    assert.ok(paths.includes('sub/delete-me.txt'));
    assert.ok(!paths.includes('sub/added file.txt'));
    assert.deepEqual(
      files.find((f) => f.path === 'sub/change-me.txt'),
      { path: 'sub/change-me.txt', mtime: '2026-11-26T21:21:00.000Z', type: 'reg' },
    );
  });

  it('ignores records that are not file listings', () => {
    assert.deepEqual(parseListCurrentFiles(fixtureRecords('collection-status-one-chain')), []);
  });
});
