import { Injectable } from '@nestjs/common';
import { accessSync, constants } from 'node:fs';
import { join, posix } from 'node:path';
import { OpenedDir, SafeFsError, withDir } from '../common/safe-fs';
import { ProcessRunner } from '../common/process/process-runner';
import { AppConfig } from '../config/app-config';
import type { JobContext } from '../jobs/job-context';
import type { Site } from '../sites/site';
import type { DatabaseExporter } from './database-exporter';
import { why } from './database-servers';
import { cancelledError, ExportError, failedResult, succeededResult } from './export-error';
import { asExportError, sha256Regular } from './export-files';
import { ExportStore } from './export-store';
import type { DatabaseEngine, ExportEntry, ExportStep, ExportStepResult } from './export.model';

/** Where ApisCP's exports land, below a site's root: `mysql_backups/` in its users' homes (pgsql_backups assumed). */
export const APISCP_EXPORT_DIRS: Record<DatabaseEngine, string> = { mysql: 'mysql_backups', pgsql: 'pgsql_backups' };

export function backupDbsScript(config: AppConfig): string {
  return join(config.apnscpRoot, 'bin', 'scripts', 'backup_dbs.php');
}

/** ApisCP's own PHP when it ships one (`APNSCP_ROOT/bin/php`), else `php` on PATH. */
export function apiscpPhp(config: AppConfig): string {
  const bundled = join(config.apnscpRoot, 'bin', 'php');
  try {
    accessSync(bundled, constants.X_OK);
    return bundled;
  } catch {
    return 'php';
  }
}

interface FoundFile {
  /** Relative to the site root. */
  path: string;
  /** The directory holding it, relative to the site root. */
  dir: string;
  name: string;
  dirEngine: DatabaseEngine;
  mtimeMs: number;
}

/**
 * On an ApisCP server ApisCP makes the exports: `backup_dbs.php --force` exports every database of every site (it has
 * no narrower switch), each into the owning account's `mysql_backups/`. What it made is known only from the files:
 * those newer than the run's start, matched to a planned database by name (longest name the file name starts with).
 * Their size and SHA-256 are taken as found and recorded in the site's manifest; ApisCP rotates them itself.
 */
@Injectable()
export class ApiscpExporter implements DatabaseExporter {
  readonly kind = 'apiscp' as const;

  constructor(
    private readonly runner: ProcessRunner,
    private readonly store: ExportStore,
    private readonly config: AppConfig,
  ) {}

  async exportSteps(steps: readonly ExportStep[], context: JobContext): Promise<ExportStepResult[]> {
    if (steps.length === 0) return [];
    if (context.signal.aborted) return steps.map((step) => failedResult(step, cancelledError('the export'), 0));
    const started = Date.now();
    // Coarse file systems keep whole seconds; a file from the very second the run started still counts.
    const since = Math.floor(started / 1000) * 1000;
    const script = backupDbsScript(this.config);
    context.progress({ phase: 'backup_dbs.php', percent: 0 });
    const result = await this.runner.run({
      command: apiscpPhp(this.config),
      args: [script, '--force'],
      cwd: this.config.apnscpRoot,
      signal: context.signal,
      onSpawn: (pid) => context.trackPid(pid),
      onLine: (_stream, line) => context.log(`backup_dbs.php: ${line}`),
    });
    const elapsed = (): number => Date.now() - started;
    if (result.cancelled || context.signal.aborted) {
      return steps.map((step) => failedResult(step, cancelledError('backup_dbs.php'), elapsed()));
    }
    if (result.exitCode !== 0) {
      const error = new ExportError('tool-failed', `${script} --force failed: ${why(result)}`);
      return steps.map((step) => failedResult(step, error, elapsed()));
    }

    const results = new Array<ExportStepResult>(steps.length);
    let bytes = 0;
    for (const site of uniqueSites(steps)) {
      const siteSteps = steps.map((step, index) => ({ step, index })).filter(({ step }) => step.site.id === site.id);
      const claimed = new Map<number, FoundFile>();
      for (const file of await this.newFiles(site, since, context)) {
        const match = attribute(file, siteSteps);
        if (!match) {
          context.log(`backup_dbs.php made ${file.path}, which names no planned database`);
          continue;
        }
        const current = claimed.get(match.index);
        if (!current || current.mtimeMs < file.mtimeMs) claimed.set(match.index, file);
      }
      for (const { step, index } of siteSteps) {
        const file = claimed.get(index);
        if (!file) {
          const error = new ExportError(
            'no-output',
            `backup_dbs.php exited 0 but left no new file for ${step.engine} database ${step.database} ` +
              `in ${site.id}/shadow/home/*/${APISCP_EXPORT_DIRS[step.engine]}/`,
          );
          results[index] = failedResult(step, error, elapsed());
          continue;
        }
        try {
          const { sha256, bytes: size } = await this.hash(site, file);
          const entry: ExportEntry = {
            engine: step.engine,
            database: step.database,
            file: file.path,
            bytes: size,
            sha256,
            createdAt: new Date(file.mtimeMs).toISOString(),
            durationMs: result.durationMs,
            exporter: 'apiscp',
            format: 'apiscp',
          };
          await this.store.record(site, entry);
          bytes += size;
          context.log(`${site.id} ${step.engine} ${step.database}: ${entry.file} ${size} bytes sha256 ${sha256}`);
          results[index] = succeededResult(step, entry, elapsed());
        } catch (error) {
          results[index] = failedResult(step, error, elapsed());
        }
      }
    }
    context.progress({ phase: 'exported', percent: 100, bytes });
    return results;
  }

  /**
   * Regular files in `shadow/home/<user>/{mysql,pgsql}_backups/` modified at or after `since`. These directories
   * belong to the site's users: every directory is opened without following links and every file is lstat'ed
   * through it, so a link there is never listed, stat'ed or hashed.
   */
  private async newFiles(site: Site, since: number, context: JobContext): Promise<FoundFile[]> {
    const found: FoundFile[] = [];
    await withDir(OpenedDir.openTrusted(site.root), async (root) => {
      const homes = await this.openTenantDir(root, 'shadow/home', context);
      if (!homes) return;
      try {
        for (const user of await homes.names()) {
          for (const engine of ['mysql', 'pgsql'] as const) {
            const relative = posix.join('shadow/home', user, APISCP_EXPORT_DIRS[engine]);
            const dir = await this.openTenantDir(root, relative, context);
            if (!dir) continue;
            try {
              for (const { name, stats } of await dir.list()) {
                if (stats.isFile() && stats.mtimeMs >= since) {
                  found.push({
                    path: posix.join(relative, name),
                    dir: relative,
                    name,
                    dirEngine: engine,
                    mtimeMs: stats.mtimeMs,
                  });
                }
              }
            } finally {
              await dir.close();
            }
          }
        }
      } finally {
        await homes.close();
      }
    });
    return found;
  }

  private async openTenantDir(root: OpenedDir, relative: string, context: JobContext): Promise<OpenedDir | undefined> {
    try {
      return await root.tryOpenDir(relative);
    } catch (error) {
      if (!(error instanceof SafeFsError)) throw error;
      context.log(`skipping ${relative}: ${error.message}`);
      return undefined;
    }
  }

  /** Size and SHA-256 of a found file, opened through its directory: links, FIFOs and hardlinks are refused. */
  private async hash(site: Site, file: FoundFile): Promise<{ sha256: string; bytes: number }> {
    try {
      return await withDir(OpenedDir.openTrusted(site.root), (root) =>
        withDir(root.openDir(file.dir), (dir) => sha256Regular(dir, file.name)),
      );
    } catch (error) {
      throw asExportError(error);
    }
  }
}

function uniqueSites(steps: readonly ExportStep[]): Site[] {
  const byId = new Map<string, Site>();
  for (const step of steps) if (!byId.has(step.site.id)) byId.set(step.site.id, step.site);
  return [...byId.values()];
}

/** The planned database whose name is the longest start of the file's name; the directory's engine breaks a tie. */
function attribute<T extends { step: ExportStep }>(file: FoundFile, candidates: readonly T[]): T | undefined {
  const boundary = /^($|[^A-Za-z0-9_$])/;
  return candidates
    .filter(({ step }) => file.name.startsWith(step.database) && boundary.test(file.name.slice(step.database.length)))
    .sort(
      (a, b) =>
        b.step.database.length - a.step.database.length ||
        Number(b.step.engine === file.dirEngine) - Number(a.step.engine === file.dirEngine),
    )[0];
}
