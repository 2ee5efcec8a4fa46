import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ProcessRunner } from '../../src/common/process/process-runner';
import { FsAttributesService } from '../../src/providers/fs-attributes/fs-attributes.service';
import {
  buildSiteTree,
  diffSnapshots,
  mutateSiteTree,
  SITE_TREE,
  snapshotTree,
  type TreeSnapshot,
} from '../support/site-tree';
import { nextWholeSecond } from '../support/wait';

const run = promisify(execFile);
// Not test-app's tempDir: that module loads the whole application, which this test does not need.
const tempDir = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), prefix));

/** Where a site's backup keeps its attribute manifest: inside the site root (so the backup carries it), outside shadow/info. */
const MANIFEST = '.backup-meta/fs-attributes.dump';

/** One site and its duplicity archive: the backup and restore command lines a duplicity provider would run. */
class DuplicitySite {
  readonly target: string;
  readonly archive: string;

  constructor(
    readonly work: string,
    readonly site: string,
    private readonly name: string,
  ) {
    this.target = join(work, `${name}-target`);
    this.archive = join(work, `${name}-archive`);
  }

  /** Captures the attributes into the site, then backs the site up (shadow minus shadow/var/lib, info, the manifest). */
  async backup(
    service: FsAttributesService,
    level: 'full' | 'incremental',
  ): Promise<{ entries: number; warnings: string[] }> {
    await mkdir(join(this.site, '.backup-meta'), { recursive: true });
    const captured = await service.capture({
      root: this.site,
      paths: [...SITE_TREE.paths],
      exclude: [...SITE_TREE.exclude],
      manifestFile: join(this.site, MANIFEST),
    });
    await this.duplicity([
      level,
      '--no-encryption',
      ...this.cache(),
      '--exclude',
      join(this.site, 'shadow/var/lib'),
      '--include',
      join(this.site, '.backup-meta'),
      '--include',
      join(this.site, 'shadow'),
      '--include',
      join(this.site, 'info'),
      '--exclude',
      '**',
      this.site,
      `file://${this.target}`,
    ]);
    return captured;
  }

  /** Restores everything (or one relative path) at `time` (epoch seconds) into `destination`. */
  async restore(destination: string, options: { path?: string; time?: number; force?: boolean } = {}): Promise<void> {
    await this.duplicity([
      'restore',
      '--no-encryption',
      ...this.cache(),
      ...(options.time === undefined ? [] : ['--time', String(options.time)]),
      ...(options.path === undefined ? [] : ['--file-to-restore', options.path]),
      ...(options.force ? ['--force'] : []),
      `file://${this.target}`,
      destination,
    ]);
  }

  private cache(): string[] {
    return ['--archive-dir', this.archive, '--name', this.name];
  }

  private async duplicity(args: string[]): Promise<void> {
    await run('duplicity', args, {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: this.work, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
      maxBuffer: 64 * 1024 * 1024,
    });
  }
}

const service = new FsAttributesService(new ProcessRunner());
const snapshot = (root: string, paths: string[] = [...SITE_TREE.paths]): Promise<TreeSnapshot> =>
  snapshotTree(root, paths, [...SITE_TREE.exclude]);
const entriesWithXattrs = (tree: TreeSnapshot, under = ''): number =>
  tree.entries.filter((entry) => entry.xattrs.length > 0 && entry.path.startsWith(under)).length;

describe('fs-attributes around a real duplicity 0.8 backup and restore', () => {
  let work: string;
  let site: DuplicitySite;
  let source: TreeSnapshot;
  let captured: { entries: number; warnings: string[] };
  let restoreCount = 0;
  /** A fresh destination for each restore: duplicity refuses to restore into an existing directory. */
  const destination = (): string => join(work, `restore-${++restoreCount}`);

  before(async () => {
    work = await tempDir('fs-attributes-it-');
    site = new DuplicitySite(work, join(work, 'site1'), 'site1');
    await buildSiteTree(site.site, { newlineName: true });
    source = await snapshot(site.site);
    captured = await site.backup(service, 'full');
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('builds a tree that holds what the restore must bring back', () => {
    const byPath = new Map(source.entries.map((entry) => [entry.path, entry]));
    assert.equal(byPath.get(SITE_TREE.docroot)?.mode, '2775');
    assert.equal(byPath.get('shadow/tmp')?.mode, '1777');
    assert.equal(byPath.get(SITE_TREE.largeFile)?.size, 20 * 1024 * 1024);
    assert.equal(byPath.get(SITE_TREE.newlineFile)?.type, 'file');
    assert.equal(byPath.get('shadow/var/www/html/dangling')?.target, 'does-not-exist.txt');
    assert.ok(byPath.get(SITE_TREE.aclFile)?.acl?.includes('user:1001:rwx'));
    assert.ok(byPath.get(SITE_TREE.defaultAclDir)?.acl?.includes('default:user:1001:rwx'));
    assert.ok(
      byPath.get('shadow/var/www/html/wp-content/cache/page-1.html')?.acl?.includes('user:1001:rwx'),
      'inherited',
    );
    assert.ok(byPath.get(SITE_TREE.xattrFile)?.xattrs.includes('user.fortify=0sAP8KDVw9Ig=='));
    assert.ok(byPath.get(SITE_TREE.xattrFile)?.xattrs.includes('user.empty-flag=0s'), 'an empty value');
    assert.ok(byPath.get('shadow/home/admin1')?.xattrs.some((line) => line.startsWith('trusted.apiscp.quota=')));
    assert.ok(!byPath.has(SITE_TREE.databaseFile), 'the snapshot leaves out the excluded path');
  });

  it('without the manifest, duplicity loses every xattr and ACL (and nothing else)', async () => {
    const restored = destination();
    await site.restore(restored);
    const differences = diffSnapshots(source, await snapshot(restored));

    for (const expected of [
      `"${SITE_TREE.xattrFile}": xattr user.fortify only in source`,
      `"${SITE_TREE.xattrFile}": xattr user.empty-flag only in source`,
      `"shadow/home/admin1": xattr trusted.apiscp.quota only in source`,
      `"${SITE_TREE.aclFile}": xattr system.posix_acl_access only in source`,
      `"${SITE_TREE.aclFile}": acl user:1001:rwx only in source`,
      // The mask (rwx) became the group bits, so the owning group now has what the mask allowed.
      `"${SITE_TREE.aclFile}": acl group::--- only in source`,
      `"${SITE_TREE.aclFile}": acl group::rwx only in restored`,
      `"${SITE_TREE.defaultAclDir}": xattr system.posix_acl_default only in source`,
      `"${SITE_TREE.defaultAclDir}": acl default:user:1001:rwx only in source`,
      `${JSON.stringify(SITE_TREE.newlineFile)}: xattr user.odd only in source`,
    ]) {
      assert.ok(differences.includes(expected), `expected ${expected} in:\n${differences.join('\n')}`);
    }
    // Modes, owners, contents and links come back; the group bits of a file WITHOUT an ACL are never widened.
    const other = differences.filter((line) => !/: (xattr|acl) /.test(line));
    assert.deepEqual(other, []);
    const withAcl = new Set(
      source.entries
        .filter((e) => e.xattrs.some((x) => x.startsWith('system.posix_acl_')))
        .map((e) => JSON.stringify(e.path)),
    );
    const aclLossOnPlainFiles = differences.filter(
      (line) => / acl /.test(line) && !withAcl.has(line.split(': acl ')[0]),
    );
    assert.deepEqual(aclLossOnPlainFiles, []);
  });

  it('with capture before the backup and apply after the restore, the restored tree is identical', async () => {
    assert.deepEqual(captured.warnings, []);
    assert.equal(captured.entries, entriesWithXattrs(source));
    const restored = destination();
    await site.restore(restored);
    const applied = await service.apply({ root: restored, manifestFile: join(restored, MANIFEST), workDir: work });
    assert.deepEqual(applied.warnings, []);
    assert.equal(applied.applied, captured.entries);
    assert.deepEqual(diffSnapshots(source, await snapshot(restored)), []);
  });

  it('escapes the newline in a file name and brings its xattr back', async () => {
    const manifest = await readFile(join(site.site, MANIFEST), 'utf8');
    assert.ok(manifest.includes('# file: shadow/var/www/html/line\\012break.txt\nuser.odd=0seWVz\n'));
    assert.ok(manifest.includes('# file: shadow/var/www/html/é ü 文件.txt\n'));
  });

  it('leaves excluded paths out of the manifest', async () => {
    const manifest = await readFile(join(site.site, MANIFEST), 'utf8');
    assert.ok(!manifest.includes('# file: shadow/var/lib'));
    // ...although the excluded file does carry attributes in the source.
    const excluded = await snapshotTree(site.site, [SITE_TREE.databaseFile]);
    assert.ok(excluded.entries[0].xattrs.some((line) => line.startsWith('system.posix_acl_access=')));
    assert.ok(excluded.entries[0].xattrs.includes('user.fortify=0sZGI='));
  });

  it('restores one subtree with onlyPaths, applying only its entries', async () => {
    const restored = destination();
    // duplicity needs the parent of a single restored path to exist (else it restores nothing and exits 0).
    await mkdir(join(restored, 'shadow/var/www'), { recursive: true });
    await mkdir(join(restored, '.backup-meta'));
    await site.restore(join(restored, SITE_TREE.docroot), { path: SITE_TREE.docroot });
    await site.restore(join(restored, MANIFEST), { path: MANIFEST });

    const applied = await service.apply({
      root: restored,
      manifestFile: join(restored, MANIFEST),
      onlyPaths: [SITE_TREE.docroot],
    });
    assert.deepEqual(applied.warnings, []);
    assert.equal(applied.applied, entriesWithXattrs(source, SITE_TREE.docroot));
    assert.ok(applied.applied < captured.entries);
    const subtree = (tree: TreeSnapshot): TreeSnapshot => ({
      entries: tree.entries.filter((e) => e.path === SITE_TREE.docroot || e.path.startsWith(`${SITE_TREE.docroot}/`)),
    });
    assert.deepEqual(diffSnapshots(subtree(source), await snapshot(restored, [SITE_TREE.docroot])), []);
    // Outside the selection nothing was touched: shadow/home was not restored and is not reported missing.
    await assert.rejects(stat(join(restored, 'shadow/home')));
  });

  it('reports entries whose files are gone as warnings and applies the rest', async () => {
    const restored = destination();
    await site.restore(restored);
    await unlink(join(restored, SITE_TREE.xattrFile));
    await rm(join(restored, SITE_TREE.defaultAclDir), { recursive: true });

    const applied = await service.apply({ root: restored, manifestFile: join(restored, MANIFEST) });
    const gone = entriesWithXattrs(source, SITE_TREE.defaultAclDir) + 1;
    assert.equal(applied.applied, captured.entries - gone);
    assert.equal(applied.warnings.length, gone);
    assert.ok(
      applied.warnings.includes(`"${SITE_TREE.xattrFile}": no longer exists; its attributes were not re-applied`),
    );
  });

  it('turns a path the walk cannot read into a warning, not a failure', async () => {
    const manifest = join(work, 'with-missing.dump');
    const result = await service.capture({
      root: site.site,
      paths: [...SITE_TREE.paths, 'shadow/not-there'],
      exclude: [...SITE_TREE.exclude],
      manifestFile: manifest,
    });
    assert.equal(result.entries, captured.entries);
    assert.deepEqual(result.warnings, ['attribute-walker: shadow/not-there: No such file or directory']);
  });

  it('brings back an empty xattr value even when it is the first value setfattr decodes', async () => {
    // setfattr 2.5.1 silently skips `name=0s` (exit 1, no message) until it has decoded some other base64 value.
    const tree = join(work, 'empty-value');
    await mkdir(join(tree, 'shadow'), { recursive: true });
    await writeFile(join(tree, 'shadow/flagged'), '');
    await run('setfattr', ['-n', 'user.flag', join(tree, 'shadow/flagged')]);
    const before = await snapshotTree(tree, ['shadow']);
    await service.capture({ root: tree, paths: ['shadow'], exclude: [], manifestFile: join(work, 'empty-value.dump') });
    await run('setfattr', ['-x', 'user.flag', join(tree, 'shadow/flagged')]);
    const applied = await service.apply({ root: tree, manifestFile: join(work, 'empty-value.dump') });
    assert.deepEqual(applied, { applied: 1, warnings: [] });
    assert.deepEqual(diffSnapshots(before, await snapshotTree(tree, ['shadow'])), []);
  });

  it('a destination under a default ACL makes restored files inherit ACLs; prepareRestoreDestination prevents it', async () => {
    const parent = join(work, 'staging-with-default-acl');
    await mkdir(parent);
    await run('setfacl', ['-d', '-m', 'u:1003:rwx,m::rwx', parent]);

    const careless = join(parent, 'careless');
    await site.restore(careless);
    const carelessApply = await service.apply({ root: careless, manifestFile: join(careless, MANIFEST) });
    assert.ok(
      carelessApply.warnings.some((warning) => warning.startsWith(`${JSON.stringify(careless)} has a default ACL`)),
    );
    const inherited = diffSnapshots(source, await snapshot(careless));
    assert.ok(
      inherited.includes(`"${SITE_TREE.plainFile}": acl user:1003:rwx only in restored`),
      `a file without an ACL picked one up:\n${inherited.join('\n')}`,
    );

    const prepared = join(parent, 'prepared');
    await mkdir(prepared);
    await service.prepareRestoreDestination(prepared);
    await site.restore(prepared, { force: true });
    const preparedApply = await service.apply({ root: prepared, manifestFile: join(prepared, MANIFEST) });
    assert.deepEqual(preparedApply.warnings, []);
    assert.deepEqual(diffSnapshots(source, await snapshot(prepared)), []);
  });
});

describe('fs-attributes across duplicity incrementals', () => {
  let work: string;
  let site: DuplicitySite;
  const snapshots: TreeSnapshot[] = [];
  const times: number[] = [];

  before(async () => {
    work = await tempDir('fs-attributes-inc-');
    site = new DuplicitySite(work, join(work, 'site2'), 'site2');
    await buildSiteTree(site.site, { largeFileBytes: 2 * 1024 * 1024 });
    for (let step = 0; step <= 3; step++) {
      if (step > 0) {
        // duplicity names backups by the second, and sees a changed file only when its mtime moved to another
        // second (a same-size or bigger change within the second is missed): let a second pass before changing.
        await nextWholeSecond();
        await mutateSiteTree(site.site, step);
      }
      snapshots.push(await snapshot(site.site));
      const captured = await site.backup(service, step === 0 ? 'full' : 'incremental');
      assert.deepEqual(captured.warnings, []);
      times.push(Math.floor(Date.now() / 1000));
    }
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('each mutation step changes content, attributes and modes', () => {
    for (let step = 1; step <= 3; step++) {
      const changes = diffSnapshots(snapshots[step - 1], snapshots[step], ['before', 'after']);
      assert.ok(
        changes.some((line) => / (sha256|type) /.test(line) || / only in /.test(line)),
        `step ${step}: content`,
      );
      assert.ok(
        changes.some((line) => / (xattr|acl) /.test(line)),
        `step ${step}: attributes`,
      );
      assert.ok(
        changes.some((line) => / (mode|uid) /.test(line)),
        `step ${step}: mode or owner`,
      );
    }
  });

  for (const step of [3, 1]) {
    it(`restores the point after step ${step} exactly, with that point's manifest`, async () => {
      const restored = join(work, `restore-step-${step}`);
      await site.restore(restored, { time: times[step] });
      const applied = await service.apply({ root: restored, manifestFile: join(restored, MANIFEST) });
      assert.deepEqual(applied.warnings, []);
      assert.deepEqual(diffSnapshots(snapshots[step], await snapshot(restored)), []);
    });
  }
});

describe('fs-attributes on 20,000 small files with ACLs', () => {
  let work: string;

  before(async () => {
    work = await tempDir('fs-attributes-bulk-');
    const files = join(work, 'site/shadow/var/www/html');
    await mkdir(files, { recursive: true });
    await run('setfacl', ['-d', '-m', 'u:1001:rwx,g:1002:r-x', files]);
    for (let dir = 0; dir < 100; dir++) {
      const sub = join(files, `d${dir}`);
      await mkdir(sub);
      await Promise.all(
        Array.from({ length: 200 }, (_, n) => writeFile(join(sub, `file-${n}.php`), `<?php // ${dir}/${n}\n`)),
      );
    }
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('captures and re-applies them, and reports the cost', async (t) => {
    const manifestFile = join(work, 'bulk.dump');
    const started = process.hrtime.bigint();
    const captured = await service.capture({ root: join(work, 'site'), paths: ['shadow'], exclude: [], manifestFile });
    const captureMs = Number(process.hrtime.bigint() - started) / 1e6;
    // 20,000 files + 100 directories + html, each with an inherited access ACL (directories also a default one).
    assert.equal(captured.entries, 20_101);
    assert.deepEqual(captured.warnings, []);
    const bytes = (await stat(manifestFile)).size;

    const applyStarted = process.hrtime.bigint();
    const applied = await service.apply({ root: join(work, 'site'), manifestFile });
    const applyMs = Number(process.hrtime.bigint() - applyStarted) / 1e6;
    assert.equal(applied.applied, 20_101);
    t.diagnostic(
      `capture ${captureMs.toFixed(0)} ms, manifest ${bytes} bytes (${(bytes / captured.entries).toFixed(0)} B/entry), apply ${applyMs.toFixed(0)} ms`,
    );
    assert.ok(captureMs < 60_000);
  });
});
