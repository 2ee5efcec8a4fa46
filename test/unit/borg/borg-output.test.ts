import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import {
  archiveNameFor,
  archiveOf,
  classifyError,
  parseArchiveList,
  parseCreateResult,
  modeBitsOf,
  parseListLine,
  parseLockEntries,
  parseLogLine,
  timeOfArchive,
  toRestorePoints,
} from '../../../src/providers/borg/borg-output';

function fixture(name: string): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'test/fixtures/borg', name);
    if (existsSync(file)) return readFileSync(file, 'utf8');
  }
  return readFileSync(join(process.cwd(), 'test/fixtures/borg', name), 'utf8');
}

const events = (name: string) => fixture(name).trim().split('\n').map(parseLogLine);

describe('borg create --log-json --progress --json', () => {
  it('reads progress from archive_progress lines', () => {
    const progress = events('create-first.jsonl').filter((event) => event.kind === 'progress');
    assert.ok(progress.length >= 1);
    const last = progress.at(-1)!;
    assert.equal(last.kind, 'progress');
    if (last.kind === 'progress') assert.ok(last.originalBytes > 0);
  });

  it('reads the archive and its deduplicated size from stdout', () => {
    const first = parseCreateResult(fixture('create-first.json'));
    const second = parseCreateResult(fixture('create-second.json'));
    assert.equal(first?.name, '20261129T100000000Z');
    assert.equal(first?.files, 3);
    assert.ok((first?.originalBytes ?? 0) > 30_000_000);
    assert.ok((first?.deduplicatedBytes ?? 0) > 29_000_000);
    assert.equal(second?.name, '20261129T100001500Z');
    assert.ok((second?.deduplicatedBytes ?? Infinity) < 100_000, 'the second archive stored only the change');
    assert.equal(parseCreateResult('not json'), null);
  });
});

describe('borg list --json', () => {
  it('turns archives into complete full points, newest first, at the time their name holds', () => {
    const points = toRestorePoints(parseArchiveList(fixture('list.json')));
    assert.deepEqual(
      points.map((p) => [p.id, p.time, p.level, p.state, p.chain]),
      [
        ['borg-20261129T100001500Z', '2026-11-29T10:00:01.500Z', 'full', 'complete', ['borg-20261129T100001500Z']],
        ['borg-20261129T100000000Z', '2026-11-29T10:00:00.000Z', 'full', 'complete', ['borg-20261129T100000000Z']],
      ],
    );
  });

  it('reads the listed time as UTC for an archive this service did not name', () => {
    const text = JSON.stringify({ archives: [{ name: 'manual', start: '2026-11-29T16:51:31.000000' }] });
    assert.deepEqual(parseArchiveList(text), [{ name: 'manual', time: '2026-11-29T16:51:31.000Z' }]);
  });

  it('names archives by their UTC start to the millisecond, and reads that back', () => {
    const name = archiveNameFor(new Date('2026-11-29T10:00:01.500Z'));
    assert.equal(name, '20261129T100001500Z');
    assert.equal(timeOfArchive(name), '2026-11-29T10:00:01.500Z');
    assert.equal(archiveOf(`borg-${name}`), name);
    assert.equal(archiveOf('borg-../x'), null);
  });
});

describe('borg errors', () => {
  it('tells a wrong passphrase, a missing repository and a lock apart by msgid', () => {
    assert.equal(classifyError(events('error-wrong-passphrase.jsonl')).kind, 'wrong-passphrase');
    assert.equal(classifyError(events('error-no-repository.jsonl')).kind, 'no-repository');
    const locked = classifyError(events('error-locked.jsonl'));
    assert.equal(locked.kind, 'locked');
    assert.match(locked.message, /lock/);
  });

  it('an ssh connection refused is unreachable', () => {
    const lines = [
      '{"type": "log_message", "message": "Remote: ssh: connect to host 127.0.0.1 port 1: Connection refused", "levelname": "WARNING", "name": "root"}',
      '{"type": "log_message", "message": "Connection closed by remote host. Is borg working on the server?", "levelname": "ERROR", "name": "borg.archiver", "msgid": "ConnectionClosedWithHint"}',
    ];
    assert.equal(classifyError(lines.map(parseLogLine)).kind, 'unreachable');
  });

  it('reads the holders of a lock', () => {
    const holders = parseLockEntries(fixture('lock.exclusive.txt').trim().split('\n'));
    assert.equal(holders.length, 1);
    assert.match(holders[0].host, /^other-host@\d+$/);
    assert.ok(holders[0].pid > 0);
  });
});

describe('borg list --json-lines', () => {
  it('lists the entries under the subject root, symlink targets included', () => {
    const lines = fixture('list-archive.jsonl').trim().split('\n');
    const root = `/${(JSON.parse(lines[0]) as { path: string }).path}`;
    const entries = lines.map((line) => parseListLine(line, root)).filter((entry) => entry !== null);
    assert.deepEqual(entries.map((e) => [e.dir, e.name, e.type, e.target]).sort(), [
      ['', 'a.txt', 'file', null],
      ['', 'big.bin', 'file', null],
      ['', 'link', 'symlink', 'a.txt'],
      ['', 'sub', 'dir', null],
      ['sub', 'b.txt', 'file', null],
    ]);
    const big = entries.find((e) => e.name === 'big.bin')!;
    assert.equal(big.size, 30_000_000);
    assert.equal(big.mode, 0o644);
    assert.match(big.mtime ?? '', /^\d{4}-.*Z$/);
  });

  it('reads ls -l modes with setuid, setgid and sticky', () => {
    assert.equal(modeBitsOf('drwxr-sr-x'), 0o2755);
    assert.equal(modeBitsOf('-rwsr-x--T'), 0o5750);
    assert.equal(modeBitsOf('drwxrwxrwt'), 0o1777);
    assert.equal(modeBitsOf('-rw-r-----'), 0o640);
    assert.equal(modeBitsOf('nonsense'), null);
  });
});
