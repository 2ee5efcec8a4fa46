import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Site } from '../../../src/sites/site';
import {
  createMysqlDatabase,
  createPgsqlDatabase,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  exportServices,
  importMysqlExport,
  importPgsqlExport,
  jobContext,
  makeSite,
  mysql,
  MYSQL_ARGS,
  psql,
  PSQL_ARGS,
  tempDir,
  testConfig,
  uniquePrefix,
  type ExportServices,
} from '../../support/databases';

const ACCOUNTS = 100;
const TOTAL = ACCOUNTS * 1000 * 2;

/**
 * Money moves between `a_checking` and `c_savings` in one transaction per transfer; `b_filler` sits between them so a
 * dump reading the tables one by one without a snapshot would see one side of some transfers only.
 */
async function seedBankMysql(database: string): Promise<void> {
  await createMysqlDatabase(database);
  await mysql(
    `CREATE TABLE a_checking (id INT PRIMARY KEY, bal BIGINT NOT NULL) ENGINE=InnoDB;
     CREATE TABLE b_filler (id INT PRIMARY KEY, pad VARCHAR(200) NOT NULL) ENGINE=InnoDB;
     CREATE TABLE c_savings (id INT PRIMARY KEY, bal BIGINT NOT NULL) ENGINE=InnoDB;
     CREATE TABLE d_moves (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB;
     INSERT INTO a_checking SELECT seq, 1000 FROM seq_1_to_${ACCOUNTS};
     INSERT INTO c_savings SELECT seq, 1000 FROM seq_1_to_${ACCOUNTS};
     INSERT INTO b_filler SELECT seq, REPEAT(MD5(seq), 5) FROM seq_1_to_100000;
     INSERT INTO d_moves VALUES (1, 0);
     DELIMITER //
     CREATE PROCEDURE mover(IN times INT) BEGIN
       DECLARE i INT DEFAULT 0; DECLARE k INT; DECLARE amount INT;
       WHILE i < times DO
         SET k = FLOOR(RAND() * ${ACCOUNTS}) + 1; SET amount = FLOOR(RAND() * 50) + 1;
         START TRANSACTION;
         UPDATE a_checking SET bal = bal - amount WHERE id = k;
         UPDATE c_savings SET bal = bal + amount WHERE id = k;
         UPDATE d_moves SET n = n + 1 WHERE id = 1;
         COMMIT;
         SET i = i + 1;
       END WHILE;
     END //
     DELIMITER ;`,
    database,
  );
}

async function seedBankPgsql(database: string): Promise<void> {
  await createPgsqlDatabase(database);
  await psql(
    `create table a_checking (id int primary key, bal bigint not null);
     create table b_filler (id int primary key, pad text not null);
     create table c_savings (id int primary key, bal bigint not null);
     create table d_moves (id int primary key, n bigint not null);
     insert into a_checking select g, 1000 from generate_series(1, ${ACCOUNTS}) g;
     insert into c_savings select g, 1000 from generate_series(1, ${ACCOUNTS}) g;
     insert into b_filler select g, repeat(md5(g::text), 5) from generate_series(1, 100000) g;
     insert into d_moves values (1, 0);
     create procedure mover(times int) language plpgsql as $$
     declare k int; amount int;
     begin
       for i in 1..times loop
         k := floor(random() * ${ACCOUNTS}) + 1; amount := floor(random() * 50) + 1;
         update a_checking set bal = bal - amount where id = k;
         update c_savings set bal = bal + amount where id = k;
         update d_moves set n = n + 1 where id = 1;
         commit;
       end loop;
     end $$;`,
    database,
  );
}

const balanceSql =
  'SELECT (SELECT SUM(bal) FROM a_checking) + (SELECT SUM(bal) FROM c_savings), (SELECT n FROM d_moves)';

/** Starts the mover in its own client session; `stop` ends the server-side loop as well, not just the client. */
function startMover(engine: 'mysql' | 'pgsql', database: string): { child: ChildProcess; stop: () => Promise<void> } {
  const child =
    engine === 'mysql'
      ? spawn('mariadb', [...MYSQL_ARGS, database, '--execute=CALL mover(100000000)'], { stdio: 'ignore' })
      : spawn('psql', [...PSQL_ARGS, `--dbname=${database}`, '--command=call mover(100000000)'], { stdio: 'ignore' });
  return {
    child,
    stop: async () => {
      if (engine === 'mysql') {
        const ids = await mysql(
          // The process list shows the procedure's current statement, not the CALL.
          `SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '${database}' AND COMMAND = 'Query' AND ID <> CONNECTION_ID()`,
        );
        for (const id of ids.split('\n').filter(Boolean)) await mysql(`KILL ${id}`).catch(() => undefined);
      } else {
        await psql(
          `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${database}' and query like 'call mover%'`,
        );
      }
      child.kill();
    },
  };
}

async function waitForMoves(read: () => Promise<number>, atLeast: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await read()) < atLeast) {
    if (Date.now() > deadline) throw new Error('the writer is not moving money');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('exports are consistent snapshots while a writer moves money', () => {
  const P = uniquePrefix();
  const root = tempDir();
  let services: ExportServices;
  let site: Site;

  before(async () => {
    await ensureDatabaseServers();
    services = exportServices(testConfig(root, { EXPORT_KEEP: '10' }));
    site = makeSite(join(root, 'virtual'), 1, { mysql: `${P}s1_`, pgsql: `${P}s1_` });
  });

  after(async () => {
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  it('MariaDB: every export balances, while the live tables keep changing between exports', async () => {
    const database = `${P}s1_bank`;
    await seedBankMysql(database);
    const mover = startMover('mysql', database);
    const moves = async () => Number((await mysql('SELECT n FROM d_moves', database)).trim());
    try {
      await waitForMoves(moves, 50);
      const seen: number[] = [];
      for (let i = 0; i < 4; i++) {
        const entry = await services.service.exportDatabase({ site, engine: 'mysql', database }, jobContext(root));
        const copy = `${P}copy_my_${i}`;
        await importMysqlExport(join(site.root, entry.file), copy);
        const [total, moved] = (await mysql(balanceSql, copy)).trim().split('\t').map(Number);
        assert.equal(total, TOTAL, `export ${i} balances (after ${moved} transfers)`);
        seen.push(moved);
        await waitForMoves(moves, moved + 50);
      }
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `transfers went on: ${seen.join(', ')}`);

      // Control: the same tables read one by one without a snapshot do not balance, so the check above can fail.
      let unbalanced = 0;
      for (let i = 0; i < 3 && unbalanced === 0; i++) {
        const file = join(root, `control-${i}.sql.gz`);
        const dump = spawn('mariadb-dump', [...MYSQL_ARGS, '--skip-lock-tables', database], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        await pipeline(dump.stdout, createGzip(), createWriteStream(file));
        const copy = `${P}control_${i}`;
        await importMysqlExport(file, copy);
        const [total] = (await mysql(balanceSql, copy)).trim().split('\t').map(Number);
        if (total !== TOTAL) unbalanced++;
      }
      assert.equal(unbalanced, 1, 'a dump without --single-transaction catches transfers half-way');
    } finally {
      await mover.stop();
    }
  });

  it('PostgreSQL: every export balances, while the live tables keep changing between exports', async () => {
    const database = `${P}s1_bank`;
    await seedBankPgsql(database);
    const mover = startMover('pgsql', database);
    const moves = async () => Number((await psql('select n from d_moves', database)).trim());
    try {
      await waitForMoves(moves, 50);
      const seen: number[] = [];
      for (let i = 0; i < 4; i++) {
        const entry = await services.service.exportDatabase({ site, engine: 'pgsql', database }, jobContext(root));
        const copy = `${P}copy_pg_${i}`;
        await importPgsqlExport(join(site.root, entry.file), copy);
        const [total, moved] = (await psql(balanceSql, copy)).trim().split('|').map(Number);
        assert.equal(total, TOTAL, `export ${i} balances (after ${moved} transfers)`);
        seen.push(moved);
        await waitForMoves(moves, moved + 50);
      }
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `transfers went on: ${seen.join(', ')}`);
    } finally {
      await mover.stop();
    }
  });
});
