import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { tempDir, writeTokensFile } from '../../support/test-app';
import {
  duplicityRuns,
  processEnv,
  randomFile,
  runServiceJob,
  runServiceToExit,
  waitForServiceJob,
  waitUntil,
} from './drill-support';

/** A sqlite3 CLI session that holds a lock on `file` until its stdin is closed. */
async function holdLock(file: string, sql: string): Promise<ChildProcessWithoutNullStreams> {
  const holder = spawn('sqlite3', [file], { stdio: ['pipe', 'pipe', 'pipe'] });
  let said = '';
  holder.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
  holder.stderr.on('data', (chunk: Buffer) => (said += chunk.toString()));
  holder.stdin.write(`${sql}\nSELECT 'lock-held';\n`);
  await waitUntil(`sqlite3 to hold the lock (${said})`, () => said.includes('lock-held'), 10_000);
  assert.doesNotMatch(said, /Error|locked/i, said);
  return holder;
}

async function release(holder: ChildProcessWithoutNullStreams): Promise<void> {
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  holder.stdin.end();
  await exited;
}

/** SIGTERM; Nest re-raises the signal after its shutdown hooks, so a clean stop ends by the signal or with 0. */
async function stopCleanly(service: ServiceProcess): Promise<void> {
  const code = await service.stop('SIGTERM');
  assert.ok(code === 0 || code === null, `exit ${code}: ${service.output()}`);
}

function sqlite(file: string, sql: string): string {
  return execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();
}

/**
 * Drill: the catalog locked by another process when the service starts, and a second service started on the same
 * DATA_DIR. The start must end within a bounded time, exit 75, with one clear line naming the file (no stack trace),
 * leaving the running service and its job alone; once the lock is gone the service starts and the catalog is whole,
 * with every earlier job as it was.
 */
describe('drill: the catalog locked by another process at start-up', () => {
  const root = tempDir('drill-catalog-');
  const virtualRoot = join(root, 'virtual');
  const catalog = join(root, 'data', 'catalog.sqlite3');
  let env: Record<string, string>;
  let service: ServiceProcess | undefined;
  let finished: JobBody;
  let jobCount = '';
  const later: JobBody[] = [];

  before(async () => {
    makeSites(virtualRoot, [{ n: 1, domain: 'one.example' }]);
    writeFileSync(join(virtualRoot, 'site1', 'shadow', 'index.html'), '<h1>one</h1>\n');
    env = processEnv({
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
    });
    service = await startServiceProcess(env);
    finished = await runServiceJob(service, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(finished.status, 'succeeded', JSON.stringify(finished));
    await stopCleanly(service);
    service = undefined;
    jobCount = sqlite(catalog, 'SELECT count(*) FROM jobs');
  });

  after(async () => {
    await service?.stop('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  });

  const holders = [
    { what: 'a write transaction (BEGIN EXCLUSIVE)', sql: 'BEGIN EXCLUSIVE;\nDELETE FROM jobs;' },
    {
      what: 'an exclusive locking mode (no reader gets in)',
      sql: 'PRAGMA locking_mode = EXCLUSIVE;\nBEGIN EXCLUSIVE;\nSELECT count(*) FROM jobs;',
    },
  ];
  for (const { what, sql } of holders) {
    it(`held by ${what}: the start fails within seconds, exit 75, one clear message naming the file`, async (ctx) => {
      const holder = await holdLock(catalog, sql);
      try {
        const { code, output, ms } = await runServiceToExit(env, 60_000);
        ctx.diagnostic(`exit ${code} after ${ms} ms: ${output.trim()}`);
        assert.equal(code, 75, output);
        assert.ok(ms < 20_000, `ended after ${ms} ms`);
        assert.ok(output.includes(`The catalog ${catalog} is locked by another process`), output);
        assert.doesNotMatch(output, /^\s+at /m, 'no stack trace');
        assert.doesNotMatch(output, /listening on/, 'it never started serving');
      } finally {
        await release(holder);
      }
    });
  }

  it('a second service on the same DATA_DIR: it refuses to start, and the running one keeps its job', async (ctx) => {
    randomFile(join(virtualRoot, 'site1', 'shadow', 'big.bin'), 250);
    service = await startServiceProcess(env);
    const started = await service.call('POST', '/v1/sites/site1/backups', { level: 'incremental' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.id as string;
    await waitForServiceJob(service, id, (job) => job.progress.phase === 'backup' && duplicityRuns('site1').length > 0);

    const second = await runServiceToExit(env, 60_000);
    ctx.diagnostic(`second service: exit ${second.code} after ${second.ms} ms: ${second.output.trim()}`);
    assert.equal(second.code, 75, second.output);
    assert.ok(second.ms < 20_000, `ended after ${second.ms} ms`);
    assert.ok(
      second.output.includes(
        `DATA_DIR ${join(root, 'data')} is in use by another apiscp-backup-api (pid ${service.child.pid})`,
      ),
      second.output,
    );
    assert.doesNotMatch(second.output, /^\s+at /m, 'no stack trace');
    // Left alone: a second service that took the job for dead would have killed its duplicity and marked it
    // interrupted. (Whether duplicity is still running here depends on the machine's speed: the backup may well have
    // finished, and the job goes on to scan restore points with other duplicity runs.)
    const job = await waitForServiceJob(service, id);
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.error, null);
    later.push(job);
    await stopCleanly(service);
    service = undefined;
  });

  it('once the lock is released: it starts, is ready, the catalog is intact and earlier jobs are as they were', async () => {
    service = await startServiceProcess(env);
    const ready = await fetch(`${service.url}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    const job = await service.call('GET', `/v1/jobs/${finished.id}`);
    assert.equal(job.body.status, 'succeeded');
    assert.equal(job.body.finishedAt, finished.finishedAt);
    const points = (await service.call('GET', '/v1/sites/site1/restore-points')).body.items as Array<{ id: string }>;
    for (const earlier of [finished, ...later]) {
      assert.ok(
        points.some((point) => point.id === earlier.result?.restorePoint),
        'its restore point is still listed',
      );
    }
    for (const earlier of later) {
      const again = await service.call('GET', `/v1/jobs/${earlier.id}`);
      assert.equal(again.body.status, earlier.status);
    }
    const next = await runServiceJob(service, '/v1/sites/site1/backups', { level: 'incremental' });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
    await stopCleanly(service);
    service = undefined;
    assert.equal(sqlite(catalog, 'PRAGMA integrity_check'), 'ok');
    assert.equal(sqlite(catalog, 'PRAGMA foreign_key_check'), '');
    assert.equal(Number(sqlite(catalog, 'SELECT count(*) FROM jobs')), Number(jobCount) + later.length + 1);
  });
});
