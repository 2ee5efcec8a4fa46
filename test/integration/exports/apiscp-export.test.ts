import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selectExporterKind } from '../../../src/exports/exporter.factory';
import type { Site } from '../../../src/sites/site';
import {
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  exportServices,
  isAlive,
  jobContext,
  makeSite,
  seedMysqlFixture,
  seedPgsqlFixture,
  tempDir,
  testConfig,
  uniquePrefix,
  type ExportServices,
} from '../../support/databases';
import { childrenOf } from '../../support/processes';
import { eventually, nextWholeSecond } from '../../support/wait';

/**
 * A stand-in for ApisCP: `bin/php` runs its script with sh, and `backup_dbs.php` dumps the sites' databases for real
 * into the accounts' `mysql_backups/` and `pgsql_backups/`, the way ApisCP lays them out. Flag files make it fail,
 * hang, or skip a database.
 */
function fakeApiscp(apnscp: string, sites: { site: Site; mysql: string[]; pgsql: string[] }[]): void {
  mkdirSync(join(apnscp, 'bin', 'scripts'), { recursive: true });
  writeFileSync(join(apnscp, 'bin', 'php'), '#!/bin/sh\nexec /bin/sh "$@"\n');
  chmodSync(join(apnscp, 'bin', 'php'), 0o755);
  const lines = [
    'set -e',
    `echo "$0 $*" > ${apnscp}/ran`,
    `pwd >> ${apnscp}/ran`,
    `if [ -f ${apnscp}/fail ]; then echo "backup_dbs: cannot reach the panel database" >&2; exit 3; fi`,
    `if [ -f ${apnscp}/hang ]; then sleep 60; fi`,
    'stamp=$(date +%Y%m%d%H%M%S)',
  ];
  for (const { site, mysql, pgsql } of sites) {
    const home = join(site.root, 'shadow', 'home', 'admin');
    lines.push(`mkdir -p ${home}/mysql_backups ${home}/pgsql_backups`);
    for (const db of mysql) {
      lines.push(
        `[ -f ${apnscp}/skip-${db} ] || mariadb-dump --protocol=TCP -h127.0.0.1 -uroot --single-transaction ${db} | gzip > ${home}/mysql_backups/${db}-$stamp.sql.gz`,
      );
    }
    for (const db of pgsql) {
      lines.push(
        `pg_dump -h /var/run/postgresql -U postgres -Fc -d ${db} -f ${home}/pgsql_backups/${db}-$stamp.pgdump`,
      );
    }
  }
  lines.push('echo "exported"');
  writeFileSync(join(apnscp, 'bin', 'scripts', 'backup_dbs.php'), `${lines.join('\n')}\n`);
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('the ApisCP exporter drives backup_dbs.php and reports what it produced', () => {
  const P = uniquePrefix();
  const root = tempDir();
  const apnscp = join(root, 'apnscp');
  let services: ExportServices;
  let site1: Site;
  let site2: Site;

  before(async () => {
    await ensureDatabaseServers();
    site1 = makeSite(join(root, 'virtual'), 1, { mysql: `${P}s1_`, pgsql: `${P}s1_` });
    site2 = makeSite(join(root, 'virtual'), 2, { mysql: `${P}s2_` });
    await seedMysqlFixture(`${P}s1_shop`, 'shop', 20);
    await seedMysqlFixture(`${P}s1_shop_v2`, 'shop2', 20);
    await seedMysqlFixture(`${P}s2_app`, 'app', 20);
    await seedPgsqlFixture(`${P}s1_shop`, 'pgshop', 20);
    assert.equal(selectExporterKind(testConfig(root)), 'native', 'no backup_dbs.php yet');
    fakeApiscp(apnscp, [
      { site: site1, mysql: [`${P}s1_shop`, `${P}s1_shop_v2`], pgsql: [`${P}s1_shop`] },
      { site: site2, mysql: [`${P}s2_app`], pgsql: [] },
    ]);
    services = exportServices(testConfig(root));
  });

  after(async () => {
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  it('is chosen when APNSCP_ROOT/bin/scripts/backup_dbs.php exists', () => {
    assert.equal(services.exporter.kind, 'apiscp');
    assert.equal(services.service.exporterKind, 'apiscp');
  });

  it('runs backup_dbs.php --force with ApisCP’s PHP in APNSCP_ROOT and records each new file with its checksum', async () => {
    // An export from before the run must not be taken for this run's.
    const oldDir = join(site1.root, 'shadow/home/admin/mysql_backups');
    mkdirSync(oldDir, { recursive: true });
    const old = join(oldDir, `${P}s1_shop-20200101000000.sql.gz`);
    writeFileSync(old, 'old');
    utimesSync(old, new Date('2020-01-01'), new Date('2020-01-01'));

    const context = jobContext(root);
    const run = await services.service.runExport([site1, site2], context);
    assert.equal(run.failed, false, JSON.stringify(run.results, null, 2));
    assert.deepEqual(readFileSync(join(apnscp, 'ran'), 'utf8').split('\n').slice(0, 2), [
      `${join(apnscp, 'bin/scripts/backup_dbs.php')} --force`,
      apnscp,
    ]);
    assert.deepEqual(
      run.results.map((r) => `${r.site} ${r.engine} ${r.database} ${r.status}`),
      [
        `site1 mysql ${P}s1_shop succeeded`,
        `site1 mysql ${P}s1_shop_v2 succeeded`,
        `site1 pgsql ${P}s1_shop succeeded`,
        `site2 mysql ${P}s2_app succeeded`,
      ],
    );
    for (const result of run.results) {
      const entry = result.entry!;
      const site = result.site === 'site1' ? site1 : site2;
      const expectedDir = entry.engine === 'mysql' ? 'mysql_backups' : 'pgsql_backups';
      assert.match(entry.file, new RegExp(`^shadow/home/admin/${expectedDir}/${entry.database}-\\d{14}\\.`));
      assert.equal(entry.sha256, sha256(join(site.root, entry.file)));
      assert.equal(entry.exporter, 'apiscp');
    }
    assert.ok(context.logs.includes('backup_dbs.php: exported'), 'the script’s output is in the job log');
    const listed = await services.service.listExports(site1);
    assert.deepEqual(
      listed.map((e) => e.file).sort(),
      run.results
        .filter((r) => r.site === 'site1')
        .map((r) => r.entry!.file)
        .sort(),
    );
    assert.ok(!listed.some((e) => e.file.endsWith('20200101000000.sql.gz')));
  });

  it('a database the script left no new file for fails alone, with a message saying where it looked', async () => {
    await nextWholeSecond(); // the previous run's files are older
    writeFileSync(join(apnscp, `skip-${P}s1_shop_v2`), '');
    try {
      const run = await services.service.runExport([site1], jobContext(root));
      assert.equal(run.failed, true);
      const failed = run.results.filter((r) => r.status === 'failed');
      assert.deepEqual(
        failed.map((r) => `${r.engine} ${r.database} ${r.error?.code}`),
        [`mysql ${P}s1_shop_v2 no-output`],
      );
      assert.match(failed[0].error!.message, /site1\/shadow\/home\/\*\/mysql_backups\//);
      assert.equal(run.results.filter((r) => r.status === 'succeeded').length, 2);
    } finally {
      unlinkSync(join(apnscp, `skip-${P}s1_shop_v2`));
    }
  });

  it('a failing backup_dbs.php fails every step with its own words', async () => {
    writeFileSync(join(apnscp, 'fail'), '');
    try {
      const run = await services.service.runExport([site1, site2], jobContext(root));
      assert.equal(run.failed, true);
      assert.ok(run.results.every((r) => r.status === 'failed' && r.error?.code === 'tool-failed'));
      assert.match(
        run.results[0].error!.message,
        /backup_dbs\.php --force failed: backup_dbs: cannot reach the panel database/,
      );
    } finally {
      unlinkSync(join(apnscp, 'fail'));
    }
  });

  it('cancelling stops backup_dbs.php and everything it started', async () => {
    writeFileSync(join(apnscp, 'hang'), '');
    try {
      const context = jobContext(root);
      const running = services.service.runExport([site2], context);
      await eventually('backup_dbs.php to start', () => existsSync(join(apnscp, 'ran')) && context.pids.length > 0);
      // Cancel once the script has started something of its own (its `sleep 60`), which must go too.
      const [started] = await eventually('backup_dbs.php to start its sleep', () => {
        const children = childrenOf(context.pids[0]);
        return children.length > 0 ? children : undefined;
      });
      context.controller.abort();
      const run = await running;
      assert.equal(run.cancelled, true);
      assert.ok(run.results.every((r) => r.status === 'cancelled'));
      await eventually('backup_dbs.php and its child to exit', () => !isAlive(context.pids[0]) && !isAlive(started));
      assert.equal(isAlive(context.pids[0]), false);
      assert.equal(isAlive(started), false, 'what it started is gone too');
    } finally {
      unlinkSync(join(apnscp, 'hang'));
    }
  });
});
