import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createGunzip } from 'node:zlib';
import type { ExportError } from '../../../src/exports/export-error';
import type { DatabaseEngine } from '../../../src/exports/export.model';
import type { Site } from '../../../src/sites/site';
import {
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  exportServices,
  isAlive,
  jobContext,
  makeSite,
  seedBigMysql,
  seedBigPgsql,
  tempDir,
  testConfig,
  uniquePrefix,
  type ExportServices,
} from '../../support/databases';
import { dumpRuns } from '../../support/processes';
import { eventually } from '../../support/wait';

const BIG_MB = 150;

async function waitForPartial(dir: string, minBytes: number, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const partial = existsSync(dir) ? readdirSync(dir).find((name) => name.endsWith('.partial')) : undefined;
    if (partial && statSync(join(dir, partial)).size >= minBytes) return join(dir, partial);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no partial file of ${minBytes} bytes appeared in ${dir}`);
}

/** The last line of a gzip'd dump, which mariadb-dump writes only when it got to the end. */
async function lastLineOfGzip(path: string): Promise<string> {
  let tail = '';
  for await (const chunk of createReadStream(path).pipe(createGunzip())) {
    tail = (tail + (chunk as Buffer).toString('latin1')).slice(-400);
  }
  return tail.trimEnd().split('\n').pop() ?? '';
}

describe('an export interrupted by cancellation or by a crash leaves no file with a final name', () => {
  const P = uniquePrefix();
  const root = tempDir();
  const virtualRoot = join(root, 'virtual');
  let services: ExportServices;
  let site: Site;
  const database = `${P}s1_big`;
  const dirOf = (engine: DatabaseEngine) => join(site.root, 'shadow/var/backups/databases', engine);

  before(async () => {
    await ensureDatabaseServers();
    services = exportServices(testConfig(root));
    site = makeSite(virtualRoot, 1, { mysql: `${P}s1_`, pgsql: `${P}s1_` });
    await seedBigMysql(database, BIG_MB);
    await seedBigPgsql(database, BIG_MB);
  });

  after(async () => {
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  for (const engine of ['mysql', 'pgsql'] as const) {
    it(`${engine}: cancelling through the job signal stops the dump's process group and removes the partial file`, async () => {
      const context = jobContext(root);
      const running = services.service.exportDatabase({ site, engine, database }, context);
      const partial = await waitForPartial(dirOf(engine), 256 * 1024);
      context.controller.abort();
      await assert.rejects(running, (error: ExportError) => error.code === 'cancelled');
      assert.equal(existsSync(partial), false, 'the partial file is gone');
      assert.deepEqual(
        readdirSync(dirOf(engine)).filter((name) => name !== 'manifest.json'),
        [],
        'no file with a final name either',
      );
      assert.equal(context.pids.length, 1);
      await eventually('the dump process to exit', () => !isAlive(context.pids[0]));
      assert.equal(isAlive(context.pids[0]), false, 'the dump process is gone');
      assert.deepEqual(await services.service.listExports(site), []);
    });
  }

  it('a crash mid-export leaves only a .partial file, which removeLeftovers removes; the next export is whole', async () => {
    const child = spawn(
      process.execPath,
      [
        join(__dirname, 'export-child.js'),
        JSON.stringify({ root, env: {}, virtualRoot, siteNumber: 1, prefix: `${P}s1_`, engine: 'mysql', database }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const partial = await waitForPartial(dirOf('mysql'), 512 * 1024).catch((error: Error) => {
      throw new Error(`${error.message}; child said: ${stderr}`);
    });
    child.kill('SIGKILL');
    await exited;
    // The orphaned dump dies of SIGPIPE: wait until it has, so nothing writes beside what follows.
    await eventually('the orphaned dump to exit', () => dumpRuns(database).length === 0);

    const names = readdirSync(dirOf('mysql'));
    assert.ok(existsSync(partial), 'the crash left its partial file');
    assert.deepEqual(
      names.filter((name) => !name.startsWith('.') && name !== 'manifest.json'),
      [],
      'nothing with a final name',
    );
    assert.deepEqual(await services.service.listExports(site), [], 'a partial file is never listed');

    const removed = await services.service.removeLeftovers(site);
    assert.deepEqual(removed, [`shadow/var/backups/databases/mysql/${partial.split('/').pop()}`]);
    assert.equal(existsSync(partial), false);

    const entry = await services.service.exportDatabase({ site, engine: 'mysql', database }, jobContext(root));
    assert.match(await lastLineOfGzip(join(site.root, entry.file)), /^-- Dump completed on /);
    assert.deepEqual(
      (await services.service.listExports(site)).map((e) => e.file),
      [entry.file],
    );
  });
});
