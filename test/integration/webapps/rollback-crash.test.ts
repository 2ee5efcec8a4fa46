import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  makeSite,
  mysql,
  mysqlFingerprint,
  seedBigMysql,
  uniquePrefix,
} from '../../support/databases';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { tempDir, writeTokensFile } from '../../support/test-app';
import { isAlive, processEnv, processesWhere, runServiceJob, waitForServiceJob } from '../drills/drill-support';
import { fingerprintTree, tenantId, wordpressTree } from './webapp-trees';

/** Big enough that the import of the snapshot's export takes a while on a loaded 2-core machine. */
const DATABASE_MB = 20;

/**
 * Drill: the service SIGKILLed while a rollback imports the snapshot's database. At the next start the job is
 * interrupted, the import it had started is killed, and files and database are put back as they were before the
 * rollback (from its safety snapshot); the next snapshot works.
 */
describe('drill: the service killed during a web app rollback', () => {
  const P = uniquePrefix();
  const uid = tenantId();
  const root = tempDir('drill-webapp-crash-');
  const virtualRoot = join(root, 'virtual');
  let app = '';
  let env: Record<string, string>;
  let service: ServiceProcess | undefined;

  before(async () => {
    await ensureDatabaseServers();
    chmodSync(root, 0o755);
    const site = makeSite(virtualRoot, 1, { mysql: P });
    chmodSync(virtualRoot, 0o755);
    wordpressTree(join(site.root, 'shadow', 'var', 'www', 'html'), `${P}wp`);
    execFileSync('chown', ['-R', `${uid}:${uid}`, join(site.root, 'shadow', 'var')]);
    await seedBigMysql(`${P}wp`, DATABASE_MB);
    env = processEnv({
      ...DATABASE_ENV,
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
    });
    service = await startServiceProcess(env);
  });

  after(async () => {
    await service?.stop('SIGTERM');
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  it('interrupted, the import killed, files and database as before the rollback, the next snapshot works', async () => {
    const apps = await service!.call('GET', '/v1/sites/site1/webapps');
    app = apps.body[0].id as string;
    const base = `/v1/sites/site1/webapps/${app}`;
    assert.equal((await service!.call('PUT', `${base}/snapshots`, { enabled: true })).status, 200);
    const snap = await runServiceJob(service!, `${base}/snapshots`, { message: 'before' });
    assert.equal(snap.status, 'succeeded', JSON.stringify(snap));
    const snapshot = (snap.result!.snapshot as { id: string }).id;

    const dir = join(virtualRoot, 'site1', 'shadow', 'var', 'www', 'html');
    writeFileSync(join(dir, 'index.php'), '<title>after the update</title>');
    execFileSync('chown', [`${uid}:${uid}`, join(dir, 'index.php')]);
    await mysql('UPDATE big SET a = a + 1 WHERE id <= 1000', `${P}wp`);
    const files = fingerprintTree(dir);
    const tables = await mysqlFingerprint(`${P}wp`);

    const started = await service!.call('POST', `${base}/snapshots/${snapshot}/rollback`);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const importing = await waitForServiceJob(
      service!,
      started.body.id as string,
      (job) => job.progress.phase?.startsWith('import mysql') ?? false,
    );
    const imports = () => processesWhere((argv) => argv[0].endsWith('mariadb') && argv.includes(`--database=${P}wp`));
    const running = imports();
    await service!.stop('SIGKILL');
    service = await startServiceProcess(env);

    const job = await waitForServiceJob(service, importing.id);
    assert.equal(job.status, 'interrupted');
    assert.ok(
      running.every((pid) => !isAlive(pid)),
      'the import the dead service started is gone',
    );
    assert.deepEqual(fingerprintTree(dir), files, 'files as before the rollback');
    assert.deepEqual(await mysqlFingerprint(`${P}wp`), tables, 'database as before the rollback');
    const next = await runServiceJob(service, `${base}/snapshots`, { message: 'after the crash' });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
  });
});
