import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, link, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { OpenedDir, SafeFsError, walk, withDir } from '../../src/common/safe-fs';
import { fingerprint, plantSentinel, startSwapRacer } from '../support/hostile-tenant';

const run = promisify(execFile);

function refusedWith(reason: SafeFsError['reason']): (error: unknown) => boolean {
  return (error) => error instanceof SafeFsError && error.reason === reason;
}

function errno(code: string): (error: unknown) => boolean {
  return (error) => (error as NodeJS.ErrnoException).code === code;
}

describe('safe-fs: working inside a hostile tree from opened descriptors', () => {
  let work: string;
  let site: string;
  let outside: string;
  let sentinel: string[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'safe-fs-'));
    outside = join(work, 'outside');
    await plantSentinel(outside);
    sentinel = await fingerprint(outside);
  });
  after(() => rm(work, { recursive: true, force: true }));

  beforeEach(async () => {
    site = join(work, `site-${Math.random().toString(36).slice(2)}`);
    await mkdir(join(site, 'shadow', 'var', 'www'), { recursive: true });
  });

  const untouched = async (): Promise<void> => assert.deepEqual(await fingerprint(outside), sentinel);

  it('opens a path component by component and refuses a symlink at any of them', async () => {
    await withDir(OpenedDir.openTrusted(site), async (root) => {
      await withDir(root.openDir('shadow/var/www'), async (www) => assert.ok((await www.stat()).isDirectory()));
      await symlink(outside, join(site, 'shadow', 'var', 'link'));
      await assert.rejects(root.openDir('shadow/var/link'), refusedWith('not-a-directory'));
      await assert.rejects(root.openDir('shadow/var/link/lib'), refusedWith('not-a-directory'));
      await assert.rejects(root.openDir('shadow/../..'), refusedWith('bad-name'));
      await assert.rejects(root.openDir('shadow/missing'), errno('ENOENT'));
      assert.equal(await root.tryOpenDir('shadow/missing'), undefined);
    });
    await untouched();
  });

  it('keeps working in the directory it opened after the tenant swaps it for a link', async () => {
    await withDir(OpenedDir.openTrusted(site), async (root) => {
      const www = await root.openDir('shadow/var/www');
      try {
        await run('mv', [join(site, 'shadow/var/www'), join(site, 'shadow/var/www.moved')]);
        await symlink(outside, join(site, 'shadow/var/www'));
        const file = await www.createFile('written');
        await file.writeFile('x');
        await file.close();
      } finally {
        await www.close();
      }
    });
    assert.equal(await readFile(join(site, 'shadow/var/www.moved/written'), 'utf8'), 'x');
    await untouched();
  });

  it('a held directory the tenant removes (another directory renamed over it) is a refusal, not an unexplained ENOENT', async () => {
    const tenantsOwn = join(site, 'shadow/var/tenants-own');
    await mkdir(tenantsOwn);
    await writeFile(join(tenantsOwn, 'keep'), 'tenant\n');
    const refused = withDir(OpenedDir.openTrusted(site), (root) =>
      withDir(root.ensurePrivateDir('.held'), async (held) => {
        // rename(2) replaces an empty directory: the one the service holds is gone, its descriptor still open.
        await run('mv', ['-T', tenantsOwn, join(site, '.held')]);
        const file = await held.createFile('manifest');
        await file.close();
      }),
    );
    await assert.rejects(refused, (error: unknown) => {
      assert.ok(error instanceof SafeFsError && error.reason === 'removed', String(error));
      assert.match(error.message, /\.held was removed while in use/);
      return true;
    });
    assert.equal(await readFile(join(site, '.held/keep'), 'utf8'), 'tenant\n', 'the tenant’s directory is untouched');
    await untouched();
  });

  it('creates private root-owned 0700 directories and refuses ones a tenant owns or can write', async () => {
    await withDir(OpenedDir.openTrusted(site), async (root) => {
      const made = await root.ensurePath('shadow/var/backups/databases/mysql', 2);
      await made.close();
      assert.equal((await stat(join(site, 'shadow/var/backups/databases'))).mode & 0o7777, 0o700);
      assert.equal((await stat(join(site, 'shadow/var/backups/databases/mysql'))).mode & 0o7777, 0o700);
      assert.equal((await stat(join(site, 'shadow/var/backups'))).mode & 0o7777, 0o755);

      // A root-owned directory with a wider mode nobody else can write is narrowed.
      await chmod(join(site, 'shadow/var/backups/databases/mysql'), 0o755);
      await (await root.ensurePath('shadow/var/backups/databases/mysql', 2)).close();
      assert.equal((await stat(join(site, 'shadow/var/backups/databases/mysql'))).mode & 0o7777, 0o700);

      await mkdir(join(site, 'shadow/var/tenant/mysql'), { recursive: true });
      await chown(join(site, 'shadow/var/tenant/mysql'), 1000, 1000);
      await assert.rejects(root.ensurePath('shadow/var/tenant/mysql', 1), refusedWith('not-private'));
      await mkdir(join(site, 'shadow/var/open/mysql'), { recursive: true, mode: 0o777 });
      await chmod(join(site, 'shadow/var/open/mysql'), 0o777);
      await assert.rejects(root.ensurePath('shadow/var/open/mysql', 1), refusedWith('not-private'));
      await symlink(outside, join(site, 'shadow/var/linked'));
      await assert.rejects(root.ensurePath('shadow/var/linked/mysql', 1), refusedWith('not-a-directory'));
    });
    assert.equal((await stat(join(outside, 'lib'))).mode & 0o7777, 0o755);
    await untouched();
  });

  it('creates files only under new names: planted links, hardlinks and files all fail with EEXIST', async () => {
    const dir = join(site, 'shadow/var/www');
    await symlink(join(outside, 'victim'), join(dir, 'planted-link'));
    await symlink(join(outside, 'nowhere'), join(dir, 'dangling-link'));
    await link(join(outside, 'victim'), join(dir, 'planted-hardlink'));
    await writeFile(join(dir, 'existing'), 'tenant');
    await withDir(OpenedDir.openTrusted(dir), async (www) => {
      for (const name of ['planted-link', 'dangling-link', 'planted-hardlink', 'existing']) {
        await assert.rejects(www.createFile(name), errno('EEXIST'), name);
      }
      const handle = await www.createFile('fresh', 0o600);
      await handle.writeFile('ok');
      await handle.close();
    });
    assert.equal((await stat(join(dir, 'fresh'))).mode & 0o777, 0o600);
    await rm(join(dir, 'planted-hardlink'));
    await untouched();
  });

  it('renames within and between opened directories', async () => {
    await mkdir(join(site, 'shadow/a'));
    await writeFile(join(site, 'shadow/a/f'), 'f');
    await withDir(OpenedDir.openTrusted(site), async (root) => {
      const a = await root.openDir('shadow/a');
      const www = await root.openDir('shadow/var/www');
      await a.rename('f', a, 'g');
      await a.rename('g', www, 'h');
      await a.close();
      await www.close();
    });
    assert.equal(await readFile(join(site, 'shadow/var/www/h'), 'utf8'), 'f');
  });

  it('removes a tree without following links to directories or files outside', async () => {
    const tree = join(site, 'shadow/var/www');
    await mkdir(join(tree, 'a/b/c'), { recursive: true });
    await writeFile(join(tree, 'a/b/c/file'), 'x');
    await symlink(outside, join(tree, 'a/to-outside'));
    await symlink(join(outside, 'victim'), join(tree, 'a/b/to-victim'));
    await link(join(outside, 'secret'), join(tree, 'a/hard-secret'));
    await run('mkfifo', [join(tree, 'a/fifo')]);
    await withDir(OpenedDir.openTrusted(join(site, 'shadow/var')), (dir) => dir.removeTree('www'));
    await assert.rejects(stat(tree), errno('ENOENT'));
    await untouched();
    await withDir(OpenedDir.openTrusted(site), (dir) => dir.removeTree('never-existed'));
  });

  it('reads only regular files, bounded: links, FIFOs, devices, hardlinks and big files are refused at once', async () => {
    const dir = join(site, 'shadow/var/www');
    await writeFile(join(dir, 'manifest.json'), '{"ok":true}');
    await symlink(join(outside, 'secret'), join(dir, 'link'));
    await symlink('/dev/zero', join(dir, 'zero-link'));
    await run('mkfifo', [join(dir, 'fifo')]);
    await run('mknod', [join(dir, 'zero-node'), 'c', '1', '5']);
    await link(join(outside, 'secret'), join(dir, 'hardlink'));
    await writeFile(join(dir, 'big'), Buffer.alloc(2048));
    await withDir(OpenedDir.openTrusted(dir), async (www) => {
      const limits = { maxBytes: 1024, timeoutMs: 5000 };
      assert.equal((await www.readRegularFile('manifest.json', limits)).toString(), '{"ok":true}');
      await assert.rejects(www.readRegularFile('link', limits), refusedWith('symlink'));
      await assert.rejects(www.readRegularFile('zero-link', limits), refusedWith('symlink'));
      await assert.rejects(www.readRegularFile('fifo', limits), refusedWith('not-regular'));
      await assert.rejects(www.readRegularFile('zero-node', limits), refusedWith('not-regular'));
      await assert.rejects(www.readRegularFile('hardlink', limits), refusedWith('hardlinked'));
      await assert.rejects(www.readRegularFile('big', limits), refusedWith('too-large'));
      await assert.rejects(www.readRegularFile('missing', limits), errno('ENOENT'));
      const opened = await www.openRegularFile('big', { maxBytes: 4096 });
      assert.equal(opened.stats.size, 2048);
      await opened.handle.close();
    });
    await rm(join(dir, 'hardlink'));
    await untouched();
  });

  it('walks a tree by descriptor, reporting links as links and never entering them', async () => {
    const tree = join(site, 'shadow/var/www');
    await mkdir(join(tree, 'html/sub'), { recursive: true });
    await writeFile(join(tree, 'html/index.php'), '<?php');
    await writeFile(join(tree, 'html/sub/x'), 'x');
    await symlink(outside, join(tree, 'html/out'));
    const seen: string[] = [];
    await withDir(OpenedDir.openTrusted(tree), async (www) => {
      for await (const entry of walk(www)) {
        const type = entry.stats.isSymbolicLink() ? 'l' : entry.stats.isDirectory() ? 'd' : 'f';
        seen.push(`${type} ${entry.path}`);
        if (entry.stats.isFile()) {
          const bytes = await entry.parent.readRegularFile(entry.name, { maxBytes: 100 });
          assert.ok(bytes.length > 0);
        }
      }
    });
    assert.deepEqual(seen, ['d html', 'f html/index.php', 'l html/out', 'd html/sub', 'f html/sub/x']);
  });

  it('a racer swapping a directory for a link hundreds of times never redirects a create or a removal', async () => {
    const parent = join(site, 'shadow/var');
    const swapped = join(parent, 'backups');
    await mkdir(swapped);
    const racer = await startSwapRacer(swapped, outside, { maxRounds: 300, maxMs: 20_000 });
    let created = 0;
    let refused = 0;
    try {
      await withDir(OpenedDir.openTrusted(site), async (root) => {
        for (let i = 0; racer.running() || i < 50; i++) {
          try {
            const dir = await root.ensurePath('shadow/var/backups/databases', 1);
            try {
              const handle = await dir.createFile(`f${i}`);
              await handle.writeFile('dump');
              await handle.close();
              await dir.removeTree(`f${i}`);
              created++;
            } finally {
              await dir.close();
            }
          } catch (error) {
            if (!(error instanceof SafeFsError) && !(error as NodeJS.ErrnoException).code) throw error;
            refused++;
          }
        }
      });
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
    }
    assert.ok(created > 0, `${created} created, ${refused} refused`);
    await untouched();
  });
});
