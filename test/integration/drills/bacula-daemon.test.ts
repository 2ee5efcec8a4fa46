import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBacula, type BaculaDaemon, type BaculaHarness } from '../../support/bacula-harness';
import { runJob, waitForJob } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { isAlive, randomFile } from './drill-support';

const SITE_MB = 200;
/** Bacula's own connect timeouts are 5 s in the harness; a dead daemon must fail the job well within this. */
const FAIL_WITHIN_MS = 60_000;

/**
 * Drill: a Bacula daemon crashes (SIGKILL) in the middle of a backup of a big site. The job fails within a bounded
 * time with an error that names the daemon; once the daemon is started again the next backup succeeds, and the
 * restore points made before are still listed.
 */
describe('drill: a Bacula daemon killed during a backup', () => {
  let bacula: BaculaHarness;
  let t: TestApp;
  let firstPoint: string;

  const crash = (daemon: BaculaDaemon): void => {
    const pidFile = join(bacula.workDir, `bacula-${daemon}.${bacula.ports[daemon]}.pid`);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(pid > 0 && isAlive(pid), `bacula-${daemon} runs`);
    process.kill(pid, 'SIGKILL');
  };

  before(async () => {
    // The director's connect timeouts as short as before the harness's default grew: this drill times the failure.
    bacula = await startBacula({ connectTimeoutSeconds: 5 });
    const root = tempDir('drill-bacula-');
    t = await startTestApp({ ...bacula.env, PROVIDERS: 'bacula', DUPLICITY_TARGET: `file://${root}/target` }, root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.example' }]);
    const site = join(t.config.virtualRoot, 'site1');
    writeFileSync(join(site, 'shadow', 'index.html'), '<h1>one</h1>\n');
    const first = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    firstPoint = first.result?.restorePoint as string;
    randomFile(join(site, 'shadow', 'big.bin'), SITE_MB);
  });

  after(async () => {
    await t?.close();
    await bacula?.stop();
  });

  const daemons: Array<{ daemon: BaculaDaemon; name: RegExp }> = [
    { daemon: 'sd', name: /storage daemon|Storage|SD/ },
    { daemon: 'fd', name: /file daemon|Client|FD/ },
  ];
  for (const { daemon, name } of daemons) {
    it(`bacula-${daemon} killed mid-backup: the job fails clearly and in bounded time; restarted, the next backup succeeds`, async (ctx) => {
      const started = await t
        .http()
        .post('/v1/sites/site1/backups')
        .set(t.auth('operator'))
        .send({ level: 'full', provider: 'bacula', exportDatabases: false });
      assert.equal(started.status, 202, started.text);
      const id = started.body.id as string;
      await waitForJob(t, id, (job) => job.progress.phase === 'backup' && (job.progress.bytes ?? 0) > 0, 120_000);
      const killedAt = Date.now();
      try {
        crash(daemon);
        const job = await waitForJob(t, id, undefined, FAIL_WITHIN_MS * 2);
        const took = Date.now() - killedAt;
        ctx.diagnostic(`bacula-${daemon} killed: job ${job.status} [${job.error?.code}] ${took} ms later`);
        assert.equal(job.status, 'failed', JSON.stringify(job));
        assert.ok(
          ['provider-unavailable', 'bacula-backup-failed'].includes(job.error?.code ?? ''),
          JSON.stringify(job.error),
        );
        assert.match(job.error!.message, name);
        assert.match(job.error!.message, /Bacula backup JobId \d+/);
        assert.ok(took < FAIL_WITHIN_MS, `failed ${took} ms after the crash`);
      } finally {
        // Whatever happened: the daemon is down (stopDaemon waits for its port to close), then started again.
        await bacula.stopDaemon(daemon);
        await bacula.startDaemon(daemon);
      }
      const next = await runJob(t, '/v1/sites/site1/backups', {
        level: 'incremental',
        provider: 'bacula',
        exportDatabases: false,
      });
      assert.equal(next.status, 'succeeded', JSON.stringify(next));
      const points = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items as Array<{
        id: string;
      }>;
      assert.ok(
        points.some((point) => point.id === firstPoint),
        'the restore point made before is still listed',
      );
    });
  }
});
