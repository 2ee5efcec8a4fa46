import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeSites } from '../../support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { writeTokensFile } from '../../support/test-app';
import {
  processEnv,
  processesWhere,
  randomFile,
  runServiceJob,
  sha256Of,
  waitForServiceJob,
  waitUntil,
} from './drill-support';

// Large enough that the backup is still reading when the drill polls for progress (100 MB finished first once).
const SITE_MB = 300;

/**
 * Drill: the service SIGKILLed while a restic and while a borg backup run. After the restart the job is interrupted,
 * no process of the engine is left, the dead run's repository lock does not block the next backup, and that backup
 * restores the site's big file exactly.
 */
describe('drill: the service killed during a restic and a borg backup', () => {
  const root = mkdtempSync(join(tmpdir(), 'drill-dedup-'));
  const virtualRoot = join(root, 'virtual');
  const bigFile = join(virtualRoot, 'site1', 'shadow', 'big.bin');
  let env: Record<string, string>;
  let service: ServiceProcess | undefined;
  let bigSha = '';

  before(async () => {
    makeSites(virtualRoot, [{ n: 1, domain: 'one.example' }]);
    randomFile(bigFile, SITE_MB);
    bigSha = await sha256Of(bigFile);
    writeFileSync(join(root, 'restic-password'), 'drill-restic-password\n', { mode: 0o600 });
    writeFileSync(join(root, 'borg-passphrase'), 'drill-borg-passphrase\n', { mode: 0o600 });
    env = processEnv({
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
      PROVIDERS: 'restic,borg',
      RESTIC_REPOSITORY: join(root, 'restic-repository'),
      RESTIC_PASSWORD_FILE: join(root, 'restic-password'),
      BORG_REPOSITORY_ROOT: join(root, 'borg-repositories'),
      BORG_PASSPHRASE_FILE: join(root, 'borg-passphrase'),
    });
  });

  after(async () => {
    await service?.stop('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  });

  const engineRuns = (provider: string): number[] =>
    processesWhere(
      (argv) =>
        argv.some((arg) => arg.endsWith(provider === 'restic' ? 'restic' : 'borg')) &&
        argv.some((arg) => arg.startsWith(provider === 'restic' ? virtualRoot : join(root, 'borg-repositories'))),
    );

  for (const provider of ['restic', 'borg']) {
    it(`${provider}: interrupted, no ${provider} left, the next backup succeeds and restores exactly`, async (ctx) => {
      // A failed earlier round may have left its service running on this DATA_DIR.
      await service?.stop('SIGTERM');
      service = await startServiceProcess(env);
      const started = await service.call('POST', '/v1/sites/site1/backups', {
        level: 'full',
        provider,
        exportDatabases: false,
      });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const id = started.body.id as string;
      const running = await waitForServiceJob(
        service,
        id,
        (job) => job.progress.phase === 'backup' && (job.progress.bytes ?? 0) > 0,
      );
      await service.stop('SIGKILL');
      ctx.diagnostic(`killed at ${running.progress.bytes} bytes`);

      service = await startServiceProcess(env);
      const job = await waitForServiceJob(service, id, () => true);
      assert.equal(job.status, 'interrupted', JSON.stringify(job));
      await waitUntil(`no ${provider} process of the interrupted job`, () => engineRuns(provider).length === 0);

      const next = await runServiceJob(service, '/v1/sites/site1/backups', {
        level: 'full',
        provider,
        exportDatabases: false,
      });
      assert.equal(next.status, 'succeeded', JSON.stringify(next));
      const restore = await runServiceJob(service, '/v1/sites/site1/restores', {
        restorePoint: next.result?.restorePoint,
        paths: ['shadow/big.bin'],
      });
      assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
      assert.equal(await sha256Of(join(restore.result?.destination as string, 'shadow/big.bin')), bigSha);
      await service.stop('SIGTERM');
      service = undefined;
    });
  }
});
