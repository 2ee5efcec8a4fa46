import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ProcessRunner } from '../common/process/process-runner';
import { DatabaseConnections, type ClientConnection } from '../exports/database-connection';
import { why } from '../exports/database-servers';
import { mysqlDumpArgs, pgDumpArgs } from '../exports/native-exporter';
import { JobFailure } from '../jobs/job-failure';
import type { DatabaseRef } from './webapp-types';

export interface DumpFile {
  bytes: number;
  sha256: string;
}

const SQL_TIMEOUT_MS = 60_000;

/** `'name'` as a conninfo value. */
function conninfoDb(database: string): string {
  return `dbname='${database.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * Logical exports and imports of one app's database, with the same clients and options as the database exports
 * (mariadb-dump/pg_dump as in `exports/`; imports with `mariadb` and `pg_restore`). Dumps are written to a temporary
 * name, fsynced, then renamed; the directory they go to is the service's own (root-only).
 */
@Injectable()
export class WebappDatabases {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly connections: DatabaseConnections,
  ) {}

  fileExtension(database: DatabaseRef): string {
    return database.engine === 'mysql' ? 'sql.gz' : 'pgdump';
  }

  async dump(
    database: DatabaseRef,
    file: string,
    signal: AbortSignal,
    onSpawn?: (pid: number) => void,
  ): Promise<DumpFile> {
    const partial = `${file}.partial`;
    const hash = createHash('sha256');
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const handle = await open(partial, 'wx', 0o600);
    const out = handle.createWriteStream({ flush: true });
    const head = database.engine === 'mysql' ? createGzip({ level: 6 }) : tap;
    const written = (database.engine === 'mysql' ? pipeline(head, tap, out) : pipeline(tap, out)).then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      const result = await this.connections.with(database.engine, (connection) =>
        this.runner.run({
          command: database.engine === 'mysql' ? 'mariadb-dump' : 'pg_dump',
          args:
            database.engine === 'mysql'
              ? mysqlDumpArgs(connection, database.name)
              : pgDumpArgs(connection, database.name),
          env: connection.env,
          secrets: connection.secrets,
          signal,
          onSpawn,
          stdoutTo: head,
        }),
      );
      if (!head.writableEnded && !head.destroyed) head.end();
      const writeError = await written;
      if (result.cancelled) throw new JobFailure('cancelled', `the export of ${database.name} was cancelled`);
      if (result.exitCode !== 0) {
        throw new JobFailure('database-export-failed', `exporting ${database.name} failed: ${why(result)}`);
      }
      if (writeError !== undefined) {
        throw new JobFailure(
          'database-export-failed',
          `writing the export of ${database.name} failed: ${writeError instanceof Error ? writeError.message : 'unknown error'}`,
        );
      }
      await rename(partial, file);
      return { bytes, sha256: hash.digest('hex') };
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }

  /**
   * Replaces the database's whole content with `file`: MariaDB's database is dropped and made again with its own
   * character set and collation, then the dump is sourced (stopping at the first error); PostgreSQL's is recreated by
   * `pg_restore --clean --create` from the dump's own definition. Not atomic: callers keep a dump of the state before
   * and put it back the same way when this fails. `scratchDir` is a root-only directory for the unpacked SQL.
   */
  async replace(
    database: DatabaseRef,
    file: string,
    scratchDir: string,
    signal: AbortSignal,
    onSpawn?: (pid: number) => void,
  ): Promise<void> {
    if (database.engine === 'mysql') await this.replaceMysql(database.name, file, scratchDir, signal, onSpawn);
    else await this.replacePgsql(database.name, file, signal, onSpawn);
  }

  private async replaceMysql(
    name: string,
    file: string,
    scratchDir: string,
    signal: AbortSignal,
    onSpawn?: (pid: number) => void,
  ): Promise<void> {
    const sql = `${scratchDir}/import-${process.hrtime.bigint()}.sql`;
    await pipeline(createReadStream(file), createGunzip(), createWriteStream(sql, { flags: 'wx', mode: 0o600 }));
    try {
      await this.connections.with('mysql', async (connection) => {
        const ident = `\`${name.replace(/`/g, '``')}\``;
        const literal = `'${name.replace(/[\\']/g, (c) => `\\${c}`)}'`;
        const charset = await this.mysql(
          connection,
          `SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${literal}`,
          signal,
        );
        const [cs, co] = charset.trim().split('\t');
        const options = cs && co ? ` CHARACTER SET ${cs} COLLATE ${co}` : '';
        await this.mysql(connection, `DROP DATABASE IF EXISTS ${ident}; CREATE DATABASE ${ident}${options}`, signal);
        const result = await this.runner.run({
          command: 'mariadb',
          args: [
            ...connection.args,
            '--batch',
            '--abort-source-on-error',
            `--database=${name}`,
            `--execute=source ${sql}`,
          ],
          env: connection.env,
          secrets: connection.secrets,
          signal,
          onSpawn,
        });
        if (result.exitCode !== 0) {
          throw new JobFailure('database-import-failed', `importing into ${name} failed: ${why(result)}`);
        }
      });
    } finally {
      await rm(sql, { force: true });
    }
  }

  private async mysql(connection: ClientConnection, sql: string, signal: AbortSignal): Promise<string> {
    const result = await this.runner.run({
      command: 'mariadb',
      args: [...connection.args, '--batch', '--skip-column-names', `--execute=${sql}`],
      env: connection.env,
      secrets: connection.secrets,
      signal,
      captureStdout: true,
      timeoutMs: SQL_TIMEOUT_MS,
    });
    if (result.exitCode !== 0) throw new JobFailure('database-import-failed', `MariaDB: ${why(result)}`);
    return result.stdout;
  }

  private async replacePgsql(
    name: string,
    file: string,
    signal: AbortSignal,
    onSpawn?: (pid: number) => void,
  ): Promise<void> {
    await this.connections.with('pgsql', async (connection) => {
      // DROP DATABASE waits for no one: the app's own connections are closed first.
      const literal = `'${name.replace(/'/g, "''")}'`;
      const terminate = await this.runner.run({
        command: 'psql',
        args: [
          ...connection.args,
          '--dbname=postgres',
          '--no-psqlrc',
          '--set=ON_ERROR_STOP=1',
          `--command=select pg_terminate_backend(pid) from pg_stat_activity where datname = ${literal} and pid <> pg_backend_pid()`,
        ],
        env: connection.env,
        secrets: connection.secrets,
        signal,
        timeoutMs: SQL_TIMEOUT_MS,
      });
      if (terminate.exitCode !== 0) throw new JobFailure('database-import-failed', `PostgreSQL: ${why(terminate)}`);
      const result = await this.runner.run({
        command: 'pg_restore',
        args: [
          ...connection.args,
          '--clean',
          '--if-exists',
          '--create',
          '--exit-on-error',
          `--dbname=${conninfoDb('postgres')}`,
          file,
        ],
        env: connection.env,
        secrets: connection.secrets,
        signal,
        onSpawn,
      });
      if (result.exitCode !== 0) {
        throw new JobFailure('database-import-failed', `pg_restore into ${name} failed: ${why(result)}`);
      }
    });
  }
}
