import { Injectable } from '@nestjs/common';
import { ProcessRunner, type RunResult } from '../common/process/process-runner';
import type { Site } from '../sites/site';
import { DatabaseConnections } from './database-connection';
import { databasesWithPrefix, readDatabasePrefix } from './database-prefix';
import { ExportError, toExportError } from './export-error';
import {
  DATABASE_ENGINES,
  type DatabaseEngine,
  type ExportPlan,
  type ExportStep,
  type UnlistedEngine,
} from './export.model';

const LIST_TIMEOUT_MS = 30_000;

/** A site's databases (those its ApisCP prefixes name), and the servers that could not be asked. */
export interface SiteDatabases {
  databases: { engine: DatabaseEngine; name: string }[];
  unavailable: { engine: DatabaseEngine; message: string }[];
}

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

  /** The databases of one site, MariaDB before PostgreSQL; a server is asked only when the site has its prefix. */
  async forSite(site: Site): Promise<SiteDatabases> {
    const plan = await planDatabases([site], (engine) => this.listDatabases(engine));
    return {
      databases: plan.steps.map((step) => ({ engine: step.engine, name: step.database })),
      unavailable: plan.unlisted.map((problem) => ({ engine: problem.engine, message: problem.error.message })),
    };
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

/**
 * One step per database of each site (by its ApisCP prefix), sites in the given order, MariaDB before PostgreSQL.
 * Each server is asked once (`list`), and only when some site has its prefix; a server that cannot be asked is
 * reported in `unlisted` with the sites it concerns.
 */
export async function planDatabases(
  sites: readonly Site[],
  list: (engine: DatabaseEngine) => Promise<string[]>,
): Promise<ExportPlan> {
  const steps: ExportStep[] = [];
  const unlisted: UnlistedEngine[] = [];
  for (const engine of DATABASE_ENGINES) {
    const prefixed: { site: Site; prefix: string }[] = [];
    for (const site of sites) {
      const prefix = await readDatabasePrefix(site.root, engine);
      if (prefix) prefixed.push({ site, prefix });
    }
    if (prefixed.length === 0) continue;
    let names: string[];
    try {
      names = await list(engine);
    } catch (error) {
      const failure = toExportError(error);
      unlisted.push({
        engine,
        sites: prefixed.map(({ site }) => site.id),
        error: { code: failure.code, message: failure.message },
      });
      continue;
    }
    for (const { site, prefix } of prefixed) {
      for (const database of databasesWithPrefix(names, prefix)) steps.push({ site, engine, database });
    }
  }
  const siteOrder = new Map(sites.map((site, index) => [site.id, index]));
  steps.sort((a, b) => siteOrder.get(a.site.id)! - siteOrder.get(b.site.id)!);
  return { steps, unlisted };
}
