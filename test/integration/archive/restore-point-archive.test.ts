import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import { download, emptyDir, extract } from '../../support/archives';
import { runJob, waitForJob } from '../../support/jobs';
import { assertProblem } from '../../support/problem';
import { startAppWithSampleSite } from '../../support/site-app';
import { diffSnapshots, mutateSiteTree, snapshotTree, type TreeSnapshot } from '../../support/site-tree';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { nextWholeSecond } from '../../support/wait';

const WWW = 'shadow/var/www';
const PROVIDERS = ['duplicity', 'bacula'] as const;

interface FileBody {
  name: string;
  path: string;
  type: string;
  size: number | null;
  mode: string | null;
  uid: number | null;
  gid: number | null;
  mtime: string | null;
}

describe('GET /v1/sites/{site}/restore-points/{id}/archive: a directory as it was at a point', () => {
  let bacula: BaculaHarness;
  let t: TestApp;
  let site: string;
  let work: string;
  /** provider → [point id, the directory's snapshot when it was made], oldest first. */
  const points = new Map<string, Array<[string, TreeSnapshot]>>();

  before(async () => {
    bacula = await startBacula();
    let root: string;
    ({ t, site, root } = await startAppWithSampleSite(
      { ...bacula.env, PROVIDERS: 'duplicity,bacula' },
      { largeFileBytes: 1024 * 1024 },
    ));
    work = await emptyDir(root, 'work-');
    for (const [step, level] of (['full', 'incremental'] as const).entries()) {
      if (step > 0) {
        // duplicity sees changes by whole-second mtimes.
        await nextWholeSecond();
        await mutateSiteTree(site, step);
      }
      const state = await snapshotTree(join(site, WWW), ['.']);
      for (const provider of PROVIDERS) {
        const job = await runJob(t, '/v1/sites/site1/backups', { level, provider });
        assert.equal(job.status, 'succeeded', JSON.stringify(job));
        points.set(provider, [...(points.get(provider) ?? []), [String(job.result?.restorePoint), state]]);
      }
    }
    // The live tree moves on: a download of a point must not show it.
    await nextWholeSecond();
    await mutateSiteTree(site, 2);
  });
  after(async () => {
    await t?.close();
    await bacula?.stop();
  });

  for (const provider of PROVIDERS) {
    it(`${provider}: each point's tar extracts (GNU tar, bsdtar) to the directory as it was`, async () => {
      for (const [index, [point, state]] of (points.get(provider) ?? []).entries()) {
        const res = await download(t, `/v1/sites/site1/restore-points/${point}/archive?path=${WWW}`);
        assert.equal(res.status, 200, res.text.slice(0, 400));
        const archive = join(work, `${provider}-${index}.tar`);
        await writeFile(archive, res.body);
        for (const tool of ['gnu', 'bsd'] as const) {
          const into = await emptyDir(work, `${provider}-${index}-${tool}-`);
          await extract(tool, archive, into);
          assert.deepEqual(diffSnapshots(state, await snapshotTree(into, ['.']), ['at the point', tool]), [], point);
        }
        const job = await waitForJob(t, String(res.headers['x-job-id']));
        assert.equal(job.status, 'succeeded');
        assert.deepEqual(await readdir(t.config.dataPath('archives')), [], 'the work area is gone');
      }
      assert.equal(points.get(provider)?.length, 2);
    });
  }

  it('refuses bad paths and unknown points with problems, and a directory absent at the point', async () => {
    const [point] = points.get('duplicity')![0];
    assertProblem(
      await t.http().get(`/v1/sites/site1/restore-points/${point}/archive?path=../x`).set(t.auth('operator')),
      400,
      'archive-path-invalid',
    );
    assertProblem(
      await t.http().get(`/v1/sites/site1/restore-points/duplicity-nope/archive?path=${WWW}`).set(t.auth('operator')),
      404,
      'restore-point-not-found',
    );
    // new-dir appears only with mutation step 2, after every point.
    const absent = await t
      .http()
      .get(`/v1/sites/site1/restore-points/${point}/archive?path=${WWW}/html/new-dir`)
      .set(t.auth('operator'));
    assert.ok([404, 502].includes(absent.status), absent.text);
    assert.match(String(absent.headers['content-type']), /^application\/problem\+json/);
    assert.deepEqual(await readdir(t.config.dataPath('archives')), []);
  });

  it('refuses a download or a file of a point with 507 before any restore starts when DATA_DIR_MIN_FREE cannot be kept', async () => {
    const [point] = points.get('duplicity')![0];
    // A second service on the same duplicity target, with a reserve no filesystem can leave.
    const root = tempDir('rp-archive-full-');
    const tight = await startTestApp(
      { PROVIDERS: 'duplicity', DUPLICITY_TARGET: t.config.duplicity.target, DATA_DIR_MIN_FREE: '100%' },
      root,
    );
    try {
      mkdirSync(join(tight.config.virtualRoot, 'site1', 'shadow'), { recursive: true });
      const base = `/v1/sites/site1/restore-points/${point}`;
      for (const route of [`${base}/archive?path=${WWW}`, `${base}/files/content?path=${WWW}/html/index.php`]) {
        const res = await tight.http().get(route).set(tight.auth('operator'));
        assertProblem(res, 507, 'insufficient-storage');
        assert.match(res.body.detail, /DATA_DIR_MIN_FREE/);
        assert.match(res.body.detail, /work area/);
      }
      const jobs = await tight.http().get('/v1/jobs').set(tight.auth('monitor')).expect(200);
      assert.deepEqual(jobs.body.items, [], 'no job, so no engine run, was started');
      assert.deepEqual(await readdir(tight.config.dataPath('archives')).catch(() => []), [], 'no work area');
    } finally {
      await tight.close();
    }
    // The same request on the service with the default reserve goes through.
    const ok = await download(t, `/v1/sites/site1/restore-points/${point}/files/content?path=${WWW}/html/index.php`);
    assert.equal(ok.status, 200, ok.text);
  });

  for (const provider of PROVIDERS) {
    it(`${provider}: browses a directory at each point, page by page, and fetches a file as it was`, async () => {
      for (const [point, state] of points.get(provider) ?? []) {
        const expected = state.entries
          .filter((entry) => /^\.\/html\/[^/]+$/.test(entry.path))
          .sort((a, b) => (a.path < b.path ? -1 : 1));
        const listed: FileBody[] = [];
        let cursor: string | null = null;
        do {
          const query: string = `path=${WWW}/html&limit=4${cursor ? `&cursor=${cursor}` : ''}`;
          const res = await t
            .http()
            .get(`/v1/sites/site1/restore-points/${point}/files?${query}`)
            .set(t.auth('operator'));
          assert.equal(res.status, 200, res.text);
          const page = res.body as { items: FileBody[]; nextCursor: string | null };
          assert.ok(page.items.length <= 4);
          listed.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor);
        assert.deepEqual(
          listed.map((f) => [f.name, f.type]),
          expected.map((e) => [e.path.slice('./html/'.length), e.type]),
          `${point}: names and types`,
        );
        assert.deepEqual(
          listed.map((f) => f.path),
          expected.map((e) => `${WWW}/html/${e.path.slice('./html/'.length)}`),
        );
        assert.ok(listed.every((f) => f.mtime && !Number.isNaN(Date.parse(f.mtime))));
        if (provider === 'bacula') {
          // bvfs keeps each entry's stat: mode, owner and size are there to compare.
          assert.deepEqual(
            listed.map((f) => [f.name, f.mode, f.uid, f.gid, f.type === 'file' ? f.size : null]),
            expected.map((e) => [e.path.slice('./html/'.length), e.mode, e.uid, e.gid, e.size]),
          );
        }

        const file = expected.find((e) => e.path === './html/index.php')!;
        const content = await download(
          t,
          `/v1/sites/site1/restore-points/${point}/files/content?path=${WWW}/html/index.php`,
        );
        assert.equal(content.status, 200, content.text);
        assert.equal(createHash('sha256').update(content.body).digest('hex'), file.sha256, `${point}: content`);
        assert.equal((await waitForJob(t, String(content.headers['x-job-id']))).status, 'succeeded');
        assert.deepEqual(await readdir(t.config.dataPath('archives')), [], 'the work area is gone');
      }
    });

    it(`${provider}: a path that was no directory or no file is a 404`, async () => {
      const [point] = points.get(provider)![0];
      const base = `/v1/sites/site1/restore-points/${point}`;
      for (const path of [`${WWW}/html/index.php`, `${WWW}/html/never-there`]) {
        const res = await t
          .http()
          .get(`${base}/files?path=${encodeURIComponent(path)}`)
          .set(t.auth('operator'));
        assertProblem(res, 404, 'archive-path-not-found');
      }
      const dir = await t.http().get(`${base}/files/content?path=${WWW}/html`).set(t.auth('operator'));
      assertProblem(dir, 404, 'archive-path-not-found');
      assertProblem(await t.http().get(`${base}/files?path=/etc`).set(t.auth('operator')), 400, 'archive-path-invalid');
    });
  }
});
