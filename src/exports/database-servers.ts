import { Injectable } from '@nestjs/common';
import { ProcessRunner, type RunResult } from '../common/process/process-runner';
import { DatabaseConnections } from './database-connection';
import { ExportError } from './export-error';
import type { DatabaseEngine } from './export.model';

const LIST_TIMEOUT_MS = 30_000;

/** The database servers as their command-line clients see them. */
@Injectable()
export class DatabaseServers {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly connections: DatabaseConnections,
  ) {}

  /** Listings in flight, per engine. */
  private readonly listing = new Map<DatabaseEngine, Promise<string[]>>();

  /**
   * Every database on the server (templates excluded for PostgreSQL); throws an ExportError when it cannot ask.
   * Callers at the same moment share one listing: each is a client process and a login, and a caller fetching many
   * sites' details at once would otherwise start one per site. Nothing is kept once it is answered.
   */
  async listDatabases(engine: DatabaseEngine): Promise<string[]> {
    let pending = this.listing.get(engine);
    if (!pending) {
      pending = this.askServer(engine).finally(() => this.listing.delete(engine));
      this.listing.set(engine, pending);
    }
    return [...(await pending)];
  }

  private askServer(engine: DatabaseEngine): Promise<string[]> {
    return this.connections.with(engine, async (connection) => {
      const result =
        engine === 'mysql'
          ? await this.runner.run({
              command: 'mariadb',
              args: [...connection.args, '--batch', '--skip-column-names', '--execute=SHOW DATABASES'],
              env: connection.env,
              secrets: connection.secrets,
              captureStdout: true,
              timeoutMs: LIST_TIMEOUT_MS,
            })
          : await this.runner.run({
              command: 'psql',
              args: [
                ...connection.args,
                '--dbname=postgres',
                '--no-psqlrc',
                '--no-align',
                '--tuples-only',
                '--command=select datname from pg_database where not datistemplate order by 1',
              ],
              env: connection.env,
              secrets: connection.secrets,
              captureStdout: true,
              timeoutMs: LIST_TIMEOUT_MS,
            });
      if (result.exitCode !== 0) {
        throw new ExportError(
          classifyFailure(result),
          `cannot list the databases of ${connection.label}: ${why(result)}`,
        );
      }
      return result.stdout.split('\n').filter((name) => name.length > 0);
    });
  }
}

/** Connection failures get their own codes, so an operator sees "server down" rather than "dump failed". */
export function classifyFailure(result: RunResult): 'server-unreachable' | 'access-denied' | 'dump-failed' {
  if (/access denied|authentication failed|no password supplied|role .* does not exist/i.test(result.stderrTail)) {
    return 'access-denied';
  }
  // PostgreSQL reports a missing database as a failed connection.
  if (/database .* does not exist|unknown database/i.test(result.stderrTail)) return 'dump-failed';
  const unreachable =
    /can't connect|connection refused|could not connect|connection to server .* failed|unknown (mysql )?server host|timeout expired/i;
  return result.timedOut || unreachable.test(result.stderrTail) ? 'server-unreachable' : 'dump-failed';
}

/** The most telling part of a failed run: the last lines of stderr, or how it ended. */
export function why(result: RunResult): string {
  const tail = result.stderrTail
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .slice(-5)
    .join(' | ');
  if (result.timedOut) return `timed out${tail ? `: ${tail}` : ''}`;
  if (tail) return tail;
  return result.signal ? `killed by ${result.signal}` : `exit ${result.exitCode}`;
}
