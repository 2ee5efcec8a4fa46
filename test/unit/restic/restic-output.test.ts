import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import {
  classifyError,
  literalPattern,
  parseBackupLine,
  parseLock,
  parseLsLine,
  parseSnapshots,
  pathInRoot,
  placeInRoot,
  snapshotIdOf,
  symlinkTargets,
  toRestorePoints,
} from '../../../src/providers/restic/restic-output';

function fixture(name: string): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'test/fixtures/restic', name);
    if (existsSync(file)) return readFileSync(file, 'utf8');
  }
  return readFileSync(join(process.cwd(), 'test/fixtures/restic', name), 'utf8');
}

describe('restic backup --json', () => {
  it('reads progress from status lines and the snapshot from the summary', () => {
    const events = fixture('backup-first.jsonl').trim().split('\n').map(parseBackupLine);
    const statuses = events.filter((event) => event.kind === 'status');
    assert.ok(statuses.length >= 2);
    for (const status of statuses) {
      assert.ok(status.percent !== null && status.percent >= 0 && status.percent <= 100);
    }
    const last = statuses.at(-1)!;
    assert.equal(last.percent, 100);
    const summary = events.at(-1)!;
    assert.equal(summary.kind, 'summary');
    if (summary.kind !== 'summary') return;
    assert.match(summary.snapshotId, /^[0-9a-f]{8}$/);
    assert.equal(summary.filesProcessed, 3);
    assert.equal(summary.bytesProcessed, 30_000_004);
    assert.equal(last.bytesDone, summary.bytesProcessed, 'the last status counted every byte');
    assert.ok(summary.dataAdded > 30_000_000);
  });

  it('a second backup of a barely changed tree adds only a few kilobytes', () => {
    const summary = parseBackupLine(fixture('backup-second.jsonl').trim().split('\n').at(-1)!);
    assert.equal(summary.kind, 'summary');
    if (summary.kind === 'summary') assert.ok(summary.dataAdded < 100_000, String(summary.dataAdded));
  });

  it('takes a line that is not JSON, or of an unknown type, as other', () => {
    assert.deepEqual(parseBackupLine('scan finished'), { kind: 'other' });
    assert.deepEqual(parseBackupLine('{"message_type":"verbose_status"}'), { kind: 'other' });
  });
});

describe('restic snapshots --json', () => {
  it('turns snapshots into complete full points, newest first, each its own chain', () => {
    const snapshots = parseSnapshots(fixture('snapshots-site1.json'));
    assert.equal(snapshots.length, 2);
    assert.ok(snapshots.every((s) => s.hostname === 'site1' && s.tags.includes('apiscp-backup-api')));
    const points = toRestorePoints(snapshots);
    assert.deepEqual(
      points.map((p) => p.id),
      snapshots.map((s) => `restic-${s.id}`).reverse(),
    );
    for (const point of points) {
      assert.equal(point.level, 'full');
      assert.equal(point.state, 'complete');
      assert.deepEqual(point.chain, [point.id]);
      assert.match(point.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    assert.equal(snapshotIdOf(points[0].id), snapshots[1].id);
  });

  it('an empty listing is no point', () => {
    assert.deepEqual(parseSnapshots(fixture('snapshots-none.json')), []);
    assert.deepEqual(parseSnapshots('null'), []);
  });

  it('refuses ids that are not restic snapshot ids', () => {
    assert.equal(snapshotIdOf('restic-../../x'), null);
    assert.equal(snapshotIdOf('borg-20261129T100000000Z'), null);
  });
});

describe('restic errors', () => {
  it('tells a wrong password, a missing repository, an unreachable one and a lock apart', () => {
    assert.equal(classifyError(fixture('error-wrong-password.txt')).kind, 'wrong-password');
    assert.equal(classifyError(fixture('error-no-repository.txt')).kind, 'no-repository');
    const unreachable = classifyError(fixture('error-unreachable.txt'));
    assert.equal(unreachable.kind, 'unreachable');
    assert.match(unreachable.message, /connection refused/);
    const locked = classifyError(fixture('error-locked.txt'));
    assert.equal(locked.kind, 'locked');
    assert.match(locked.message, /locked exclusively by PID \d+ on other-host/);
    assert.match(locked.message, /lock was created at/);
  });

  it('reads a lock holder', () => {
    const lock = parseLock(fixture('cat-lock.json'));
    assert.equal(lock?.exclusive, true);
    assert.equal(lock?.hostname, 'other-host');
    assert.ok((lock?.pid ?? 0) > 0);
    assert.equal(parseLock('not json'), null);
  });
});

describe('restic patterns', () => {
  it('escapes glob characters so a file name matches only itself', () => {
    assert.equal(
      literalPattern('/home/virtual/site1/shadow/a[1]*?.txt'),
      '/home/virtual/site1/shadow/a\\[1\\]\\*\\?.txt',
    );
    assert.equal(literalPattern('/a\\b'), '/a\\\\b');
  });
});

describe('restic ls --json', () => {
  it('lists the entries under the subject root with their dir, type, mode, owner, size and time', () => {
    const lines = fixture('ls-latest.jsonl').trim().split('\n');
    const snapshot = JSON.parse(lines[0]) as { paths: string[] };
    const root = snapshot.paths[0];
    const entries = lines.map((line) => parseLsLine(line, root)).filter((entry) => entry !== null);
    assert.deepEqual(entries.map((e) => [e.dir, e.name, e.type]).sort(), [
      ['', 'a.txt', 'file'],
      ['', 'big.bin', 'file'],
      ['', 'link', 'symlink'],
      ['', 'sub', 'dir'],
      ['sub', 'b.txt', 'file'],
    ]);
    const big = entries.find((e) => e.name === 'big.bin')!;
    assert.equal(big.size, 30_000_000);
    assert.equal(big.mode, 0o644);
    assert.equal(big.uid, 0);
    assert.match(big.mtime ?? '', /Z$/);
    assert.equal(entries.find((e) => e.name === 'sub')!.mode, 0o755);
    assert.equal(entries.find((e) => e.name === 'link')!.target, null, 'restic 0.14 does not list link targets');
  });

  it('turns Go file modes with setgid and sticky into permission bits', () => {
    const line = JSON.stringify({ struct_type: 'node', path: '/r/tmp', type: 'dir', mode: 2148532735 });
    assert.equal(parseLsLine(line, '/r')?.mode, 0o1777);
    const setgid = JSON.stringify({
      struct_type: 'node',
      path: '/r/d',
      type: 'dir',
      mode: 0x80000000 | (1 << 22) | 0o775,
    });
    assert.equal(parseLsLine(setgid, '/r')?.mode, 0o2775);
  });

  it('places paths against the root, never outside it', () => {
    assert.deepEqual(placeInRoot('/home/virtual/site1/shadow/a', '/home/virtual/site1'), { dir: 'shadow', name: 'a' });
    assert.equal(placeInRoot('/home/virtual/site10/shadow', '/home/virtual/site1'), null);
    assert.equal(placeInRoot('/home/virtual/site1', '/home/virtual/site1'), null);
    assert.deepEqual(placeInRoot('etc/x', '/'), { dir: 'etc', name: 'x' });
  });

  it('takes symlink targets from `restic ls -l` lines by exact path, in walk order', () => {
    // Captured from restic 0.14 `ls -l`: a target holding " -> ", a path holding " -> ", a name with a newline.
    const lines = [
      'snapshot 09bd1251 of [/r] filtered by [] at 2026-11-29 20:38:55.600413005 +0000 UTC):',
      'drwxr-xr-x     0     0      0 2026-11-29 20:38:51 /r/s',
      'Lrwxrwxrwx     0     0      0 2026-11-29 20:38:51 /r/s/a -> b -> c',
      'Lrwxrwxrwx  1000  1000      0 2026-11-29 20:38:51 /r/s/a -> b -> /etc/passwd',
      'Lrwxrwxrwx     0     0      0 2026-11-29 20:38:51 /r/s/new',
      'line -> x',
      '-rw-r--r--     0     0      3 2026-11-29 20:38:51 /r/s/f -> not a link',
      'Lrwxrwxrwx     0     0      0 2026-11-29 20:38:51 /r/s/z -> ../f',
    ];
    const targets = symlinkTargets(lines, ['/r/s/a', '/r/s/a -> b', '/r/s/new\nline', '/r/s/z']);
    assert.deepEqual(
      [...targets],
      [
        ['/r/s/a', 'b -> c'],
        ['/r/s/a -> b', '/etc/passwd'],
        ['/r/s/z', '../f'],
      ],
    );
    assert.equal(pathInRoot('/r', { dir: 's', name: 'z' }), '/r/s/z');
    assert.equal(pathInRoot('/', { dir: '', name: 'etc' }), '/etc');
  });
});
