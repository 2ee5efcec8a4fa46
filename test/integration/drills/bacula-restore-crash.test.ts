import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESTORE_JOB } from '../../../src/providers/bacula/bacula-resources';
import { parseApiBlocks } from '../../../src/providers/bacula/bconsole-output';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import { makeSites } from '../../support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { tempDir, writeTokensFile } from '../../support/test-app';
import { processEnv, randomFile, runServiceJob, sha256Of, waitForServiceJob, waitUntil } from './drill-support';

const SITE_MB = 120;

/** Restore jobs of the service the director still lists as running or waiting. */
async function runningRestores(bacula: BaculaHarness): Promise<string[]> {
  return parseApiBlocks(await bacula.bconsole(['.api 2', '.status dir running']))
    .filter((block) => block.name === RESTORE_JOB && block.jobid)
    .map((block) => block.jobid);
}

/**
 * Drill: the service SIGKILLed while a Bacula restore it queued runs on the director. The restart cancels the
 * director's restore and waits for it to end before cleaning the staging area, so no copy of the site is left behind
 * and nothing writes there afterwards; the next restore and backup succeed.
 */
describe('drill: the service killed during a Bacula restore', () => {
  let bacula: BaculaHarness;
  let service: ServiceProcess | undefined;
  let env: Record<string, string>;
  let root: string;
  let bigSha = '';

  before(async () => {
    bacula = await startBacula();
    root = tempDir('drill-bacula-restore-');
    const virtualRoot = join(root, 'virtual');
    makeSites(virtualRoot, [{ n: 1, domain: 'one.example' }]);
    writeFileSync(join(virtualRoot, 'site1', 'shadow', 'index.html'), '<h1>one</h1>\n');
    randomFile(join(virtualRoot, 'site1', 'shadow', 'big.bin'), SITE_MB);
    bigSha = await sha256Of(join(virtualRoot, 'site1', 'shadow', 'big.bin'));
    env = processEnv({
      ...bacula.env,
      PROVIDERS: 'bacula',
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
    });
    service = await startServiceProcess(env);
  });

  after(async () => {
    await service?.stop('SIGTERM');
    await bacula?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('the director’s restore is cancelled and ended before the staging area is cleaned; the next restore is whole', async (ctx) => {
    const backup = await runServiceJob(service!, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(backup.status, 'succeeded', JSON.stringify(backup));
    const point = backup.result?.restorePoint as string;

    const started = await service!.call('POST', '/v1/sites/site1/restores', { restorePoint: point });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.id as string;
    const staging = join(root, 'data', 'restores', id);
    await waitUntil('the director to run the restore', async () => (await runningRestores(bacula)).length > 0, 120_000);
    await service!.stop('SIGKILL');
    service = undefined;

    service = await startServiceProcess(env);
    const job = await waitForServiceJob(service, id, () => true);
    assert.equal(job.status, 'interrupted', JSON.stringify(job));
    assert.deepEqual(await runningRestores(bacula), [], 'the director runs no restore of ours after the restart');
    assert.ok(!existsSync(staging), 'the staging area is gone');
    // The director's restore is over; an fd that still wrote would bring the directory back.
    const status = await bacula.bconsole(['status client']);
    ctx.diagnostic(
      status
        .split('\n')
        .filter((line) => /Running Jobs|No Jobs running/.test(line))
        .join(' '),
    );
    assert.ok(!existsSync(staging), 'nothing writes into the staging area afterwards');

    const restore = await runServiceJob(service, '/v1/sites/site1/restores', { restorePoint: point });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    assert.equal(await sha256Of(join(restore.result?.destination as string, 'shadow', 'big.bin')), bigSha);
    const next = await runServiceJob(service, '/v1/sites/site1/backups', {
      level: 'incremental',
      exportDatabases: false,
    });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
  });
});
