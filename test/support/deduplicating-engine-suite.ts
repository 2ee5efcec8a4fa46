import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { download, emptyDir, extract } from './archives';
import { assertNoSecret, writeRandomBytes, type HeldLock } from './deduplicating-engines';
import { runJob, waitForJob, type JobBody } from './jobs';
import { assertProblem } from './problem';
import {
  addSampleSite,
  buildSiteTree,
  diffSnapshots,
  mutateSiteTree,
  SITE_TREE,
  snapshotTree,
  type TreeSnapshot,
} from './site-tree';
import { startTestApp, tempDir, type TestApp } from './test-app';

const PATHS = [...SITE_TREE.paths];
const WWW = 'shadow/var/www';

interface PointFileBody {
  name: string;
  path: string;
  type: string;
  size: number | null;
  mode: string | null;
  uid: number | null;
  gid: number | null;
  mtime: string | null;
  target: string | null;
}
const EXCLUDE = [...SITE_TREE.exclude];

export interface EngineUnderTest {
  provider: 'restic' | 'borg';
  /** The service's environment for this engine, with `root` a fresh directory of the test. */
  env(root: string): Record<string, string>;
  /** The same, with a wrong password or passphrase file. */
  wrongSecretEnv(root: string): Record<string, string>;
  /** The same, with a repository that cannot be reached. */
  unreachableEnv(root: string): Record<string, string>;
  /** The secret the password file holds, which must appear in no log. */
  secret: string;
  /** An exclusive lock on site1's repository held by a live process, on `host` when given. */
  holdLock(t: TestApp, host?: string): Promise<HeldLock>;
  /** The job error code of a locked repository. */
  lockedCode: string;
  wrongSecretCode: string;
  /**
   * Whether the engine walks the tree from opened directories (borg 1.2: dir fds and O_NOFOLLOW), so a tenant swapping
   * a directory for a link mid-backup cannot redirect it. restic 0.14 reads by path (see docs/restic-borg.md).
   */
  walksFromOpenedDirectories: boolean;
  /** Whether site1's repository holds any lock now. */
  isLocked(t: TestApp): boolean;
  /** What the locks are (files, sizes, holders), for a failure message. */
  describeLocks(t: TestApp): string;
}

/** The same HTTP-level proof for each deduplicating engine: backups, restore points, exact restores, failures. */
export function describeDeduplicatingEngine(engine: EngineUnderTest): void {
  const { provider } = engine;

  describe(`${provider} through the API`, () => {
    let t: TestApp;
    let site: string;
    const states = new Map<string, TreeSnapshot>();
    /** point → the document root's parent (shadow/var/www) as it was then, for downloads and browsing. */
    const wwwStates = new Map<string, TreeSnapshot>();
    const backups: JobBody[] = [];

    before(async () => {
      const root = tempDir();
      t = await startTestApp({ PROVIDERS: provider, ...engine.env(root) }, root);
      site = await addSampleSite(t.config.virtualRoot, { largeFileBytes: 1024 * 1024 });
      // A symlink's own xattr (only root can set one): restic drops it, so its manifest must bring it back.
      execFileSync('setfattr', [
        '-h',
        '-n',
        'trusted.apiscp.link',
        '-v',
        'kept',
        join(site, 'shadow/var/www/html/uploads'),
      ]);
    });
    after(() => t?.close());

    it(`lists ${provider} with full and incremental, available`, async () => {
      const res = await t.http().get('/v1/providers').set(t.auth('monitor')).expect(200);
      const found = res.body.find((p: { name: string }) => p.name === provider);
      assert.deepEqual(found.levels, ['full', 'incremental']);
      assert.equal(found.available, true, JSON.stringify(found));
      assert.match(found.version, /^\d+\.\d+/);
    });

    it('full backup, a change, a second backup asked as incremental: two complete points, each its own chain', async () => {
      const full = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
      assert.equal(full.status, 'succeeded', JSON.stringify(full));
      assert.equal(full.result?.level, 'full');
      states.set(full.result?.restorePoint as string, await snapshotTree(site, PATHS, EXCLUDE));
      wwwStates.set(full.result?.restorePoint as string, await snapshotTree(join(site, WWW), ['.']));
      backups.push(full);

      await mutateSiteTree(site, 1);
      await mutateSiteTree(site, 2);
      const second = await runJob(t, `/v1/sites/${SITE_TREE.domain}/backups`, {
        level: 'incremental',
        exportDatabases: false,
      });
      assert.equal(second.status, 'succeeded', JSON.stringify(second));
      assert.equal(second.result?.level, 'full', 'recorded as what it is');
      assert.equal(second.result?.requestedLevel, 'incremental');
      assert.match((second.result?.notes as string[]).join(' '), /deduplicated/);
      assert.match(second.steps.find((s) => s.name === 'backup')?.detail ?? '', /made a full backup/);
      // Deduplicated: the second point stored far less than the first (1 MiB of random data is unchanged).
      assert.ok((second.result?.bytes as number) < (full.result?.bytes as number) / 2, JSON.stringify(second.result));
      states.set(second.result?.restorePoint as string, await snapshotTree(site, PATHS, EXCLUDE));
      wwwStates.set(second.result?.restorePoint as string, await snapshotTree(join(site, WWW), ['.']));
      backups.push(second);

      const res = await t
        .http()
        .get(`/v1/sites/site1/restore-points?provider=${provider}`)
        .set(t.auth('monitor'))
        .expect(200);
      const points = res.body.items as Array<{ id: string; level: string; chain: string[]; state: string }>;
      assert.deepEqual(
        points.map((p) => p.id),
        [...states.keys()].reverse(),
      );
      for (const point of points) {
        assert.equal(point.level, 'full');
        assert.deepEqual(point.chain, [point.id]);
        assert.equal(point.state, 'complete');
      }
    });

    it('restores each point to staging identical to the source then: content, modes, owners, links, xattrs, ACLs', async () => {
      for (const [point, state] of states) {
        const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point });
        assert.equal(job.status, 'succeeded', JSON.stringify(job));
        const restored = await snapshotTree(job.result?.destination as string, PATHS, EXCLUDE);
        assert.deepEqual(diffSnapshots(state, restored), [], point);
      }
    });

    it('browses each point through HTTP: a directory page by page, one file as it was, the directory as a tar', async () => {
      const work = tempDir(`${provider}-browse-`);
      try {
        for (const [point, state] of wwwStates) {
          const base = `/v1/sites/site1/restore-points/${point}`;
          const expected = state.entries
            .filter((entry) => /^\.\/html\/[^/]+$/.test(entry.path))
            .sort((a, b) => (a.path < b.path ? -1 : 1));
          const listed: PointFileBody[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const query: string = `path=${SITE_TREE.docroot}&limit=4${cursor ? `&cursor=${cursor}` : ''}`;
            const res = await t.http().get(`${base}/files?${query}`).set(t.auth('operator'));
            assert.equal(res.status, 200, res.text);
            const page = res.body as { items: PointFileBody[]; nextCursor: string | null };
            assert.ok(page.items.length <= 4, JSON.stringify(page));
            listed.push(...page.items);
            cursor = page.nextCursor;
            pages++;
          } while (cursor);
          assert.ok(pages >= 3, `${expected.length} entries in pages of 4`);
          const name = (path: string): string => path.slice('./html/'.length);
          // The engines keep each entry's stat: everything the listing shows can be compared.
          assert.deepEqual(
            listed.map((f) => [
              f.name,
              f.path,
              f.type,
              f.mode,
              f.uid,
              f.gid,
              f.type === 'file' ? f.size : null,
              f.target,
            ]),
            expected.map((e) => [
              name(e.path),
              `${SITE_TREE.docroot}/${name(e.path)}`,
              e.type,
              e.mode,
              e.uid,
              e.gid,
              e.size,
              e.target,
            ]),
            `${point}: the listing of ${SITE_TREE.docroot}`,
          );
          assert.ok(listed.every((f) => f.mtime !== null && !Number.isNaN(Date.parse(f.mtime))));

          const index = expected.find((e) => e.path === './html/index.php')!;
          const content = await download(t, `${base}/files/content?path=${SITE_TREE.docroot}/index.php`);
          assert.equal(content.status, 200, content.text);
          assert.equal(createHash('sha256').update(content.body).digest('hex'), index.sha256, `${point}: content`);
          assert.equal((await waitForJob(t, String(content.headers['x-job-id']))).status, 'succeeded');

          const tar = await download(t, `${base}/archive?path=${WWW}`);
          assert.equal(tar.status, 200, tar.text.slice(0, 400));
          const archive = join(work, `${point}.tar`);
          writeFileSync(archive, tar.body);
          for (const tool of ['gnu', 'bsd'] as const) {
            const into = await emptyDir(work, `${tool}-`);
            await extract(tool, archive, into);
            assert.deepEqual(
              diffSnapshots(state, await snapshotTree(into, ['.']), ['at the point', tool]),
              [],
              `${point}: ${tool}`,
            );
          }
          assert.equal((await waitForJob(t, String(tar.headers['x-job-id']))).status, 'succeeded');
          assert.deepEqual(readdirSync(t.config.dataPath('archives')), [], 'the work areas are gone');
        }
        assert.equal(wwwStates.size, 2);
        assertProblem(
          await t
            .http()
            .get(`/v1/sites/site1/restore-points/${[...wwwStates.keys()][0]}/files?path=${SITE_TREE.docroot}/index.php`)
            .set(t.auth('operator')),
          404,
          'archive-path-not-found',
        );
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });

    it('restores only the asked paths', async () => {
      const [first] = states.keys();
      const paths = [SITE_TREE.defaultAclDir, SITE_TREE.aclFile, 'info'];
      const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: first, paths });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      const destination = job.result?.destination as string;
      const restored = await snapshotTree(destination, PATHS, EXCLUDE);
      const expected = {
        entries: states
          .get(first)!
          .entries.filter((entry) => paths.some((p) => entry.path === p || entry.path.startsWith(`${p}/`))),
      };
      const parents = new Set([
        'shadow',
        'shadow/var',
        'shadow/var/www',
        'shadow/var/www/html',
        'shadow/var/www/html/wp-content',
      ]);
      assert.deepEqual(
        diffSnapshots(expected, { entries: restored.entries.filter((entry) => !parents.has(entry.path)) }),
        [],
      );
      assert.ok(!restored.entries.some((entry) => entry.path === SITE_TREE.xattrFile), 'nothing else restored');
    });

    it('restores a point in place (admin): the site becomes that point, raw database files untouched', async () => {
      const [first] = states.keys();
      const database = await snapshotTree(site, ['shadow/var/lib']);
      const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: first, target: 'in-place' }, 'admin');
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      assert.deepEqual(diffSnapshots(states.get(first)!, await snapshotTree(site, PATHS, EXCLUDE)), []);
      assert.deepEqual(diffSnapshots(database, await snapshotTree(site, ['shadow/var/lib'])), []);
    });

    it('refuses a differential backup with 422, as for duplicity', async () => {
      assertProblem(
        await t
          .http()
          .post('/v1/sites/site1/backups')
          .set(t.auth('operator'))
          .send({ level: 'differential', provider }),
        422,
        'level-not-supported',
      );
    });

    it('a repository locked by a live process of another host fails the job fast, naming the holder; its release ends it', async () => {
      const lock = await engine.holdLock(t, 'other-host');
      try {
        const started = Date.now();
        const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
        assert.equal(job.status, 'failed');
        assert.equal(job.error?.code, engine.lockedCode, JSON.stringify(job.error));
        assert.match(job.error.message, /locked/);
        assert.ok(Date.now() - started < 60_000, 'fails within seconds');
      } finally {
        await lock.release();
      }
      const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
    });

    it('a lock left by a killed process of this host is removed, and the next backup succeeds', async () => {
      const lock = await engine.holdLock(t);
      await lock.kill();
      const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
    });

    it('a hostile tenant’s planted link and FIFO: the backup neither follows nor hangs, and restores them as they were', async () => {
      const html = join(site, 'shadow/var/www/html');
      const secretDir = tempDir('apiscp-outside-');
      const token = `outside-secret-${Date.now()}`;
      writeFileSync(join(secretDir, 'secret.txt'), token, { mode: 0o600 });
      symlinkSync(join(secretDir, 'secret.txt'), join(html, 'planted-link'));
      symlinkSync(secretDir, join(html, 'planted-dir-link'));
      execFileSync('mkfifo', [join(html, 'planted-fifo')]);
      try {
        const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
        assert.equal(job.status, 'succeeded', JSON.stringify(job));
        const restore = await runJob(t, '/v1/sites/site1/restores', {
          restorePoint: job.result?.restorePoint as string,
          paths: [SITE_TREE.docroot],
        });
        assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
        const restored = join(restore.result?.destination as string, SITE_TREE.docroot);
        assert.equal(readlinkSync(join(restored, 'planted-link')), join(secretDir, 'secret.txt'));
        assert.equal(readlinkSync(join(restored, 'planted-dir-link')), secretDir);
        assert.ok(lstatSync(join(restored, 'planted-fifo')).isFIFO(), 'the FIFO comes back as a FIFO');
        const snapshot = await snapshotTree(restore.result?.destination as string, PATHS, EXCLUDE);
        for (const entry of snapshot.entries.filter((e) => e.type === 'file')) {
          const content = readFileSync(join(restore.result?.destination as string, entry.path), 'utf8');
          assert.ok(!content.includes(token), `${entry.path} holds the file outside the site`);
        }
      } finally {
        for (const name of ['planted-link', 'planted-dir-link', 'planted-fifo'])
          rmSync(join(html, name), { force: true });
        rmSync(secretDir, { recursive: true, force: true });
      }
    });

    // Only for engines that can promise it: restic 0.14 reads by path, a known limit (docs/restic-borg.md).
    if (engine.walksFromOpenedDirectories)
      it('a tenant swapping a directory for a link to outside the site while the backup runs never gets outside files into it', async () => {
        const html = join(site, 'shadow/var/www/html');
        const outside = tempDir('apiscp-outside-');
        const token = `outside-secret-${Date.now()}`;
        for (let i = 0; i < 50; i++) writeFileSync(join(outside, `f${i}.txt`), `${token}\n`, { mode: 0o600 });
        execFileSync('mkdir', [join(html, 'race')]);
        for (let i = 0; i < 50; i++) writeFileSync(join(html, 'race', `f${i}.txt`), 'inside\n');
        // The racer runs as its own process (killed by its pid): swap race/ for a link to outside, and back, forever.
        const racer = spawn(
          'sh',
          [
            '-c',
            'cd "$1" && while :; do mv race race.x; ln -s "$2" race; rm race; mv race.x race; done',
            'sh',
            html,
            outside,
          ],
          { stdio: 'ignore' },
        );
        try {
          const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
          assert.equal(job.status, 'succeeded', JSON.stringify(job));
          assert.equal(racer.exitCode, null, 'the racer ran for the whole backup');
          racer.kill('SIGKILL');
          const restore = await runJob(t, '/v1/sites/site1/restores', {
            restorePoint: job.result?.restorePoint as string,
            paths: [SITE_TREE.docroot],
          });
          assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
          const destination = restore.result?.destination as string;
          const restored = await snapshotTree(destination, [SITE_TREE.docroot]);
          for (const entry of restored.entries.filter((e) => e.type === 'file')) {
            assert.ok(
              !readFileSync(join(destination, entry.path), 'utf8').includes(token),
              `${entry.path} holds a file from outside the site`,
            );
          }
        } finally {
          racer.kill('SIGKILL');
          rmSync(join(html, 'race'), { recursive: true, force: true });
          rmSync(join(html, 'race.x'), { recursive: true, force: true });
          rmSync(outside, { recursive: true, force: true });
        }
      });

    it('cancel stops the tool mid-backup; the next backup succeeds', async () => {
      const big = join(site, 'shadow/var/www/html/big.bin');
      await writeRandomBytes(big, 384 * 1024 * 1024);
      try {
        const res = await t
          .http()
          .post('/v1/sites/site1/backups')
          .set(t.auth('operator'))
          .send({ level: 'full', exportDatabases: false })
          .expect(202);
        await waitForJob(
          t,
          res.body.id,
          (job) => job.status === 'running' && job.progress.phase === 'backup' && (job.progress.bytes ?? 0) > 0,
        );
        await t.http().post(`/v1/jobs/${res.body.id}/cancel`).set(t.auth('operator')).expect(202);
        const cancelled = await waitForJob(t, res.body.id);
        assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
        if (engine.isLocked(t)) {
          const log = await t.http().get(`/v1/jobs/${res.body.id}/log`).set(t.auth('monitor'));
          assert.fail(`the cancelled run left a lock behind (${engine.describeLocks(t)}); its job log:\n${log.text}`);
        }
      } finally {
        rmSync(big, { force: true });
      }
      const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      const log = await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor')).expect(200);
      assertNoSecret(engine.secret, [log.text, ...t.logs], 'the job log or the service log');
    });

    it('prunes by policy: a dry run lists, the real run removes exactly that, the kept point restores exactly', async () => {
      const listed = async (): Promise<string[]> =>
        (
          (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200)).body
            .items as Array<{
            id: string;
          }>
        ).map((point) => point.id);
      const before = await listed();
      assert.ok(before.length >= 3, JSON.stringify(before));
      const policy = await t
        .http()
        .post('/v1/policies')
        .set(t.auth('admin'))
        .send({
          name: `${provider}-newest-only`,
          provider,
          schedules: { full: { cron: '0 2 1 1 *' } },
          retention: { fullDays: 0, minFulls: 1, differentialDays: 0, incrementalDays: 0 },
          exportDatabases: false,
        });
      assert.equal(policy.status, 201, policy.text);
      await t.http().put('/v1/sites/site1/policy').set(t.auth('admin')).send({ policy: policy.body.id }).expect(200);

      const dry = await runJob(t, '/v1/sites/site1/prune', { dryRun: true });
      assert.equal(dry.status, 'succeeded', JSON.stringify(dry));
      const planned = (dry.result?.remove as Array<{ id: string }>).map((point) => point.id).sort();
      assert.deepEqual(planned, before.slice(1).sort(), 'every point but the newest');
      assert.deepEqual(await listed(), before, 'a dry run removes nothing');

      const real = await runJob(t, '/v1/sites/site1/prune', {}, 'admin');
      assert.equal(real.status, 'succeeded', JSON.stringify(real));
      assert.deepEqual((real.result?.removed as Array<{ id: string }>).map((point) => point.id).sort(), planned);
      assert.equal(typeof real.result?.bytesFreed, 'number');
      assert.deepEqual(await listed(), [before[0]]);
      assertProblem(
        await t.http().post('/v1/sites/site1/restores').set(t.auth('operator')).send({ restorePoint: planned[0] }),
        404,
        'restore-point-not-found',
      );
      const kept = await runJob(t, '/v1/sites/site1/restores', { restorePoint: before[0] });
      assert.equal(kept.status, 'succeeded', JSON.stringify(kept));
      assert.deepEqual(
        diffSnapshots(
          await snapshotTree(site, PATHS, EXCLUDE),
          await snapshotTree(kept.result?.destination as string, PATHS, EXCLUDE),
        ),
        [],
      );
    });
  });

  describe(`${provider}: a wrong password and an unreachable repository`, () => {
    let repositoryRoot: string;
    before(async () => {
      // A repository made with the right secret, then opened with a wrong one.
      repositoryRoot = tempDir();
      const t = await startTestApp({ PROVIDERS: provider, ...engine.env(repositoryRoot) }, join(repositoryRoot, 'app'));
      const site = join(t.config.virtualRoot, 'site1');
      await buildSiteTree(site, { largeFileBytes: 64 * 1024 });
      const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      await t.app.close();
    });
    after(() => rmSync(repositoryRoot, { recursive: true, force: true }));

    it('a wrong password: /v1/providers says so, and a backup fails fast with a clear error', async () => {
      const t = await startTestApp({ PROVIDERS: provider, ...engine.wrongSecretEnv(repositoryRoot) });
      try {
        await buildSiteTree(join(t.config.virtualRoot, 'site1'), { largeFileBytes: 64 * 1024 });
        const res = await t.http().get('/v1/providers').set(t.auth('monitor')).expect(200);
        const found = res.body.find((p: { name: string }) => p.name === provider);
        assert.equal(found.available, false, JSON.stringify(found));
        assert.match(found.reason, /passw|passphrase/i);
        const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
        assert.equal(job.status, 'failed');
        assert.equal(job.error?.code, engine.wrongSecretCode, JSON.stringify(job.error));
      } finally {
        await t.close();
      }
    });

    it('an unreachable repository: /v1/providers says why, and a backup fails fast with provider-unavailable', async () => {
      const root = tempDir();
      const t = await startTestApp({ PROVIDERS: provider, ...engine.unreachableEnv(root) }, root);
      try {
        await buildSiteTree(join(t.config.virtualRoot, 'site1'), { largeFileBytes: 64 * 1024 });
        const res = await t.http().get('/v1/providers').set(t.auth('monitor')).expect(200);
        const found = res.body.find((p: { name: string }) => p.name === provider);
        assert.equal(found.available, false, JSON.stringify(found));
        assert.ok(found.reason, JSON.stringify(found));
        const started = Date.now();
        const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
        assert.equal(job.status, 'failed');
        assert.equal(job.error?.code, 'provider-unavailable', JSON.stringify(job.error));
        assert.ok(Date.now() - started < 60_000, 'fails within seconds');
      } finally {
        await t.close();
      }
    });
  });
}
