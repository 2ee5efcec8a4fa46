import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { assertPointIdShape, excludedMember, parseArchivePath } from '../../../src/archive/archive-path';
import { PaxEntryFilter, type SkippedEntry } from '../../../src/archive/pax-filter';
import { aclXattrToText, type IdNames } from '../../../src/archive/posix-acl';
import { decodeLStat, parseBvfsRows } from '../../../src/providers/bacula/bacula-files';

const NAMES: IdNames = { user: (uid) => (uid === 1001 ? 'web' : String(uid)), group: (gid) => String(gid) };
/** Ids as numbers: what extracts anywhere (a name must exist on the extracting machine). */
const NUMERIC: IdNames = { user: String, group: String };

describe('archive paths', () => {
  it('accepts directories inside shadow and info, and splits them', () => {
    assert.deepEqual(parseArchivePath('shadow/var/www/'), ['shadow', 'var', 'www']);
    assert.deepEqual(parseArchivePath('info'), ['info']);
    assert.deepEqual(parseArchivePath('shadow/var/libx'), ['shadow', 'var', 'libx']);
  });

  it('refuses what could leave the site or hold raw database files', () => {
    for (const bad of [
      '',
      '/etc',
      '../..',
      'shadow/../info',
      'shadow//var',
      'shadow/./var',
      'fst',
      'shadow/var/lib',
      'shadow/var/lib/mysql',
      'shadow/a\nb',
      'x'.repeat(5000),
    ]) {
      assert.throws(() => parseArchivePath(bad), { code: 'archive-path-invalid' }, JSON.stringify(bad.slice(0, 40)));
    }
  });

  it('names the member that keeps shadow/var/lib out of an archive of one of its ancestors', () => {
    assert.equal(excludedMember(['shadow']), './var/lib');
    assert.equal(excludedMember(['shadow', 'var']), './lib');
    assert.equal(excludedMember(['shadow', 'var', 'www']), undefined);
    assert.equal(excludedMember(['info']), undefined);
  });

  it('refuses restore point ids no provider makes', () => {
    assertPointIdShape('duplicity-20261126T110204Z');
    assertPointIdShape('bacula-12');
    for (const bad of ['.site1`id`', 'x', 'bacula-', '../bacula-1']) assert.throws(() => assertPointIdShape(bad));
  });
});

describe('POSIX ACL xattr to text', () => {
  it('writes libacl’s long text form, names where known', () => {
    // user::rw-, user:1001:rwx, group::r--, mask::rwx, other::r--
    const entries: Array<[number, number, number]> = [
      [0x01, 6, 0xffffffff],
      [0x02, 7, 1001],
      [0x04, 4, 0xffffffff],
      [0x08, 5, 1002],
      [0x10, 7, 0xffffffff],
      [0x20, 4, 0xffffffff],
    ];
    const value = Buffer.alloc(4 + entries.length * 8);
    value.writeUInt32LE(2, 0);
    entries.forEach(([tag, perm, id], i) => {
      value.writeUInt16LE(tag, 4 + i * 8);
      value.writeUInt16LE(perm, 6 + i * 8);
      value.writeUInt32LE(id, 8 + i * 8);
    });
    assert.equal(
      aclXattrToText(value, NAMES),
      'user::rw-\nuser:web:rwx\ngroup::r--\ngroup:1002:r-x\nmask::rwx\nother::r--\n',
    );
  });

  it('refuses what is not an ACL', () => {
    assert.equal(aclXattrToText(Buffer.from('garbage!'), NAMES), undefined);
    assert.equal(aclXattrToText(Buffer.alloc(12), NAMES), undefined);
  });
});

describe('PaxEntryFilter on real GNU tar output', () => {
  it('drops FIFOs with their pax header, adds SCHILY.acl.* from the xattrs, and bsdtar reads the result cleanly', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pax-filter-'));
    try {
      const src = join(root, 'src');
      mkdirSync(join(src, 'dir'), { recursive: true });
      writeFileSync(join(src, 'dir', 'file.txt'), 'content\n');
      execFileSync('setfacl', ['-m', 'u:1001:rwx', join(src, 'dir', 'file.txt')]);
      execFileSync('setfacl', ['-d', '-m', 'g:1002:r-x', join(src, 'dir')]);
      execFileSync('setfattr', ['-n', 'user.k', '-v', 'v', join(src, 'dir', 'file.txt')]);
      execFileSync('mkfifo', [join(src, 'dir', 'pipe')]);
      const tar = execFileSync('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', '-', '-C', src, '.']);
      // Fed in odd-sized pieces: headers and records straddle chunk boundaries.
      const pieces: Buffer[] = [];
      for (let offset = 0; offset < tar.length; offset += 333) pieces.push(tar.subarray(offset, offset + 333));
      const skipped: SkippedEntry[] = [];
      const out = await buffer(Readable.from(pieces).pipe(new PaxEntryFilter(NUMERIC, (entry) => skipped.push(entry))));
      assert.deepEqual(skipped, [{ path: './dir/pipe', type: 'FIFO' }]);
      const file = join(root, 'out.tar');
      writeFileSync(file, out);
      const listing = execFileSync('bsdtar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
      assert.deepEqual(listing, ['./', './dir/', './dir/file.txt']);
      const text = out.toString('latin1');
      assert.match(text, /SCHILY\.acl\.access=user::rw-\nuser:1001:rwx\ngroup::r--\nmask::rwx\nother::r--\n/);
      assert.match(text, /SCHILY\.acl\.default=user::rwx\ngroup::r-x\ngroup:1002:r-x\nmask::r-x\nother::r-x\n/);
      // bsdtar exits non-zero on a malformed pax header: extracting proves every header is well-formed.
      mkdirSync(join(root, 'x'));
      execFileSync('bsdtar', ['-x', '-p', '--acls', '--xattrs', '-f', file, '-C', join(root, 'x')]);
      assert.match(
        execFileSync('getfacl', ['-p', '-n', join(root, 'x', 'dir', 'file.txt')], { encoding: 'utf8' }),
        /user:1001:rwx/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('passes what it does not change without copying, and gives the same bytes however the input is cut', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pax-filter-'));
    try {
      const src = join(root, 'src');
      mkdirSync(join(src, 'dir'), { recursive: true });
      for (let i = 0; i < 40; i++) writeFileSync(join(src, 'dir', `f${i}.bin`), Buffer.alloc(700 + i * 97, i));
      execFileSync('setfattr', ['-n', 'user.k', '-v', ' size=9 path=x', join(src, 'dir', 'f1.bin')]);
      const plain = execFileSync('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', '-', '-C', src, '.']);
      // Nothing to change: the one chunk leaves as views of the very memory it came in.
      const chunks: Buffer[] = [];
      const filter = new PaxEntryFilter(NUMERIC, () => undefined);
      filter.on('data', (chunk: Buffer) => chunks.push(chunk));
      await pipeline(Readable.from([plain]), filter);
      assert.ok(Buffer.concat(chunks).equals(plain), 'the bytes are the input');
      assert.equal(chunks.length, 1);
      assert.equal(chunks[0].buffer, plain.buffer, 'not a copy');

      // With ACLs, a FIFO and a long name, every cut gives the output of the whole.
      execFileSync('setfacl', ['-m', 'u:1001:rwx', join(src, 'dir', 'f2.bin')]);
      execFileSync('setfacl', ['-d', '-m', 'g:1002:r-x', join(src, 'dir')]);
      execFileSync('mkfifo', [join(src, 'dir', 'pipe')]);
      writeFileSync(join(src, 'dir', `${'n'.repeat(150)}.txt`), 'long\n');
      const tar = execFileSync('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', '-', '-C', src, '.']);
      const run = async (size: number) => {
        const pieces: Buffer[] = [];
        for (let offset = 0; offset < tar.length; offset += size) pieces.push(tar.subarray(offset, offset + size));
        const skipped: SkippedEntry[] = [];
        const out = await buffer(Readable.from(pieces).pipe(new PaxEntryFilter(NUMERIC, (e) => skipped.push(e))));
        return { out, skipped };
      };
      const whole = await run(tar.length);
      assert.deepEqual(whole.skipped, [{ path: './dir/pipe', type: 'FIFO' }]);
      assert.match(whole.out.toString('latin1'), /SCHILY\.acl\.access=user::rw-\nuser:1001:rwx\n/);
      assert.ok(whole.out.length < tar.length, 'the FIFO is gone');
      for (const size of [1, 7, 511, 512, 513, 4096, 65536]) {
        const cut = await run(size);
        assert.ok(cut.out.equals(whole.out), `cut every ${size} bytes`);
        assert.deepEqual(cut.skipped, whole.skipped);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('fails a stream that ends without the end-of-archive blocks', async () => {
    const tar = execFileSync('tar', ['--format=pax', '-cf', '-', '-C', tmpdir(), '--no-recursion', '.']);
    const cut = tar.subarray(0, 512);
    await assert.rejects(
      buffer(Readable.from([cut]).pipe(new PaxEntryFilter(NAMES, () => undefined))),
      /end-of-archive/,
    );
  });
});

describe('Bacula bvfs rows', () => {
  it('decodes LStat fields (mode, owner, size, mtime)', () => {
    assert.deepEqual(decodeLStat('A A IHo B A A A x BAA A BnJp7y BnJp7y BnJp7y A A E'), {
      mode: 33256,
      uid: 0,
      gid: 0,
      size: 49,
      mtime: 1730584306,
    });
    assert.equal(decodeLStat('not an lstat'), null);
  });

  it('reads tab-separated rows, names with tabs kept whole', () => {
    const rows = parseBvfsRows('.bvfs_lsfiles jobid=1\n10\t4\t19\t1\tP4A Igph\tname\twith tab\nnoise');
    assert.deepEqual(rows, [{ lstat: 'P4A Igph', name: 'name\twith tab' }]);
  });
});
