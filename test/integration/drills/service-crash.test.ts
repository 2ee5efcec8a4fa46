import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import {
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  seedBigMysql,
  uniquePrefix,
} from '../../support/databases';
import type { JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { tempDir, writeTokensFile } from '../../support/test-app';
import {
  dumpRuns,
  duplicityRuns,
  filesIn,
  processEnv,
  randomFile,
  runServiceJob,
  sha256Of,
  waitForServiceJob,
  waitUntil,
} from './drill-support';

const EXPORT_MB = 150;
const SITE_MB = 250;

/**
 * Drill: the service SIGKILLed while an export and while restores run (the backup case is in job-engine.test.ts).
 * After the restart the job is interrupted, no dump or duplicity process of it is left, nothing half-made is left
 * under a final name, finished jobs and restore points are as they were, and the next export and restore succeed.
 */
describe('drill: the service killed during an export and during a restore', () => {
  const P = uniquePrefix();
  const root = tempDir('drill-crash-');
  const virtualRoot = join(root, 'virtual');
  const dataDir = join(root, 'data');
  const database = `${P}big`;
  const exportDir = join(virtualRoot, 'site1', 'shadow/var/backups/databases/mysql');
  const bigFile = join(virtualRoot, 'site2', 'shadow', 'big.bin');
  let env: Record<string, string>;
  let service: ServiceProcess | undefined;
  let bigSha = '';
  let earlierBackup: JobBody;

  const restart = async (): Promise<ServiceProcess> => {
    if (service) await service.stop('SIGKILL');
    service = await startServiceProcess(env);
    return service;
  };
  const killService = async (): Promise<void> => {
    await service!.stop('SIGKILL');
    service = undefined;
  };
  const ready = async (): Promise<void> => {
    const res = await fetch(`${service!.url}/readyz`);
    assert.equal(res.status, 200, await res.text());
  };

  before(async () => {
    await ensureDatabaseServers();
    makeSites(virtualRoot, [
      { n: 1, domain: 'one.example' },
      { n: 2, domain: 'two.example' },
    ]);
    writeFileSync(join(virtualRoot, 'site1', 'info', 'current', 'mysql'), `enabled = 1\ndbaseprefix = ${P}\n`);
    writeFileSync(join(virtualRoot, 'site1', 'shadow', 'index.html'), '<h1>one</h1>\n');
    await seedBigMysql(database, EXPORT_MB);
    randomFile(bigFile, SITE_MB);
    bigSha = await sha256Of(bigFile);
    env = processEnv({
      ...DATABASE_ENV,
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: dataDir,
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
    });
  });

  after(async () => {
    await service?.stop('SIGTERM');
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  it('an export: interrupted, no mariadb-dump left, no partial or final file, the next export is whole', async (ctx) => {
    await restart();
    earlierBackup = await runServiceJob(service!, '/v1/sites/site1/backups', {
      level: 'full',
      exportDatabases: false,
    });
    assert.equal(earlierBackup.status, 'succeeded', JSON.stringify(earlierBackup));

    const started = await service!.call('POST', '/v1/exports', { sites: ['site1'] });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.id as string;
    const partial = await waitUntil(
      'a growing partial export and its mariadb-dump',
      () => {
        const name = filesIn(exportDir).find((file) => file.endsWith('.partial'));
        return name && statSync(join(exportDir, name)).size >= 1024 * 1024 && dumpRuns(database).length > 0
          ? name
          : undefined;
      },
      60_000,
    );
    await killService();
    assert.ok(existsSync(join(exportDir, partial)), 'the crash left its partial file');

    const partialBytes = statSync(join(exportDir, partial)).size;
    const restarting = Date.now();
    await restart();
    ctx.diagnostic(`killed with ${partialBytes} bytes exported; ready again in ${Date.now() - restarting} ms`);
    const job = await waitForServiceJob(service!, id, () => true);
    assert.equal(job.status, 'interrupted', JSON.stringify(job));
    assert.equal(job.error?.code, 'interrupted');
    assert.deepEqual(dumpRuns(database), [], 'no mariadb-dump of the interrupted export is left');
    assert.ok(!existsSync(join(dataDir, 'work', id)), 'its work directory is gone');
    await waitUntil('the partial export to be removed', () => !filesIn(exportDir).some((f) => f.endsWith('.partial')));
    assert.deepEqual(
      filesIn(exportDir).filter((file) => file.endsWith('.sql.gz')),
      [],
      'nothing with a final name',
    );
    assert.deepEqual((await service!.call('GET', '/v1/sites/site1/exports')).body, []);
    const earlier = await service!.call('GET', `/v1/jobs/${earlierBackup.id}`);
    assert.equal(earlier.body.status, 'succeeded', 'a finished job keeps its status');
    assert.deepEqual(earlier.body.finishedAt, earlierBackup.finishedAt);
    await ready();

    const next = await runServiceJob(service!, '/v1/exports', { sites: ['site1'] });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
    const files = (await service!.call('GET', '/v1/sites/site1/exports')).body as Array<{
      file: string;
      sha256: string;
    }>;
    assert.equal(files.length, 1);
    const made = join(virtualRoot, 'site1', files[0].file);
    assert.equal(await sha256Of(made), files[0].sha256);
    assert.match(gunzipSync(readFileSync(made)).toString('latin1').trimEnd().split('\n').pop()!, /^-- Dump completed/);
    const points = (await service!.call('GET', '/v1/sites/site1/restore-points')).body.items as Array<{
      id: string;
      state: string;
    }>;
    assert.equal(points.length, 1, 'the backup made before the crash is still listed');
    assert.equal(points[0].state, 'complete');
  });

  it('a staging and an in-place restore: interrupted, no duplicity left, nothing half-restored; the next restore is whole', async () => {
    if (!service) await restart();
    const backup = await runServiceJob(service!, '/v1/sites/site2/backups', { level: 'full', exportDatabases: false });
    assert.equal(backup.status, 'succeeded', JSON.stringify(backup));
    const point = backup.result?.restorePoint as string;

    for (const target of ['staging', 'in-place'] as const) {
      const started = await service!.call('POST', '/v1/sites/site2/restores', { restorePoint: point, target });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const id = started.body.id as string;
      // duplicity writes beside the restore's destination (restoreWorkArea), on the destination's filesystem.
      const destination = target === 'staging' ? join(dataDir, 'restores', id) : join(virtualRoot, `.restore-${id}`);
      const scratch = `${destination}.work`;
      await waitUntil(
        `the ${target} restore's duplicity to be writing`,
        () => duplicityRuns('site2', dataDir).length > 0 && existsSync(scratch),
        60_000,
        20,
      );
      await killService();

      await restart();
      const job = await waitForServiceJob(service!, id, () => true);
      assert.equal(job.status, 'interrupted', `${target}: ${JSON.stringify(job)}`);
      assert.deepEqual(duplicityRuns('site2', dataDir), [], `${target}: no duplicity is left`);
      assert.ok(!existsSync(join(dataDir, 'work', id)), `${target}: no work directory is left`);
      assert.ok(!existsSync(scratch), `${target}: no scratch directory is left`);
      assert.ok(!existsSync(join(dataDir, 'restores', id)), `${target}: no staging directory is left`);
      assert.ok(!existsSync(join(virtualRoot, `.restore-${id}`)), `${target}: no in-place restore directory is left`);
      assert.ok(!existsSync(join(virtualRoot, `.restore-${id}-previous`)), `${target}: nothing was moved aside`);
      assert.equal(await sha256Of(bigFile), bigSha, `${target}: the site is untouched`);
    }

    const earlier = await service!.call('GET', `/v1/jobs/${backup.id}`);
    assert.equal(earlier.body.status, 'succeeded');
    const points = (await service!.call('GET', '/v1/sites/site2/restore-points')).body.items as Array<{
      id: string;
      state: string;
    }>;
    assert.deepEqual(
      points.map((p) => [p.id, p.state]),
      [[point, 'complete']],
    );
    await ready();

    const restore = await runServiceJob(service!, '/v1/sites/site2/restores', { restorePoint: point });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    assert.equal(await sha256Of(join(restore.result?.destination as string, 'shadow', 'big.bin')), bigSha);
    const backupAfter = await runServiceJob(service!, '/v1/sites/site2/backups', {
      level: 'incremental',
      exportDatabases: false,
    });
    assert.equal(backupAfter.status, 'succeeded', JSON.stringify(backupAfter));
  });
});
