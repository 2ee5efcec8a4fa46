import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ResticSnapshot } from '../../../src/providers/restic/restic-output';
import { ResticSnapshotCache } from '../../../src/providers/restic/restic-snapshot-cache';

const name = (digit: string): string => digit.repeat(64);
const snapshot = (id: string, hostname: string, tags = ['ours']): ResticSnapshot => ({
  id,
  time: '2026-11-29T10:00:00.000Z',
  hostname,
  tags,
  paths: ['/home/virtual/site1/shadow'],
});

describe('the snapshot cache of a local restic repository', () => {
  const root = mkdtempSync(join(tmpdir(), 'restic-cache-'));
  const dir = join(root, 'snapshots');
  mkdirSync(dir);
  const put = (id: string): void => writeFileSync(join(dir, id), 'encrypted');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('answers only when every snapshot file is known, and then only for the host and tag asked', async () => {
    const cache = new ResticSnapshotCache(dir);
    assert.deepEqual(await cache.lookup('site1', 'ours'), [], 'an empty repository is known whole');
    put(name('a'));
    put(name('b'));
    put(name('c'));
    assert.equal(await cache.lookup('site1', 'ours'), null, 'files nobody described: ask restic');
    cache.remember([snapshot(name('a'), 'site1'), snapshot(name('b'), 'site2'), snapshot(name('c'), 'site1', ['x'])]);
    assert.deepEqual(
      (await cache.lookup('site1', 'ours'))?.map((s) => s.id),
      [name('a')],
    );
    put(name('d'));
    assert.equal(await cache.lookup('site1', 'ours'), null, 'a snapshot made by someone else');
  });

  it('knows a snapshot it made by the short id restic printed, and drops one whose file is gone', async () => {
    const cache = new ResticSnapshotCache(dir);
    cache.remember([name('a'), name('b'), name('c')].map((id) => snapshot(id, 'site1')));
    const { id: _, ...made } = snapshot('', 'site1');
    assert.equal(await cache.rememberMade('dddddddd', made), name('d'));
    assert.equal(await cache.rememberMade('zzzz', made), null, 'not an id');
    assert.equal(await cache.rememberMade('eeeeeeee', made), null, 'no such file');
    rmSync(join(dir, name('b')));
    assert.deepEqual(
      (await cache.lookup('site1', 'ours'))?.map((s) => s.id),
      [name('a'), name('c'), name('d')],
    );
  });

  it('asks restic when the directory cannot be read', async () => {
    const cache = new ResticSnapshotCache(join(root, 'missing'));
    assert.equal(await cache.lookup('site1', 'ours'), null);
  });
});
