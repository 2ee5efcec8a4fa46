import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ProcessRunner, RunRequest, RunResult } from '../../../src/common/process/process-runner';
import type { DatabaseConnections } from '../../../src/exports/database-connection';
import { DatabaseServers } from '../../../src/exports/database-servers';
import type { DatabaseEngine } from '../../../src/exports/export.model';
import type { Site } from '../../../src/sites/site';
import { siteWithPrefixes } from '../../support/sample-sites';

const root = mkdtempSync(join(tmpdir(), 'database-servers-'));

const site = (n: number, prefixes: Partial<Record<DatabaseEngine, string>>): Site =>
  siteWithPrefixes(root, n, prefixes);

/** Answers `mariadb` and `psql` with the given listings, or fails like a server that refuses connections. */
function servers(lists: Partial<Record<'mariadb' | 'psql', string[]>>, asked: string[] = []): DatabaseServers {
  const runner = {
    run: (options: RunRequest): Promise<Partial<RunResult>> => {
      asked.push(options.command);
      const list = lists[options.command as 'mariadb' | 'psql'];
      return Promise.resolve(
        list
          ? { exitCode: 0, stdout: list.join('\n') + '\n', stderrTail: '' }
          : { exitCode: 1, stdout: '', stderrTail: `${options.command}: Connection refused` },
      );
    },
  } as unknown as ProcessRunner;
  const connections = {
    with: <T>(engine: DatabaseEngine, work: (connection: object) => Promise<T>): Promise<T> =>
      work({ args: [], env: {}, secrets: [], label: `${engine} server` }),
  } as unknown as DatabaseConnections;
  return new DatabaseServers(runner, connections);
}

describe('DatabaseServers.forSite', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it("lists the site's databases by its prefixes, MariaDB before PostgreSQL", async () => {
    const found = await servers({ mariadb: ['b_1', 'a_2', 'a_1', 'a_'], psql: ['a_pg', 'postgres'] }).forSite(
      site(1, { mysql: 'a_', pgsql: 'a_' }),
    );
    assert.deepEqual(found, {
      databases: [
        { engine: 'mysql', name: 'a_1' },
        { engine: 'mysql', name: 'a_2' },
        { engine: 'pgsql', name: 'a_pg' },
      ],
      unavailable: [],
    });
  });

  it('asks only the servers the site has a prefix for, and reports one that cannot be asked', async () => {
    const asked: string[] = [];
    const found = await servers({ mariadb: ['c_1'] }, asked).forSite(site(2, { pgsql: 'c_' }));
    assert.deepEqual(asked, ['psql']);
    assert.deepEqual(found.databases, []);
    assert.equal(found.unavailable.length, 1);
    assert.equal(found.unavailable[0].engine, 'pgsql');
    assert.match(found.unavailable[0].message, /cannot list the databases of pgsql server: .*Connection refused/);
  });
});
