import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJob, waitForJob, type JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { duplicityRuns, randomFile, sha256Of, waitUntil } from './drill-support';
import { LoopbackSshd } from './loopback-sshd';

/** Rounds of the mid-upload kill in the suite; `npm run drill -- --sftp` runs more. */
const SFTP_ROUNDS = Number(process.env.DRILL_SFTP_ROUNDS ?? 1);

type ErrorBody = { code: string; message: string; retryable: boolean };

/**
 * An sftp target on a loopback sshd of the test's own, set up the documented way (DUPLICITY_SSH_KEY_FILE,
 * DUPLICITY_SSH_KNOWN_HOSTS; duplicity's HOME is under DATA_DIR, so root's ~/.ssh plays no part). Refused logins and
 * unknown or changed host keys fail with codes that say so and are not retryable; a target that is down is retried
 * while the jobs queued behind it wait, and an sshd killed in the middle of an upload costs nothing but time.
 */
describe('drill: an sftp target (loopback sshd)', () => {
  let t: TestApp;
  let sshd: LoopbackSshd;
  let root: string;

  const backup = (site: string, level = 'incremental') =>
    t.http().post(`/v1/sites/${site}/backups`).set(t.auth('operator')).send({ level, exportDatabases: false });
  const logOf = async (id: string): Promise<string> =>
    (await t.http().get(`/v1/jobs/${id}/log`).set(t.auth('monitor'))).text;
  const failure = (job: JobBody): ErrorBody => job.error as unknown as ErrorBody;

  before(async () => {
    root = tempDir('drill-sftp-');
    sshd = new LoopbackSshd(join(root, 'sshd'));
    sshd.setUp();
    await sshd.start();
    t = await startTestApp(
      {
        DUPLICITY_TARGET: sshd.url(join(root, 'target')),
        DUPLICITY_SSH_KEY_FILE: sshd.clientKey,
        DUPLICITY_SSH_KNOWN_HOSTS: sshd.knownHosts,
        MAX_CONCURRENT_JOBS: '3',
        TARGET_RETRY_ATTEMPTS: '8',
        TARGET_RETRY_MAX_SECONDS: '2',
      },
      root,
    );
    makeSites(
      t.config.virtualRoot,
      [1, 2, 3].map((n) => ({ n, domain: `s${n}.example` })),
    );
    for (const n of [1, 2, 3]) {
      writeFileSync(join(t.config.virtualRoot, `site${n}`, 'shadow', 'index.html'), `<h1>site ${n}</h1>\n`);
    }
  });

  after(async () => {
    await sshd?.kill();
    await t?.close();
  });

  it('backs up and restores exactly over sftp with the configured key and known hosts', async () => {
    const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.ok(readdirSync(join(root, 'target', 'site1')).some((n) => n.endsWith('.manifest')));
    const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: job.result?.restorePoint });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const restored = join(restore.result?.destination as string, 'shadow', 'index.html');
    assert.equal(readFileSync(restored, 'utf8'), '<h1>site 1</h1>\n');
  });

  it('an unknown host key, a changed one and a refused key fail at once with codes that say so, not retryable', async () => {
    const trusted = readFileSync(sshd.knownHosts);
    const authorized = join(sshd.dir, 'authorized_keys');
    const keys = readFileSync(authorized);
    try {
      writeFileSync(sshd.knownHosts, '');
      const unknown = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
      assert.equal(unknown.status, 'failed');
      assert.equal(failure(unknown).code, 'target-host-key-unknown', JSON.stringify(unknown.error));
      assert.match(failure(unknown).message, /host key is unknown.*DUPLICITY_SSH_KNOWN_HOSTS/);
      assert.equal(failure(unknown).retryable, false);

      sshd.trustHostKey(`${sshd.clientKey}.pub`); // some other key for this host and port
      const changed = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
      assert.equal(failure(changed).code, 'target-host-key-changed', JSON.stringify(changed.error));
      assert.equal(failure(changed).retryable, false);

      writeFileSync(sshd.knownHosts, trusted);
      writeFileSync(authorized, '');
      const refused = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
      assert.equal(failure(refused).code, 'target-auth-refused', JSON.stringify(refused.error));
      assert.match(failure(refused).message, /DUPLICITY_SSH_KEY_FILE/);
      assert.equal(failure(refused).retryable, false);
    } finally {
      writeFileSync(sshd.knownHosts, trusted);
      writeFileSync(authorized, keys);
    }
  });

  it('with sshd down, one job probes with backoff while the jobs queued behind it wait; all succeed once it is back', async () => {
    await sshd.kill();
    try {
      await heldWhileDown();
    } finally {
      if (!sshd.running) await sshd.start(); // the next test needs the target up, whatever happened here
    }
  });

  async function heldWhileDown(): Promise<void> {
    const first = await backup('site1');
    assert.equal(first.status, 202, first.text);
    await waitUntil('the first job to retry the target', async () =>
      (await logOf(first.body.id as string)).includes('the target is unreachable (try 1'),
    );
    const queued: string[] = [];
    for (const site of ['site2', 'site3']) {
      const res = await backup(site, 'full');
      assert.equal(res.status, 202, res.text);
      queued.push(res.body.id as string);
    }
    // The first job retries again (it sleeps at most 2 s between tries): the others were held all along.
    await waitUntil('a second try of the first job', async () =>
      (await logOf(first.body.id as string)).includes('the target is unreachable (try 2'),
    );
    for (const id of queued) {
      const job = (await t.http().get(`/v1/jobs/${id}`).set(t.auth('monitor'))).body as JobBody;
      assert.equal(job.status, 'queued', `held while the target is probed: ${JSON.stringify(job)}`);
    }
    const back = new Date().toISOString();
    await sshd.start();
    for (const id of [first.body.id as string, ...queued]) {
      const job = await waitForJob(t, id);
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      if (id !== first.body.id) assert.ok(job.startedAt! >= back, 'a held job started only once the target was back');
    }
  }

  it(`sshd killed in the middle of an upload (${SFTP_ROUNDS} round(s)): the job retries, repairs the chain, every point restores`, async (ctx) => {
    const big = join(t.config.virtualRoot, 'site2', 'shadow', 'big.bin');
    const site2Target = join(root, 'target', 'site2');
    const volumes = () => readdirSync(site2Target).filter((n) => n.includes('.vol')).length;
    let retried = 0;
    for (let round = 1; round <= SFTP_ROUNDS; round++) {
      randomFile(big, 20 + Math.floor(Math.random() * 20));
      const bigSha = await sha256Of(big);
      const started = await backup('site2');
      assert.equal(started.status, 202, started.text);
      const id = started.body.id as string;
      const before = volumes();
      await waitUntil(
        'duplicity to upload a volume',
        () => duplicityRuns('site2', t.config.dataDir).length > 0 && volumes() > before,
        120_000,
        20,
      );
      await sshd.kill();
      // Usually the upload is cut and the job retries; on a fast machine it may have finished just before the kill.
      await waitUntil(
        'the job to retry or end',
        async () =>
          (await logOf(id)).includes('the target is unreachable') ||
          ['succeeded', 'failed'].includes(
            ((await t.http().get(`/v1/jobs/${id}`).set(t.auth('monitor'))).body as JobBody).status,
          ),
        120_000,
      );
      await sshd.start();
      const job = await waitForJob(t, id);
      assert.equal(job.status, 'succeeded', `round ${round}: ${JSON.stringify(job)}`);
      if ((await logOf(id)).includes('the target is unreachable')) retried += 1;
      const restore = await runJob(t, '/v1/sites/site2/restores', { restorePoint: job.result?.restorePoint });
      assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
      assert.equal(await sha256Of(join(restore.result?.destination as string, 'shadow', 'big.bin')), bigSha);
      rmSync(restore.result?.destination as string, { recursive: true, force: true });
    }
    ctx.diagnostic(
      `sshd killed mid-upload: ${SFTP_ROUNDS} round(s) recovered, ${retried} of them retried a cut upload`,
    );
    rmSync(big);
    const next = await runJob(t, '/v1/sites/site2/backups', { level: 'incremental', exportDatabases: false });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
  });
});
