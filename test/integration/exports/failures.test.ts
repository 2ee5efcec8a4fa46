import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ExportError } from '../../../src/exports/export-error';
import type { Site } from '../../../src/sites/site';
import {
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  exportServices,
  jobContext,
  makeSite,
  mysql,
  seedMysqlFixture,
  seedPgsqlFixture,
  tempDir,
  testConfig,
  uniquePrefix,
} from '../../support/databases';

/** A TCP port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('export failures are reported per step and never stop the other steps', () => {
  const P = uniquePrefix();
  const root = tempDir();
  let site1: Site;
  let site2: Site;
  let port: number;

  before(async () => {
    await ensureDatabaseServers();
    port = await closedPort();
    site1 = makeSite(join(root, 'virtual'), 1, { mysql: `${P}s1_`, pgsql: `${P}s1_` });
    site2 = makeSite(join(root, 'virtual'), 2, { mysql: `${P}s2_` });
    await seedMysqlFixture(`${P}s1_a`, 'a', 20);
    await seedMysqlFixture(`${P}s1_b`, 'b', 20);
    await seedMysqlFixture(`${P}s2_c`, 'c', 20);
    await seedPgsqlFixture(`${P}s1_a`, 'a', 20);
  });

  after(async () => {
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  it('servers that are down: a clear error naming the server, for each site concerned', async () => {
    const { service } = exportServices(
      testConfig(root, { MYSQL_PORT: String(port), PGHOST: '127.0.0.1', PGPORT: String(port) }),
    );
    const context = jobContext(root);
    const run = await service.runExport([site1, site2], context);
    assert.equal(run.failed, true);
    assert.equal(run.cancelled, false);
    assert.deepEqual(
      run.results.map((r) => `${r.site} ${r.engine} ${r.database} ${r.status} ${r.error?.code}`),
      [
        'site1 mysql null failed server-unreachable',
        'site2 mysql null failed server-unreachable',
        'site1 pgsql null failed server-unreachable',
      ],
    );
    const [mysqlError, , pgError] = run.results.map((r) => r.error!.message);
    assert.match(
      mysqlError,
      new RegExp(`^cannot list the databases of MariaDB at 127\\.0\\.0\\.1:${port}: .*Can't connect`),
    );
    assert.match(
      pgError,
      new RegExp(`^cannot list the databases of PostgreSQL at 127\\.0\\.0\\.1:${port}: .*Connection refused`),
    );
    assert.ok(
      context.logs.some((line) => line.includes(`127.0.0.1:${port}`)),
      'the job log says it too',
    );
  });

  it('a dump against a server that is down fails with server-unreachable and writes nothing', async () => {
    const { service } = exportServices(testConfig(root, { MYSQL_PORT: String(port) }));
    await assert.rejects(
      service.exportDatabase({ site: site2, engine: 'mysql', database: `${P}s2_c` }, jobContext(root)),
      (error: ExportError) =>
        error.code === 'server-unreachable' &&
        error.message.startsWith(`mariadb-dump failed for MariaDB at 127.0.0.1:${port}, database ${P}s2_c: `),
    );
    const dir = join(site2.root, 'shadow/var/backups/databases/mysql');
    assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], []);
  });

  it('one engine down, the other exports; a database gone since planning fails alone', async () => {
    const { service } = exportServices(testConfig(root, { PGHOST: '127.0.0.1', PGPORT: String(port) }));
    const plan = await service.planExport([site1, site2]);
    assert.deepEqual(
      plan.steps.map((s) => s.database),
      [`${P}s1_a`, `${P}s1_b`, `${P}s2_c`],
    );
    assert.deepEqual(
      plan.unlisted.map((u) => [u.engine, u.sites]),
      [['pgsql', ['site1']]],
    );

    await mysql(`DROP DATABASE \`${P}s1_a\``);
    const context = jobContext(root);
    const run = await service.runExport([site1, site2], context);
    assert.equal(run.failed, true);
    const byKey = Object.fromEntries(run.results.map((r) => [`${r.engine} ${r.database}`, r]));
    assert.equal(byKey[`pgsql null`].error?.code, 'server-unreachable');
    assert.equal(byKey[`mysql ${P}s1_b`].status, 'succeeded');
    assert.equal(byKey[`mysql ${P}s2_c`].status, 'succeeded');
    assert.equal(Object.keys(byKey).length, 3, 'the dropped database is no longer planned');

    // Dropped between planning and its turn: exportSteps with the stale plan.
    const stale = await exportServices(testConfig(root)).exporter.exportSteps(plan.steps, jobContext(root));
    assert.deepEqual(
      stale.map((r) => `${r.database} ${r.status} ${r.error?.code ?? ''}`),
      [`${P}s1_a failed dump-failed`, `${P}s1_b succeeded `, `${P}s2_c succeeded `],
    );
    assert.match(stale[0].error!.message, /Unknown database/);
    assert.deepEqual(
      readdirSync(join(site1.root, 'shadow/var/backups/databases/mysql')).filter((n) => n.includes(`${P}s1_a`)),
      [],
      'the failed dump left nothing behind',
    );
  });

  it('a cancelled run reports the steps it did not start as cancelled', async () => {
    const { service } = exportServices(testConfig(root));
    const context = jobContext(root);
    context.controller.abort();
    const run = await service.runExport([site1, site2], context);
    assert.equal(run.cancelled, true);
    assert.ok(run.results.length >= 3);
    assert.ok(run.results.every((r) => r.status === 'cancelled' && r.error?.code === 'cancelled'));
  });
});
