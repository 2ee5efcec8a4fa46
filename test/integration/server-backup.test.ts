import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load-config';
import { runJob } from '../support/jobs';
import { assertProblem } from '../support/problem';
import { startTestApp, tempDir } from '../support/test-app';

function file(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
}

describe('server-level backups', () => {
  it('backs up the seed locations (grants exports, mailbox maps) and never the raw database files', async () => {
    const root = tempDir();
    const server = join(root, 'server');
    file(join(server, 'var/log/mailer_table'), 'user@example.com site1\n');
    file(join(server, 'var/log/mailer_table.db'), 'binary map\n');
    file(join(server, 'var/lib/mysql/mysql-grants.sql'), "GRANT ALL ON `ex_%`.* TO 'ex'@'localhost';\n");
    file(join(server, 'var/lib/mysql/ibdata1'), 'raw innodb pages');
    file(join(server, 'var/lib/pgsql/15/backups/grants.sql'), 'GRANT CONNECT ON DATABASE ex_db TO ex;\n');
    file(join(server, 'var/lib/pgsql/15/data/PG_VERSION'), '15\n');
    // Server locations carry xattrs and ACLs too; duplicity drops them, the attribute manifest brings them back.
    execFileSync('setfattr', ['-n', 'user.fortify', '-v', 'mailer', join(server, 'var/log/mailer_table')]);
    execFileSync('setfacl', ['-m', 'u:nobody:rwx,d:u:nobody:rx', join(server, 'var/lib/pgsql/15/backups')]);
    const t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target`, SERVER_BACKUP_ROOT: server }, root);
    try {
      const backup = await runJob(t, '/v1/server/backups', { level: 'incremental' });
      assert.equal(backup.status, 'succeeded', JSON.stringify(backup));
      assert.equal(backup.site, 'server');
      assert.equal(backup.result?.level, 'full', 'the first backup is a full one');
      const points = (await t.http().get('/v1/server/restore-points').set(t.auth('monitor')).expect(200)).body.items;
      assert.equal(points.length, 1);
      const restore = await runJob(t, '/v1/server/restores', { restorePoint: points[0].id });
      assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
      const restored = join(restore.result?.destination as string, server);
      assert.equal(
        readFileSync(join(restored, 'var/lib/mysql/mysql-grants.sql'), 'utf8'),
        "GRANT ALL ON `ex_%`.* TO 'ex'@'localhost';\n",
      );
      assert.ok(existsSync(join(restored, 'var/log/mailer_table.db')));
      assert.ok(existsSync(join(restored, 'var/lib/pgsql/15/backups/grants.sql')));
      assert.ok(!existsSync(join(restored, 'var/lib/mysql/ibdata1')), 'raw MySQL files are not backed up');
      assert.ok(!existsSync(join(restored, 'var/lib/pgsql/15/data')), 'raw PostgreSQL files are not backed up');
      assert.equal(
        execFileSync('getfattr', ['--only-values', '-n', 'user.fortify', join(restored, 'var/log/mailer_table')], {
          encoding: 'utf8',
        }),
        'mailer',
      );
      const acl = execFileSync('getfacl', ['-cp', join(restored, 'var/lib/pgsql/15/backups')], { encoding: 'utf8' });
      assert.match(acl, /^user:nobody:rwx$/m);
      assert.match(acl, /^default:user:nobody:r-x$/m);
      const leftovers = execFileSync('find', [restore.result?.destination as string, '-name', 'attributes.dump'], {
        encoding: 'utf8',
      });
      assert.equal(leftovers, '', "the service's own attribute manifest is not part of the restored tree");
      const jobs = (await t.http().get('/v1/server/backups').set(t.auth('monitor')).expect(200)).body.items;
      assert.equal(jobs.length, 1);
      assertProblem(
        await t
          .http()
          .post('/v1/server/restores')
          .set(t.auth('operator'))
          .send({ restorePoint: points[0].id, target: 'in-place' }),
        400,
        'validation-failed',
      );
    } finally {
      await t.close();
    }
  });

  it('fails clearly when none of the locations exist', async () => {
    const root = tempDir();
    const t = await startTestApp(
      { DUPLICITY_TARGET: `file://${root}/target`, SERVER_BACKUP_ROOT: join(root, 'empty') },
      root,
    );
    try {
      const backup = await runJob(t, '/v1/server/backups', { level: 'full' });
      assert.equal(backup.status, 'failed');
      assert.equal(backup.error?.code, 'nothing-to-back-up');
    } finally {
      await t.close();
    }
  });

  it('refuses at start-up an extra path inside a raw database directory, saying why', () => {
    assert.throws(
      () => loadConfig({ SERVER_BACKUP_EXTRA_PATHS: '/etc/exim4,/var/lib/mysql/shop_db' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.length === 1 &&
        /\/var\/lib\/mysql\/shop_db is inside \/var\/lib\/mysql.*not atomic.*exported logically/.test(
          error.problems[0],
        ),
    );
    assert.throws(() => loadConfig({ SERVER_BACKUP_EXTRA_PATHS: '/var/lib/pgsql' }), ConfigError);
    assert.deepEqual(loadConfig({ SERVER_BACKUP_EXTRA_PATHS: '/etc/exim4' }).serverBackup.extraPaths, ['/etc/exim4']);
  });
});
