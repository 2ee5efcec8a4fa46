import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { runJob, type JobBody } from '../support/jobs';
import { siteSelectionByHand } from '../support/duplicity-by-hand';
import { startAppWithSampleSite } from '../support/site-app';
import { diffSnapshots, mutateSiteTree, SITE_TREE, snapshotTree, type TreeSnapshot } from '../support/site-tree';
import { type TestApp } from '../support/test-app';
import { eventually, nextWholeSecond } from '../support/wait';

const run = promisify(execFile);
const PATHS = [...SITE_TREE.paths];
const EXCLUDE = [...SITE_TREE.exclude];
const MANIFEST_DIR = '.apiscp-backup-api';
/** A path restore's selection: an ACL, a binary xattr, a whole directory. */
const SOME_PATHS = [SITE_TREE.aclFile, SITE_TREE.xattrFile, 'info'];

/**
 * Sites are backed up from their own directory, with the attribute manifest in the site's root-owned
 * `.apiscp-backup-api`. Points an earlier version made from `/` (the manifest under DATA_DIR) stay listable,
 * browsable and restorable exactly, and the first backup after the change starts a new chain.
 */
describe('duplicity: points made from / before sites were backed up from their own directory', () => {
  let t: TestApp;
  let site: string;
  const states: TreeSnapshot[] = [];
  /** SOME_PATHS as they were at the old point, and at the newest. */
  let oldPaths: TreeSnapshot;
  let newestPaths: TreeSnapshot;
  let oldPoint: string;

  /** The points, once the listing is scanned (the hand backup's site was never scanned before the first look). */
  const points = async (): Promise<Array<{ id: string; level: string }>> => {
    const res = await eventually('a scanned listing', async () => {
      const listed = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200);
      const states = (listed.body.listings as Array<{ state: string }>).map((listing) => listing.state);
      return states.every((state) => state === 'scanned') ? listed : null;
    });
    return res.body.items as Array<{ id: string; level: string }>;
  };
  const restoreAndCompare = async (point: string, expected: TreeSnapshot, label: string): Promise<JobBody> => {
    const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const destination = job.result?.destination as string;
    assert.deepEqual(diffSnapshots(expected, await snapshotTree(destination, PATHS, EXCLUDE)), [], label);
    assert.deepEqual(readdirSync(destination).sort(), ['info', 'shadow'], `${label}: nothing of the service's own`);
    assert.ok(!JSON.stringify(job.result).includes('no attribute manifest'), `${label}: the manifest was found`);
    return job;
  };
  const restorePathsAndCompare = async (point: string, expected: TreeSnapshot, label: string): Promise<void> => {
    const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point, paths: SOME_PATHS });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const destination = job.result?.destination as string;
    assert.deepEqual(diffSnapshots(expected, await snapshotTree(destination, SOME_PATHS)), [], label);
    assert.ok(!existsSync(join(destination, SITE_TREE.plainFile)), `${label}: only the asked-for paths`);
    assert.ok(!existsSync(join(destination, MANIFEST_DIR)), `${label}: nothing of the service's own`);
  };
  const listed = async (point: string, path: string): Promise<string[]> => {
    const res = await t
      .http()
      .get(`/v1/sites/site1/restore-points/${point}/files`)
      .query({ path })
      .set(t.auth('operator'))
      .expect(200);
    return (res.body.items as Array<{ name: string }>).map((item) => item.name).sort();
  };

  before(async () => {
    ({ t, site } = await startAppWithSampleSite());
    // What the provider ran before: the manifest written under DATA_DIR, the site selected from `/`.
    const manifestDir = t.config.dataPath('duplicity', 'attributes', 'site1');
    mkdirSync(manifestDir, { recursive: true, mode: 0o700 });
    const { stdout: files } = await run(
      'find',
      ['shadow', 'info', '-path', 'shadow/var/lib', '-prune', '-o', '-print0'],
      { cwd: site, maxBuffer: 64 * 1024 * 1024 },
    );
    const { stdout: dump } = await run('getfattr', ['-h', '-d', '-m', '-', ...files.split('\0').filter(Boolean)], {
      cwd: site,
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.match(dump, /system\.posix_acl_access/, 'the hand manifest holds ACLs');
    writeFileSync(join(manifestDir, 'attributes.dump'), dump);
    states.push(await snapshotTree(site, PATHS, EXCLUDE));
    oldPaths = await snapshotTree(site, SOME_PATHS);
    await run(
      'duplicity',
      [
        'full',
        '--no-encryption',
        '--archive-dir',
        t.config.dataPath('duplicity', 'archive'),
        '--name',
        'site1',
        ...siteSelectionByHand(site, [manifestDir]),
        '/',
        `${t.config.duplicity.target}/site1`,
      ],
      { env: { PATH: process.env.PATH, HOME: t.config.dataPath('duplicity') } },
    );
  });
  after(() => t.close());

  it('lists and browses the point made from /, paths relative to the site', async () => {
    const listedPoints = await points();
    assert.equal(listedPoints.length, 1);
    oldPoint = listedPoints[0].id;
    assert.deepEqual(await listed(oldPoint, 'shadow/var/www'), ['html']);
    assert.ok((await listed(oldPoint, SITE_TREE.docroot)).includes('readme.txt'));
  });

  it('restores the point made from / whole and by path, xattrs and ACLs included', async () => {
    await restoreAndCompare(oldPoint, states[0], 'old point, whole');
    await restorePathsAndCompare(oldPoint, oldPaths, 'old point, paths');
  });

  it('starts a new chain from the site directory: the first incremental after the change is a full one', async () => {
    await nextWholeSecond();
    await mutateSiteTree(site, 1);
    states.push(await snapshotTree(site, PATHS, EXCLUDE));
    const first = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental' });
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    assert.equal(first.result?.level, 'full');
    assert.match(JSON.stringify(first.result), /starts a new chain/);
    const manifest = join(site, MANIFEST_DIR);
    const stats = lstatSync(manifest);
    assert.ok(stats.isDirectory() && stats.uid === 0 && (stats.mode & 0o777) === 0o700, 'root-owned, 0700');
    assert.ok(statSync(join(manifest, 'attributes.dump')).size > 0);

    await nextWholeSecond();
    await mutateSiteTree(site, 2);
    states.push(await snapshotTree(site, PATHS, EXCLUDE));
    newestPaths = await snapshotTree(site, SOME_PATHS);
    // What a capture killed with the service leaves behind.
    const leftover = join(manifest, '.attributes.dump.0123456789ab.tmp');
    writeFileSync(leftover, 'half a manifest');
    const second = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental' });
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
    assert.equal(second.result?.level, 'incremental', 'the new chain continues');
    assert.ok(!existsSync(leftover), "a killed capture's temporary file is removed");
    assert.equal((await points()).length, 3);
  });

  it('restores every point exactly, old and new layouts side by side, and browses the new ones', async () => {
    const all = (await points()).reverse();
    for (const [index, point] of all.entries()) await restoreAndCompare(point.id, states[index], `point ${index}`);
    const newest = all.at(-1)!.id;
    assert.ok((await listed(newest, SITE_TREE.docroot)).includes('readme.txt'));
    assert.deepEqual(await listed(newest, 'shadow/var/www'), ['html']);
    // Without the local copy of its manifest, a path restore reads it from the backup, in the site's layout.
    rmSync(t.config.dataPath('duplicity', 'attribute-copies'), { recursive: true, force: true });
    await restorePathsAndCompare(newest, newestPaths, 'newest point, paths, manifest from the backup');
    await restorePathsAndCompare(oldPoint, oldPaths, 'old point again, paths');
  });
});
