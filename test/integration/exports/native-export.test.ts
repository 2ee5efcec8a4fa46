import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ExportEntry, ExportStep } from '../../../src/exports/export.model';
import type { Site } from '../../../src/sites/site';
import {
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  exportServices,
  importMysqlExport,
  importPgsqlExport,
  jobContext,
  makeSite,
  mysql,
  mysqlFingerprint,
  pgsqlFingerprint,
  psql,
  seedMysqlFixture,
  seedPgsqlFixture,
  tempDir,
  testConfig,
  uniquePrefix,
  type ExportServices,
} from '../../support/databases';

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('native database exports against the real MariaDB and PostgreSQL', () => {
  const P = uniquePrefix();
  const root = tempDir('apiscp-exports-');
  let services: ExportServices;
  let site1: Site;
  let site2: Site;
  let site3: Site;
  const entries: ExportEntry[] = [];

  before(async () => {
    await ensureDatabaseServers();
    services = exportServices(testConfig(root, { EXPORT_KEEP: '2' }));
    assert.equal(services.exporter.kind, 'native', 'no backup_dbs.php: the factory picks the native exporter');
    site1 = makeSite(join(root, 'virtual'), 1, { mysql: `${P}s1_`, pgsql: `${P}s1_` });
    site2 = makeSite(join(root, 'virtual'), 2, { mysql: `${P}s2_` });
    site3 = makeSite(join(root, 'virtual'), 3, {});
    await seedMysqlFixture(`${P}s1_shop`, 'shop');
    await seedMysqlFixture(`${P}s1_blog`, 'blog', 50);
    await seedMysqlFixture(`${P}s2_app`, 'app', 200);
    // Belongs to no site, though `s1_` as a LIKE pattern would match it.
    await seedMysqlFixture(`${P}s1x`, 'stray', 5);
    await seedMysqlFixture(`${P}other`, 'other', 5);
    await seedPgsqlFixture(`${P}s1_shop`, 'pgshop');
    await seedPgsqlFixture(`${P}s1xpg`, 'stray', 5);
    await seedPgsqlFixture(`${P}s2_app`, 'pgapp', 5); // site2 has no pgsql prefix file: not its database
  });

  after(async () => {
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  it('plans exactly the databases each site prefix names, compared literally', async () => {
    const plan = await services.service.planExport([site1, site2, site3]);
    assert.deepEqual(plan.unlisted, []);
    assert.deepEqual(
      plan.steps.map((s: ExportStep) => `${s.site.id} ${s.engine} ${s.database}`),
      [`site1 mysql ${P}s1_blog`, `site1 mysql ${P}s1_shop`, `site1 pgsql ${P}s1_shop`, `site2 mysql ${P}s2_app`],
    );
  });

  it('exports every database to a checksummed, private, atomically named file listed in the manifest', async () => {
    const context = jobContext(root);
    const run = await services.service.runExport([site1, site2, site3], context);
    assert.equal(run.failed, false, JSON.stringify(run.results, null, 2));
    assert.equal(run.cancelled, false);
    assert.equal(run.results.length, 4);
    for (const result of run.results) {
      assert.equal(result.status, 'succeeded');
      const entry = result.entry!;
      entries.push(entry);
      const site = result.site === 'site1' ? site1 : site2;
      const path = join(site.root, entry.file);
      assert.match(
        entry.file,
        new RegExp(
          `^shadow/var/backups/databases/${entry.engine}/${entry.database}\\.\\d{8}T\\d{6}\\.\\d{3}Z\\.(sql\\.gz|dump)$`,
        ),
      );
      assert.equal(entry.bytes, statSync(path).size);
      assert.equal(entry.sha256, sha256(path));
      assert.equal(mode(path), 0o600);
      assert.equal(mode(join(site.root, 'shadow/var/backups/databases')), 0o700);
      assert.equal(mode(join(site.root, 'shadow/var/backups/databases', entry.engine)), 0o700);
      assert.equal(mode(join(site.root, 'shadow/var/backups/databases', entry.engine, 'manifest.json')), 0o600);
      const head = readFileSync(path).subarray(0, 5);
      if (entry.engine === 'mysql') assert.deepEqual([...head.subarray(0, 2)], [0x1f, 0x8b], 'gzip magic');
      else assert.equal(head.toString('latin1'), 'PGDMP', 'pg_dump custom-format magic');
    }
    for (const site of [site1, site2]) {
      for (const engine of ['mysql', 'pgsql']) {
        const dir = join(site.root, 'shadow/var/backups/databases', engine);
        if (!existsSync(dir)) continue;
        assert.deepEqual(
          readdirSync(dir).filter((name) => name.endsWith('.partial')),
          [],
          'no partial file is left',
        );
      }
    }
    assert.ok(context.updates.some((u) => u.percent === 100));
    assert.ok(context.pids.length >= 4, 'every dump process was reported for tracking');
  });

  it('lists a site’s exports from its manifests, newest first', async () => {
    const listed = await services.service.listExports(site1);
    assert.deepEqual(
      listed.map((e) => `${e.engine} ${e.database}`).sort(),
      [`mysql ${P}s1_blog`, `mysql ${P}s1_shop`, `pgsql ${P}s1_shop`].sort(),
    );
    const times = listed.map((e) => e.createdAt);
    assert.deepEqual(times, [...times].sort().reverse());
    assert.deepEqual(await services.service.listExports(site3), []);
  });

  it('every MariaDB export imports into a fresh database with the same schema, routines, triggers, views and rows', async () => {
    for (const entry of entries.filter((e) => e.engine === 'mysql')) {
      const site = entry.database.startsWith(`${P}s1_`) ? site1 : site2;
      const copy = `${P}restored_${entry.database.slice(P.length)}`;
      await importMysqlExport(join(site.root, entry.file), copy);
      const original = await mysqlFingerprint(entry.database);
      const restored = await mysqlFingerprint(copy);
      assert.ok(Number(original['rows customers']) > 0);
      assert.match(original.routines, /add_customer/);
      assert.match(original.triggers, /customers_audit/);
      assert.match(original.events, /nightly/);
      assert.match(original.views, /rich/);
      assert.deepEqual(restored, original, `${entry.database} comes back identical`);
    }
  });

  it('every PostgreSQL export restores into a fresh database with the same catalog and rows', async () => {
    for (const entry of entries.filter((e) => e.engine === 'pgsql')) {
      const copy = `${P}restored_pg_${entry.database.slice(P.length)}`;
      await importPgsqlExport(join(site1.root, entry.file), copy);
      const original = await pgsqlFingerprint(entry.database);
      const restored = await pgsqlFingerprint(copy);
      assert.match(original.functions, /customers_audit/);
      assert.match(original.triggers, /customers_audit/);
      assert.match(original['rows blobs'], /^756\|/);
      assert.deepEqual(restored, original, `${entry.database} comes back identical`);
    }
  });

  it('binary data survives byte for byte', async () => {
    const entry = entries.find((e) => e.engine === 'mysql' && e.database === `${P}s1_shop`)!;
    const copy = `${P}restored_s1_shop`; // imported above
    const sql = `SELECT HEX(raw) FROM blobs WHERE id >= 100000 ORDER BY id`;
    const original = await mysql(sql, entry.database);
    assert.equal(original.split('\n').filter(Boolean).length, 256);
    assert.equal(await mysql(sql, copy), original);
    const pgSql = `select encode(raw, 'hex') from blobs where id >= 100000 order by id`;
    assert.equal(await psql(pgSql, `${P}restored_pg_s1_shop`), await psql(pgSql, `${P}s1_shop`));
  });

  it('keeps only the newest EXPORT_KEEP exports per database, removing older ones after the new one is in place', async () => {
    const step: ExportStep = { site: site2, engine: 'mysql', database: `${P}s2_app` };
    const made: ExportEntry[] = [];
    for (let i = 0; i < 3; i++) made.push(await services.service.exportDatabase(step, jobContext(root)));
    const dir = join(site2.root, 'shadow/var/backups/databases/mysql');
    const files = readdirSync(dir).filter((name) => name.startsWith(`${P}s2_app.`));
    assert.deepEqual(
      files.sort(),
      made
        .slice(1)
        .map((e) => e.file.split('/').pop()!)
        .sort(),
    );
    const listed = await services.service.listExports(site2);
    assert.deepEqual(
      listed.map((e) => e.file),
      [made[2].file, made[1].file],
    );
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.exports.length, 2, 'the manifest forgets removed files');
  });

  it('retention also removes complete exports a crash left out of the manifest', async () => {
    const dir = join(site2.root, 'shadow/var/backups/databases/mysql');
    const orphan = join(dir, `${P}s2_app.20000101T000000.000Z.sql.gz`);
    writeFileSync(orphan, 'old', { mode: 0o600 });
    await services.service.exportDatabase({ site: site2, engine: 'mysql', database: `${P}s2_app` }, jobContext(root));
    assert.equal(existsSync(orphan), false);
    assert.equal(readdirSync(dir).filter((name) => name.startsWith(`${P}s2_app.`)).length, 2);
  });

  it('a password from MYSQL_PASSWORD_FILE reaches mariadb-dump through a private option file, never argv', async () => {
    const user = `${P}u`.slice(0, 30);
    const password = `pw "with" #hash \\ and spaces ${P}`;
    const sqlPassword = password.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    await mysql(`CREATE USER '${user}'@'%' IDENTIFIED BY '${sqlPassword}'; GRANT ALL ON *.* TO '${user}'@'%'`);
    try {
      const passwordFile = join(root, 'mysql-password');
      writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
      const withPassword = exportServices(
        testConfig(root, { MYSQL_USER: user, MYSQL_PASSWORD_FILE: passwordFile, EXPORT_KEEP: '2' }),
      );
      let argv = '';
      let optionFileMode = 0;
      let optionFile = '';
      const context = jobContext(root, (pid) => {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
        optionFile = /--defaults-extra-file=(\S+)/.exec(argv)?.[1] ?? '';
        optionFileMode = optionFile ? mode(optionFile) : 0;
      });
      const entry = await withPassword.service.exportDatabase(
        { site: site1, engine: 'mysql', database: `${P}s1_blog` },
        context,
      );
      assert.ok(entry.bytes > 0);
      assert.match(argv, /^mariadb-dump --defaults-extra-file=/);
      assert.ok(!argv.includes('"with"') && !argv.includes('#hash'), `argv carries no password: ${argv}`);
      assert.equal(optionFileMode, 0o600);
      assert.ok(optionFile.startsWith(`${join(root, 'data', 'private')}/`), `in DATA_DIR/private: ${optionFile}`);
      assert.equal(existsSync(optionFile), false, 'the option file is removed afterwards');
      assert.ok(!context.logs.join('\n').includes(password));

      writeFileSync(passwordFile, 'wrong\n');
      await assert.rejects(
        withPassword.service.exportDatabase(
          { site: site1, engine: 'mysql', database: `${P}s1_blog` },
          jobContext(root),
        ),
        (error: Error & { code?: string }) => error.code === 'access-denied' && /Access denied/.test(error.message),
      );
    } finally {
      await mysql(`DROP USER '${user}'@'%'`);
    }
  });
});
