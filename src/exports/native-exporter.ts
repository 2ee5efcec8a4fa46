import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { Clock } from '../common/clock';
import type { OpenedDir } from '../common/safe-fs';
import { ProcessRunner } from '../common/process/process-runner';
import { AppConfig } from '../config/app-config';
import type { JobContext } from '../jobs/job-context';
import { DatabaseConnections, type ClientConnection } from './database-connection';
import type { DatabaseExporter } from './database-exporter';
import { classifyFailure, why } from './database-servers';
import { cancelledError, ExportError, failedResult, succeededResult } from './export-error';
import { exportFileName, exportStamp, partialNameOf } from './export-files';
import { ExportStore } from './export-store';
import type { ExportEntry, ExportStep, ExportStepResult } from './export.model';

/** gzip's own default: the same ratio and speed as `mariadb-dump | gzip`. */
const GZIP_LEVEL = 6;
const GZIP_CHUNK = 128 * 1024;
const PROGRESS_EVERY_MS = 1000;

/**
 * Runs mariadb-dump and pg_dump on this server. Each dump streams into `.<final name>.partial` (gzip on the way for
 * MariaDB; pg_dump's custom format is compressed already) while its SHA-256 is computed; then fsync, rename into place,
 * fsync of the directory, manifest, retention. A file with a final name is always complete.
 */
@Injectable()
export class NativeExporter implements DatabaseExporter {
  readonly kind = 'native' as const;

  constructor(
    private readonly runner: ProcessRunner,
    private readonly connections: DatabaseConnections,
    private readonly store: ExportStore,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  async exportSteps(steps: readonly ExportStep[], context: JobContext): Promise<ExportStepResult[]> {
    const results: ExportStepResult[] = [];
    let bytesBefore = 0;
    for (const [index, step] of steps.entries()) {
      const started = Date.now();
      if (context.signal.aborted) {
        results.push(failedResult(step, cancelledError(`the export of ${step.database}`), 0));
        continue;
      }
      context.progress({ phase: `export ${step.engine} ${step.database}`, percent: (100 * index) / steps.length });
      try {
        const entry = await this.exportDatabase(step, context, bytesBefore);
        bytesBefore += entry.bytes;
        results.push(succeededResult(step, entry, Date.now() - started));
      } catch (error) {
        const result = failedResult(step, error, Date.now() - started);
        context.log(`${step.site.id} ${step.engine} ${step.database}: ${result.status}: ${result.error?.message}`);
        results.push(result);
      }
    }
    if (steps.length > 0) context.progress({ phase: 'exported', percent: 100, bytes: bytesBefore });
    return results;
  }

  /** Exports one database; throws an ExportError (code `cancelled` when the job's signal stopped it). */
  async exportDatabase(step: ExportStep, context: JobContext, bytesBefore = 0): Promise<ExportEntry> {
    const { site, engine } = step;
    const dir = await this.store.openEngineDir(site, engine);
    try {
      return await this.exportInto(dir, step, context, bytesBefore);
    } finally {
      await dir.close();
    }
  }

  /** The export itself, into the opened private engine directory `dir`: nothing here walks a path again. */
  private async exportInto(
    dir: OpenedDir,
    step: ExportStep,
    context: JobContext,
    bytesBefore: number,
  ): Promise<ExportEntry> {
    const { site, engine, database } = step;
    const createdAt = this.clock.now();
    const finalName = exportFileName(engine, database, exportStamp(createdAt));
    const partialName = partialNameOf(finalName);
    const partialKey = this.store.partialKey(site, engine, partialName);
    const fileOf = (name: string): string => posix.join(this.store.engineDirOf(engine), name);
    const started = Date.now();

    // O_EXCL: a planted link or hardlink at the name, or a second export of the same database in the same
    // millisecond, fails here rather than being written through or interleaved.
    let handle: FileHandle | undefined = await dir.createFile(partialName, 0o600);
    this.store.trackPartial(partialKey);
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      let lastProgress = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          bytes += chunk.length;
          const now = Date.now();
          if (now - lastProgress >= PROGRESS_EVERY_MS) {
            lastProgress = now;
            context.progress({ bytes: bytesBefore + bytes });
          }
          callback(null, chunk);
        },
      });
      // `flush`: fsync before the stream closes the file, so the rename below publishes durable bytes only.
      const file = handle.createWriteStream({ flush: true, highWaterMark: GZIP_CHUNK });
      const gzip =
        engine === 'mysql'
          ? createGzip({ level: GZIP_LEVEL, chunkSize: GZIP_CHUNK, strategy: zlibConstants.Z_DEFAULT_STRATEGY })
          : undefined;
      const head: Writable = gzip ?? tap;
      const written = (gzip ? pipeline(gzip, tap, file) : pipeline(tap, file)).then(
        () => undefined,
        (error: unknown) => error,
      );

      const result = await this.connections.with(engine, (connection) =>
        this.runner.run({
          command: engine === 'mysql' ? 'mariadb-dump' : 'pg_dump',
          args: engine === 'mysql' ? mysqlDumpArgs(connection, database) : pgDumpArgs(connection, database),
          env: connection.env,
          secrets: connection.secrets,
          signal: context.signal,
          stdoutTo: head,
          onSpawn: (pid) => context.trackPid(pid),
          onLine: (stream, line) => {
            if (stream === 'stderr') context.log(`${engine} ${database}: ${line}`);
          },
        }),
      );
      // A child that never started never ends its stdout, and the file pipeline would wait for ever.
      if (!head.writableEnded && !head.destroyed) head.end();
      const writeError = await written;
      const label = `${this.connections.label(engine)}, database ${database}`;

      if (result.cancelled || context.signal.aborted) throw cancelledError(`the export of ${database}`);
      if (result.exitCode !== 0) {
        throw new ExportError(classifyFailure(result), `${dumpTool(engine)} failed for ${label}: ${why(result)}`);
      }
      if (writeError !== undefined || result.stdoutError !== undefined) {
        const message = writeError instanceof Error ? writeError.message : (result.stdoutError ?? String(writeError));
        throw new ExportError('write-failed', `cannot write ${fileOf(partialName)}: ${message}`);
      }
      if (bytes === 0) throw new ExportError('dump-failed', `${dumpTool(engine)} wrote nothing for ${label}`);

      handle = undefined; // closed by its stream, after the fsync
      await dir.rename(partialName, dir, finalName);
      this.store.untrackPartial(partialKey);
      await dir.sync();

      const entry: ExportEntry = {
        engine,
        database,
        file: fileOf(finalName),
        bytes,
        sha256: hash.digest('hex'),
        createdAt: createdAt.toISOString(),
        durationMs: Date.now() - started,
        exporter: 'native',
        format: engine === 'mysql' ? 'sql-gzip' : 'pg-custom',
      };
      await this.store.record(site, entry);
      const removed = await this.store.applyRetention(site, engine, database, this.config.exports.keep);
      context.log(
        `${site.id} ${engine} ${database}: ${entry.file} ${entry.bytes} bytes sha256 ${entry.sha256} in ${entry.durationMs} ms` +
          (removed.length > 0 ? `; removed ${removed.join(', ')}` : ''),
      );
      return entry;
    } catch (error) {
      if (handle) await handle.close().catch(() => undefined);
      await dir.unlink(partialName);
      this.store.untrackPartial(partialKey);
      throw error;
    }
  }
}

function dumpTool(engine: ExportStep['engine']): string {
  return engine === 'mysql' ? 'mariadb-dump' : 'pg_dump';
}

/** InnoDB-consistent without locking (`--single-transaction`), with everything a restore needs besides the rows. */
export function mysqlDumpArgs(connection: ClientConnection, database: string): string[] {
  return [
    ...connection.args,
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--max-allowed-packet=1G',
    '--',
    database,
  ];
}

/** The database goes in as a quoted conninfo value: a bare name with `=` in it would be parsed as a conninfo string. */
export function pgDumpArgs(connection: ClientConnection, database: string): string[] {
  return [...connection.args, '--format=custom', `--dbname=dbname='${database.replace(/[\\']/g, (c) => `\\${c}`)}'`];
}
