import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/load-config';
import { DatabaseConnections } from '../../../src/exports/database-connection';
import { classifyFailure, DatabaseServers, why } from '../../../src/exports/database-servers';
import type { RunResult } from '../../../src/common/process/process-runner';
import { FakeRunner } from '../../support/fake-runner';
import { waitUntil } from '../../support/wait';

const root = mkdtempSync(join(tmpdir(), 'connections-'));

function connections(env: Record<string, string>): DatabaseConnections {
  return new DatabaseConnections(loadConfig({ DATA_DIR: root, LOG_FORMAT: 'json', ...env }));
}

describe('database connections', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('MariaDB: a socket, localhost (the default socket) or TCP', async () => {
    const args = (env: Record<string, string>) => connections(env).with('mysql', (c) => Promise.resolve(c.args));
    assert.deepEqual(await args({ MYSQL_SOCKET: '/run/mysqld/mysqld.sock' }), [
      '--user=root',
      '--default-character-set=utf8mb4',
      '--protocol=SOCKET',
      '--socket=/run/mysqld/mysqld.sock',
    ]);
    assert.deepEqual(await args({}), ['--user=root', '--default-character-set=utf8mb4', '--host=localhost']);
    assert.deepEqual(await args({ MYSQL_HOST: 'db.internal', MYSQL_PORT: '3307', MYSQL_USER: 'backup' }), [
      '--user=backup',
      '--default-character-set=utf8mb4',
      '--protocol=TCP',
      '--host=db.internal',
      '--port=3307',
    ]);
    assert.equal(connections({ MYSQL_HOST: '10.0.0.5' }).label('mysql'), 'MariaDB at 10.0.0.5:3306');
  });

  it('MariaDB: the password goes into a 0600 option file in a 0700 directory, first in argv, removed afterwards', async () => {
    const passwordFile = join(root, 'mysql.pw');
    writeFileSync(passwordFile, 's3cr"et\\pw\n');
    let optionFile = '';
    await connections({ MYSQL_PASSWORD_FILE: passwordFile }).with('mysql', (c) => {
      assert.match(c.args[0], /^--defaults-extra-file=/);
      optionFile = c.args[0].slice('--defaults-extra-file='.length);
      assert.equal(statSync(optionFile).mode & 0o777, 0o600);
      assert.equal(statSync(dirname(optionFile)).mode & 0o777, 0o700);
      assert.equal(readFileSync(optionFile, 'utf8'), '[client]\npassword="s3cr\\"et\\\\pw"\n');
      assert.ok(!c.args.join(' ').includes('s3cr'));
      assert.deepEqual(c.secrets, ['s3cr"et\\pw']);
      return Promise.resolve();
    });
    assert.equal(existsSync(dirname(optionFile)), false);
  });

  it('MariaDB: the option file is removed when the work fails too', async () => {
    const passwordFile = join(root, 'mysql2.pw');
    writeFileSync(passwordFile, 'pw-pw-pw');
    let optionFile = '';
    await assert.rejects(
      connections({ MYSQL_PASSWORD_FILE: passwordFile }).with('mysql', (c) => {
        optionFile = c.args[0].slice('--defaults-extra-file='.length);
        return Promise.reject(new Error('boom'));
      }),
      /boom/,
    );
    assert.equal(existsSync(optionFile), false);
  });

  it('PostgreSQL: host or socket directory, never prompting, password in PGPASSWORD', async () => {
    const passwordFile = join(root, 'pg.pw');
    writeFileSync(passwordFile, 'pg-secret\n');
    const c = await connections({ PGHOST: '127.0.0.1', PGPORT: '5433', PGPASSWORD_FILE: passwordFile }).with(
      'pgsql',
      (connection) => Promise.resolve(connection),
    );
    assert.deepEqual(c.args, ['--host=127.0.0.1', '--port=5433', '--username=postgres', '--no-password']);
    assert.equal(c.env.PGPASSWORD, 'pg-secret');
    assert.deepEqual(c.secrets, ['pg-secret']);
    assert.equal(c.label, 'PostgreSQL at 127.0.0.1:5433');
    assert.equal(connections({}).label('pgsql'), 'PostgreSQL at /var/run/postgresql/.s.PGSQL.5432');
  });

  it('an unreadable password file is a clear error', async () => {
    await assert.rejects(
      connections({ PGPASSWORD_FILE: join(root, 'missing') }).with('pgsql', () => Promise.resolve(1)),
      /cannot read the PostgreSQL password file .*missing: ENOENT/,
    );
  });
});

describe('failure classification (stderr as the real tools print it)', () => {
  const result = (stderrTail: string, extra: Partial<RunResult> = {}): RunResult => ({
    exitCode: 2,
    signal: null,
    timedOut: false,
    cancelled: false,
    stdout: '',
    stderrTail,
    durationMs: 1,
    pid: 1,
    ...extra,
  });

  it('tells a server that is down from a refused login and from a failed dump', () => {
    const cases: [string, string][] = [
      [
        "mariadb-dump: Got error: 2002: \"Can't connect to server on '127.0.0.1' (115)\" when trying to connect",
        'server-unreachable',
      ],
      [
        "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)",
        'server-unreachable',
      ],
      [
        'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
        'server-unreachable',
      ],
      [
        "mariadb-dump: Got error: 1045: \"Access denied for user 'x'@'localhost' (using password: YES)\" when trying to connect",
        'access-denied',
      ],
      [
        'psql: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "x"',
        'access-denied',
      ],
      [
        'pg_dump: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  database "x_nope" does not exist',
        'dump-failed',
      ],
      ['mariadb-dump: Got error: 1049: "Unknown database \'x_nope\'" when selecting the database', 'dump-failed'],
      [
        'mariadb-dump: Error 2013: Lost connection to server during query when dumping table `big` at row: 1',
        'dump-failed',
      ],
    ];
    for (const [stderr, code] of cases) assert.equal(classifyFailure(result(stderr)), code, stderr);
    assert.equal(classifyFailure(result('', { timedOut: true })), 'server-unreachable');
  });

  it('explains a failure with the last lines of stderr, else how the process ended', () => {
    assert.equal(why(result('a\nb\n')), 'a | b');
    assert.equal(why(result('', { signal: 'SIGKILL', exitCode: null })), 'killed by SIGKILL');
    assert.equal(why(result('')), 'exit 2');
  });
});

describe('database listing', () => {
  it('callers at the same moment share one listing; a later caller asks again', async () => {
    // Each listing stays open until the test lets it end: all twenty callers arrive while the first is in flight.
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const fake = new FakeRunner(async () => {
      await held;
      return { stdout: ['shop1_wp', 'shop1_crm'] };
    });
    const runs = (): number => fake.requests.length;
    const servers = new DatabaseServers(fake.asProcessRunner(), connections({ MYSQL_HOST: '127.0.0.1' }));
    const asking = Promise.all(Array.from({ length: 20 }, () => servers.listDatabases('mysql')));
    await waitUntil(() => runs() > 0, { what: 'the first listing' });
    release();
    const together = await asking;
    assert.equal(runs(), 1);
    for (const names of together) assert.deepEqual(names, ['shop1_wp', 'shop1_crm']);
    together[0].push('changed by one caller');
    assert.deepEqual(await servers.listDatabases('mysql'), ['shop1_wp', 'shop1_crm'], 'each caller has its own copy');
    assert.equal(runs(), 2, 'nothing is kept once answered');
  });
});
