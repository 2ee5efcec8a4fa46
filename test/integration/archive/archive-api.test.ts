import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { download, emptyDir, extract, hardlinkGroups, listArchive, mtimes } from '../../support/archives';
import { JobRepository } from '../../../src/jobs/job.repository';
import { waitForJob } from '../../support/jobs';
import { assertProblem } from '../../support/problem';
import { addSampleSite, diffSnapshots, SITE_TREE, snapshotTree } from '../../support/site-tree';
import { startTestApp, TOKENS, type TestApp } from '../../support/test-app';

const WWW = 'shadow/var/www';

describe('GET /v1/sites/{site}/archive: a live directory as a tar that keeps xattrs and ACLs', () => {
  let t: TestApp;
  let site: string;
  let work: string;

  before(async () => {
    t = await startTestApp();
    site = await addSampleSite(t.config.virtualRoot, { largeFileBytes: 2 * 1024 * 1024 });
    const html = join(site, SITE_TREE.docroot);
    // What a hostile tenant plants: a link to /etc, a FIFO (would block a reader), a socket, hardlinks.
    await symlink('/etc', join(html, 'etc-link'));
    execFileSync('mkfifo', [join(html, 'pipe')]);
    execFileSync('python3', [
      '-c',
      `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(html, 'sock'))})`,
    ]);
    await writeFile(join(html, 'hard-a.txt'), 'one inode, two names\n');
    await link(join(html, 'hard-a.txt'), join(html, 'hard-b.txt'));
    work = await emptyDir(t.root, 'work-');
  });
  after(() => t.close());

  it('extracts with GNU tar and with bsdtar to the source, entry by entry', async () => {
    const res = await download(t, `/v1/sites/${SITE_TREE.domain}/archive?path=${WWW}`);
    assert.equal(res.status, 200, res.text.slice(0, 500));
    assert.equal(res.headers['content-type'], 'application/x-tar');
    const archive = join(work, 'www.tar');
    await writeFile(archive, res.body);
    const members = await listArchive(archive);
    assert.ok(members.includes('./html/etc-link'), 'the link is stored');
    assert.ok(!members.some((m) => m.startsWith('./html/etc-link/')), 'never followed');
    assert.ok(!members.includes('./html/pipe') && !members.includes('./html/sock'), 'FIFO and socket left out');

    const source = await snapshotTree(join(site, WWW), ['.']);
    const expected = { entries: source.entries.filter((e) => !['./html/pipe', './html/sock'].includes(e.path)) };
    const sourceLinks = await hardlinkGroups(join(site, WWW));
    const sourceTimes = await mtimes(join(site, WWW));
    for (const tool of ['gnu', 'bsd'] as const) {
      const into = await emptyDir(work, `${tool}-`);
      await extract(tool, archive, into);
      const restored = await snapshotTree(into, ['.']);
      assert.deepEqual(diffSnapshots(expected, restored, ['source', tool]), []);
      assert.deepEqual(await hardlinkGroups(into), sourceLinks, `${tool}: hardlinks`);
      assert.deepEqual(await mtimes(into), sourceTimes, `${tool}: mtimes`);
    }
    // The fixture's ACLs and xattrs are really there to compare.
    const acl = expected.entries.find((e) => e.path === './html/wp-config.php');
    assert.ok(acl?.acl?.some((line) => line.startsWith('user:1001:')));
    assert.ok(
      expected.entries.find((e) => e.path === './html/wp-content/cache')?.acl?.some((l) => l.startsWith('default:')),
    );

    const job = await waitForJob(t, String(res.headers['x-job-id']));
    assert.equal(job.status, 'succeeded');
    assert.equal(job.result?.skipped, 2);
    const log = await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor')).expect(200);
    assert.match(log.text, /skipped FIFO: \.\/html\/pipe/);
    assert.match(log.text, /skipped socket: \.\/html\/sock/);
  });

  it('gzip and zstd hold the same tar', async () => {
    const plain = await download(t, `/v1/sites/site1/archive?path=${WWW}`);
    const names = { gzip: 'z.tar.gz', zstd: 'z.tar.zst' };
    for (const compression of ['gzip', 'zstd'] as const) {
      const res = await download(t, `/v1/sites/site1/archive?path=${WWW}&compression=${compression}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], compression === 'gzip' ? 'application/gzip' : 'application/zstd');
      assert.match(String(res.headers['content-disposition']), new RegExp(`${names[compression].slice(1)}"$`));
      const file = join(work, names[compression]);
      await writeFile(file, res.body);
      const tar = execFileSync(compression, ['-d', '-c', file], { maxBuffer: 256 * 1024 * 1024 });
      assert.ok(tar.length > 2 * 1024 * 1024);
      assert.deepEqual(
        await listArchive(file),
        await listArchive(await writeTemp(join(work, 'plain.tar'), plain.body)),
      );
    }
  });

  it('an archive of shadow leaves out shadow/var/lib, and only it', async () => {
    await mkdir(join(site, 'shadow/home/admin1/var/lib'), { recursive: true });
    await writeFile(join(site, 'shadow/home/admin1/var/lib/kept.txt'), 'not the database directory\n');
    const res = await download(t, '/v1/sites/site1/archive?path=shadow');
    assert.equal(res.status, 200);
    const members = await listArchive(await writeTemp(join(work, 'shadow.tar'), res.body));
    assert.ok(members.includes('./var/www/html/index.php'));
    assert.ok(!members.some((m) => m.startsWith('./var/lib')), 'shadow/var/lib is never included');
    assert.ok(members.includes('./home/admin1/var/lib/kept.txt'));
  });

  it('refuses paths outside the site or through links, before sending anything', async () => {
    const cases: Array<[string, number, string]> = [
      ['../..', 400, 'archive-path-invalid'],
      ['shadow/../../site2', 400, 'archive-path-invalid'],
      ['/etc', 400, 'archive-path-invalid'],
      ['fst/etc', 400, 'archive-path-invalid'],
      ['shadow/var/lib/mysql', 400, 'archive-path-invalid'],
      ['shadow/var/lib', 400, 'archive-path-invalid'],
      [`${SITE_TREE.docroot}/etc-link`, 404, 'archive-path-not-found'],
      [`${SITE_TREE.docroot}/uploads`, 404, 'archive-path-not-found'],
      [`${SITE_TREE.docroot}/index.php`, 404, 'archive-path-not-found'],
      ['shadow/nope', 404, 'archive-path-not-found'],
    ];
    for (const [path, status, code] of cases) {
      const res = await t
        .http()
        .get(`/v1/sites/site1/archive?path=${encodeURIComponent(path)}`)
        .set(t.auth('operator'));
      assertProblem(res, status, code);
    }
    const bad = await t.http().get(`/v1/sites/site1/archive?path=shadow&compression=xz`).set(t.auth('operator'));
    assertProblem(bad, 400, 'validation-failed');
    const monitor = await t.http().get(`/v1/sites/site1/archive?path=shadow`).set(t.auth('monitor'));
    assertProblem(monitor, 403, 'forbidden');
  });

  it('a directory swapped for a link to /etc while downloads run never brings /etc into the tar', async () => {
    const target = join(site, SITE_TREE.docroot, 'wp-content');
    // The racer swaps wp-content for a link to /etc and back, as fast as it can, until it is stopped.
    const racer = spawn(
      'bash',
      ['-c', 'while :; do mv "$1" "$1.away"; ln -s /etc "$1"; rm "$1"; mv "$1.away" "$1"; done', 'racer', target],
      { stdio: 'ignore' },
    );
    try {
      for (let round = 0; round < 8; round++) {
        const res = await download(t, `/v1/sites/site1/archive?path=${SITE_TREE.docroot}`);
        assert.equal(res.status, 200);
        const members = await listArchive(await writeTemp(join(work, `race-${round}.tar`), res.body));
        const fromEtc = members.filter((m) => /(^|\/)(passwd|shadow|hostname|os-release)$/.test(m));
        assert.deepEqual(fromEtc, [], `round ${round}: nothing of /etc`);
      }
    } finally {
      racer.kill('SIGKILL');
      await new Promise((resolve) => racer.once('exit', resolve));
      execFileSync('bash', ['-c', '[ -d "$1" ] || { rm -f "$1"; mv "$1.away" "$1"; }', 'fix', target]);
    }
  });

  it('a client that disconnects stops the read at once', async () => {
    const big = join(site, 'shadow/var/www/big');
    await mkdir(big);
    execFileSync('dd', ['if=/dev/urandom', `of=${join(big, 'blob.bin')}`, 'bs=1M', 'count=64', 'status=none']);
    const server = t.app.getHttpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const jobs = t.app.get(JobRepository);
      const started = await new Promise<{ jobId: string; pid: number | null }>((resolve, reject) => {
        const req = httpRequest(
          {
            port,
            host: '127.0.0.1',
            path: '/v1/sites/site1/archive?path=shadow/var/www/big',
            headers: { Authorization: `Bearer ${TOKENS.operator}` },
          },
          (res) => {
            res.once('data', () => {
              // One chunk read, then the client is gone.
              const jobId = String(res.headers['x-job-id']);
              const pid = jobs.get(jobId)?.pid ?? null;
              req.destroy();
              resolve({ jobId, pid });
            });
          },
        );
        req.on('error', () => undefined);
        req.once('error', reject);
        req.end();
      });
      const job = await waitForJob(t, started.jobId);
      assert.equal(job.status, 'cancelled', JSON.stringify(job));
      assert.ok(started.pid, 'tar was running');
      assert.throws(() => process.kill(started.pid!, 0), /ESRCH/, 'tar is gone');
      assert.ok(Number(job.result?.tarBytes ?? 0) < 64 * 1024 * 1024);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

async function writeTemp(path: string, body: Buffer): Promise<string> {
  await writeFile(path, body);
  return path;
}
