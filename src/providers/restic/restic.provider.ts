import { Injectable, Logger } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { access, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
import { sleepUnlessAborted } from '../../common/abortable-sleep';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import {
  restoreWorkArea,
  type BackupOutcome,
  type BackupProvider,
  type BackupRequest,
  type BackupSubject,
  type ProviderStatus,
  type PruneOutcome,
  type PruneRequest,
  type RestoreOutcome,
  type RestorePoint,
  type RestoreRequest,
} from '../backup-provider';
import { type BackupLevel } from '../../jobs/backup-level';
import { type JobContext } from '../../jobs/job-context';
import { FsAttributesService } from '../fs-attributes/fs-attributes.service';
import { ManifestFence } from '../fs-attributes/manifest-fence';
import { ResticSnapshotCache } from './restic-snapshot-cache';
import {
  RESTIC_TAG,
  classifyError,
  literalPattern,
  parseBackupLine,
  parseLock,
  parseLsLine,
  parseSnapshots,
  pointIdOf,
  snapshotIdOf,
  toRestorePoints,
  type PointFileEntry,
  pathInRoot,
  symlinkTargets,
  type ResticError,
  type ResticSnapshot,
} from './restic-output';

const ATTRIBUTES_FILE = 'attributes.dump';
const QUICK_COMMAND_MS = 60_000;
/** restic's exit code when the snapshot was made but some files could not be read. */
const EXIT_INCOMPLETE = 3;
/** Restore point ids carry this many hex digits of the snapshot id (restic accepts any unique prefix). */
const POINT_ID_DIGITS = 16;

/**
 * restic: one repository for the whole server (RESTIC_REPOSITORY), each subject's snapshots told apart by `--host
 * <key>` and the service's tag, so a file common to many sites is stored once. Every snapshot is complete (`full`, a
 * chain of one). restic 0.14 restores xattrs and ACLs of files and directories but not of symlinks (checked on
 * Debian 12), so each snapshot also carries a manifest of the symlinks' attributes (the duplicity provider's
 * format), and a restore re-applies it.
 */
@Injectable()
export class ResticProvider implements BackupProvider {
  readonly name = 'restic' as const;
  /** `incremental` is accepted and made as what restic always makes: a complete, deduplicated snapshot. */
  readonly levels: readonly BackupLevel[] = ['full', 'incremental'];
  private readonly logger = new Logger(ResticProvider.name);
  private creating: Promise<void> | null = null;
  private snapshotCache: ResticSnapshotCache | null = null;
  /** The second of the last snapshot this service made per host: the next one of that host starts after it. */
  private readonly lastSnapshotSecond = new Map<string, number>();

  constructor(
    private readonly runner: ProcessRunner,
    private readonly config: AppConfig,
    private readonly attributes: FsAttributesService,
    private readonly fence: ManifestFence,
  ) {}

  refuseLevel(level: BackupLevel): string | undefined {
    return level === 'differential'
      ? 'restic has no differential level: every restic snapshot is complete and deduplicated (ask for full).'
      : undefined;
  }

  async status(): Promise<ProviderStatus> {
    const version = await this.restic(['version'], { timeoutMs: 15_000, captureStdout: true });
    if (version.exitCode !== 0) {
      return { available: false, version: null, reason: `restic version failed: ${version.stderrTail}`, warnings: [] };
    }
    const found = /restic (\d+\.\d+\.\d+)/.exec(version.stdout)?.[1] ?? version.stdout.trim();
    const passwordProblem = await this.passwordProblem();
    if (passwordProblem) return { available: false, version: found, reason: passwordProblem, warnings: [] };
    const probe = await this.restic(['cat', 'config', '--no-lock'], { timeoutMs: QUICK_COMMAND_MS });
    if (probe.exitCode !== 0) {
      const error = classifyError(probe.stderrTail);
      if (error.kind === 'no-repository') {
        const missing = this.missingParent();
        if (missing) return { available: false, version: found, reason: missing, warnings: [] };
        return {
          available: true,
          version: found,
          warnings: [`The restic repository ${this.repository} does not exist yet: the first backup creates it.`],
        };
      }
      return { available: false, version: found, reason: this.describe(error), warnings: [] };
    }
    return { available: true, version: found, warnings: await this.lockWarnings() };
  }

  async backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome> {
    const { subject } = request;
    const notes: string[] = [];
    if (request.level === 'incremental') {
      notes.push(
        'restic makes complete snapshots: this incremental was made as a full one, deduplicated against earlier snapshots (only new data was stored)',
      );
      context.log('restic has no incremental level: making a deduplicated full snapshot');
    }
    context.progress({ phase: 'prepare', percent: null, bytes: null });
    const passwordProblem = await this.passwordProblem();
    if (passwordProblem) throw new AppError(ErrorCode.ProviderUnavailable, passwordProblem);

    context.progress({ phase: 'capture-attributes' });
    const manifestDir = this.manifestDir(subject);
    await mkdir(manifestDir, { recursive: true, mode: 0o700 });
    const capture = async (): Promise<{ warnings: string[] }> => {
      const captured = await this.attributes.capture({
        root: subject.root,
        paths: subject.include.map((path) => relative(subject.root, path)),
        exclude: subject.exclude.map((path) => relative(subject.root, path)),
        manifestFile: join(manifestDir, ATTRIBUTES_FILE),
        // restic keeps files' and directories' xattrs and ACLs itself; only a symlink's own are lost without this.
        symlinksOnly: true,
        signal: context.signal,
      });
      context.log(`captured extended attributes of ${captured.entries} symlink(s)`);
      captured.warnings.forEach((warning) => context.log(`warning: ${warning}`));
      context.progress({ phase: 'backup' });
      return captured;
    };

    // The service names the snapshot's time (whole seconds, as --time takes it), so the listing after the backup can
    // be answered without asking restic again (restic-snapshot-cache.ts); never the second of the host's last one.
    let second = 0;
    const backUp = async (signal: AbortSignal): Promise<ResticBackupRun> => {
      second = await this.nextSnapshotSecond(subject.key, context);
      const args = [
        'backup',
        '--json',
        '--time',
        resticTimeOf(second),
        '--host',
        subject.key,
        '--tag',
        RESTIC_TAG,
        ...subject.exclude.flatMap((path) => ['--exclude', literalPattern(path)]),
        '--',
        ...subject.include,
        manifestDir,
      ];
      const attempt = async (): Promise<ResticBackupRun> => {
        let summary: SummaryOf = null;
        const errors: string[] = [];
        const result = await this.restic(args, {
          context,
          signal,
          onStdout: (line) => {
            const event = parseBackupLine(line);
            if (event.kind === 'status') context.progress({ percent: event.percent, bytes: event.bytesDone });
            if (event.kind === 'summary') summary = event;
            if (event.kind === 'error') errors.push(event.message);
          },
        });
        return { result, summary, errors };
      };
      let run = await attempt();
      if (this.failedForNoRepository(run.result)) {
        // No repository yet (the first backup), or gone (a disk swapped): create it where allowed and try once more.
        // Asking first would cost every backup a command, and each restic command pays the key derivation (~0.5 s).
        this.creating ??= this.create(context).finally(() => (this.creating = null));
        await this.creating;
        run = await attempt();
      }
      if (this.failedOnLock(run.result)) {
        // A lock a killed run left behind: `restic unlock` removes only stale ones (a dead pid here, or 30 minutes old).
        await this.unlockStale(context);
        run = await attempt();
      }
      return run;
    };
    // restic starts (and derives its key) while the symlinks are captured; the fence holds it at the manifest's
    // directory until the manifest is complete.
    const { captured, engine: run } = await this.fence.besideEngine({
      directory: manifestDir,
      capture,
      engine: backUp,
      engineName: 'restic',
      signal: context.signal,
      log: (line) => context.log(line),
      trackPid: (pid) => context.trackPid(pid),
    });
    const { result, errors } = run;
    const summary: SummaryOf = run.summary;
    if (result.cancelled) this.cancelled('backup');
    const warnings = [...captured.warnings, ...errors];
    if (result.exitCode === EXIT_INCOMPLETE && summary) {
      warnings.push('restic could not read some files: the snapshot was made without them (see the job log)');
    } else if (result.exitCode !== 0) {
      this.fail(result, 'backup');
    }
    if (!summary)
      throw new JobFailure('restic-backup-failed', 'restic backup printed no summary: no snapshot was made.');
    const made = summary;
    this.lastSnapshotSecond.set(subject.key, second);
    const fullId = await this.snapshots()?.rememberMade(made.snapshotId, {
      time: new Date(second * 1000).toISOString(),
      hostname: subject.key,
      tags: [RESTIC_TAG],
      paths: [...subject.include, manifestDir],
    });
    context.log(
      `restic snapshot ${made.snapshotId}: ${made.filesProcessed} file(s), ${made.bytesProcessed} byte(s) read, ${made.dataAdded} byte(s) added to the repository`,
    );
    context.progress({ percent: 100, bytes: made.bytesProcessed });
    return {
      level: 'full',
      restorePointId: fullId ? pointIdOf(fullId.slice(0, POINT_ID_DIGITS)) : null,
      bytes: made.dataAdded,
      files: made.filesProcessed,
      warnings,
      notes,
    };
  }

  async scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const cache = this.snapshots();
    const known = await cache?.lookup(subject.key, RESTIC_TAG);
    if (known) return this.pointsOf(known);
    // --no-lock: listing must work while a backup (or a prune) holds the repository. A local repository is listed
    // whole, so that the cache learns every snapshot file's owner at once.
    const filter = cache ? [] : ['--host', subject.key, '--tag', RESTIC_TAG];
    const result = await this.restic(['snapshots', '--json', '--no-lock', ...filter], {
      context,
      captureStdout: true,
      timeoutMs: QUICK_COMMAND_MS * 2,
    });
    if (result.exitCode !== 0) {
      const error = classifyError(result.stderrTail);
      if (error.kind === 'no-repository') return [];
      this.fail(result, 'snapshots');
    }
    const listed = parseSnapshots(result.stdout);
    cache?.remember(listed);
    return this.pointsOf(
      listed.filter((snapshot) => snapshot.hostname === subject.key && snapshot.tags.includes(RESTIC_TAG)),
    );
  }

  private pointsOf(snapshots: ResticSnapshot[]): RestorePoint[] {
    return toRestorePoints(snapshots.map((snapshot) => ({ ...snapshot, id: snapshot.id.slice(0, POINT_ID_DIGITS) })));
  }

  /** The cache of a local repository's snapshots; none for a remote one (its listing costs a request anyway). */
  private snapshots(): ResticSnapshotCache | null {
    const local = this.localRepository();
    if (!local) return null;
    this.snapshotCache ??= new ResticSnapshotCache(join(local, 'snapshots'));
    return this.snapshotCache;
  }

  /** Now's second, or if the host's last snapshot was made in it, the next one (waited for). */
  private async nextSnapshotSecond(host: string, context: JobContext): Promise<number> {
    const last = this.lastSnapshotSecond.get(host) ?? -1;
    const now = Math.floor(Date.now() / 1000);
    if (now > last) return now;
    const waitMs = (last + 1) * 1000 - Date.now();
    context.log(
      `waiting ${waitMs} ms so that this snapshot's time differs from the last one's (${resticTimeOf(last)})`,
    );
    await sleepUnlessAborted(waitMs, context.signal);
    return last + 1;
  }

  async restore(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome> {
    const { subject, point, paths, destination } = request;
    const snapshot = snapshotIdOf(point.id);
    if (!snapshot) throw new JobFailure('restic-invalid-restore-point', `${point.id} is not a restic restore point.`);
    const workArea = restoreWorkArea(destination);
    await rm(workArea, { recursive: true, force: true });
    await mkdir(workArea, { recursive: true, mode: 0o700 });
    const manifestFile = join(this.manifestDir(subject), ATTRIBUTES_FILE);
    // A default ACL above the restore would be inherited by the files restic creates before it sets their own.
    await this.attributes.prepareRestoreDestination(destination, context.signal);
    await this.attributes.prepareRestoreDestination(workArea, context.signal);
    const includes = paths.length
      ? [...paths.map((path) => join(subject.root, safeRelative(path))), manifestFile].flatMap((path) => [
          '--include',
          literalPattern(path),
        ])
      : [];
    context.progress({ phase: 'restore', percent: null });
    const run = () => this.restic(['restore', snapshot, '--target', workArea, ...includes], { context });
    let result = await run();
    if (this.failedOnLock(result)) {
      await this.unlockStale(context);
      result = await run();
    }
    if (result.cancelled) this.cancelled('restore');
    if (result.exitCode !== 0) this.fail(result, 'restore');

    context.progress({ phase: 'move', percent: 90 });
    const restoredRoot = join(workArea, subject.root);
    if (!existsSync(restoredRoot)) {
      throw new JobFailure('restic-restore-empty', `restic restored nothing under ${subject.root} from ${point.id}.`);
    }
    const moved = paths.length ? paths.map(safeRelative) : await readdir(restoredRoot);
    let found = 0;
    for (const path of moved) {
      if (!existsSync(join(restoredRoot, path))) continue;
      await mkdir(dirname(join(destination, path)), { recursive: true });
      await rename(join(restoredRoot, path), join(destination, path));
      found++;
    }
    if (paths.length && found === 0) {
      throw new JobFailure('restic-restore-empty', `${point.id} holds none of ${paths.join(', ')}.`);
    }

    context.progress({ phase: 'reapply-attributes' });
    const warnings: string[] = [];
    const manifest = join(workArea, manifestFile);
    if (existsSync(manifest)) {
      const applied = await this.attributes.apply({
        root: destination,
        manifestFile: manifest,
        onlyPaths: paths.length ? paths : undefined,
        workDir: context.workDir,
        signal: context.signal,
      });
      context.log(`re-applied extended attributes and ACLs to ${applied.applied} file(s)`);
      warnings.push(...applied.warnings);
    } else {
      warnings.push('the snapshot holds no attribute manifest: symlinks got no extended attributes back');
    }
    await rm(workArea, { recursive: true, force: true });
    context.progress({ percent: 100 });
    return { files: null, bytes: null, warnings };
  }

  /** Every entry of a snapshot under the subject's root (`restic ls --json`), for browsing restore points. */
  async listPointFiles(subject: BackupSubject, point: RestorePoint, signal?: AbortSignal): Promise<PointFileEntry[]> {
    const snapshot = snapshotIdOf(point.id);
    if (!snapshot) throw new JobFailure('restic-invalid-restore-point', `${point.id} is not a restic restore point.`);
    const entries: PointFileEntry[] = [];
    const result = await this.restic(['ls', '--json', '--no-lock', snapshot], {
      signal,
      onStdout: (line) => {
        const entry = parseLsLine(line, subject.root);
        if (entry) entries.push(entry);
      },
    });
    if (result.exitCode !== 0) this.fail(result, 'ls');
    const links = entries.filter((entry) => entry.type === 'symlink');
    if (links.length > 0) {
      // restic 0.14's JSON has no link targets; its long listing has them (one more read of the snapshot's trees).
      const lines: string[] = [];
      const long = await this.restic(['ls', '-l', '--no-lock', snapshot], {
        signal,
        onStdout: (line) => {
          if (line.startsWith('L')) lines.push(line);
        },
      });
      if (long.exitCode !== 0) this.fail(long, 'ls');
      const paths = links.map((entry) => pathInRoot(subject.root, entry));
      const targets = symlinkTargets(lines, paths);
      links.forEach((entry, index) => (entry.target = targets.get(paths[index]) ?? null));
    }
    return entries;
  }

  /** Any snapshot can go on its own: none depends on another. */
  readonly pruneUnit = 'point' as const;

  /**
   * `restic forget --prune` of the snapshots the policy drops. It takes the repository's exclusive lock, so it waits
   * for no one: a prune while any backup of the server runs fails as locked (see docs/restic-borg.md).
   */
  async prune(request: PruneRequest, context: JobContext): Promise<PruneOutcome> {
    if (request.remove.length === 0) return { bytesFreed: 0, notes: ['nothing to remove'] };
    if (request.keep.length === 0) throw new JobFailure('prune-refused', 'refusing to remove every restore point');
    const ids = request.remove.map((point) => {
      const id = snapshotIdOf(point.id);
      if (!id) throw new JobFailure('restic-invalid-restore-point', `${point.id} is not a restic restore point.`);
      return id;
    });
    const local = this.localRepository();
    const before = local ? await directoryBytes(local) : null;
    const run = () => this.restic(['forget', '--prune', '--', ...ids], { context });
    let result = await run();
    if (this.failedOnLock(result)) {
      await this.unlockStale(context);
      result = await run();
    }
    if (result.cancelled) this.cancelled('forget --prune');
    if (result.exitCode !== 0) this.fail(result, 'forget');
    const after = local ? await directoryBytes(local) : null;
    return {
      bytesFreed: before !== null && after !== null ? Math.max(0, before - after) : null,
      notes: [`restic forgot ${ids.length} snapshot(s) and pruned the data no other snapshot uses`],
    };
  }

  /** After a crash: removes the locks of restic processes that died with the service (never a live one). */
  async recover(): Promise<void> {
    const result = await this.restic(['unlock'], { timeoutMs: QUICK_COMMAND_MS });
    if (result.exitCode !== 0)
      this.logger.warn(`restic unlock failed: ${this.describe(classifyError(result.stderrTail))}`);
  }

  private localRepository(): string | null {
    const repository = this.repository.replace(/^local:/, '');
    return isAbsolute(repository) ? repository : null;
  }

  private get repository(): string {
    return this.config.restic.repository;
  }

  private manifestDir(subject: BackupSubject): string {
    return this.config.dataPath('restic', 'attributes', subject.key);
  }

  /** Creates the repository on first use; concurrent first backups create it once (see `backup`). */
  private async create(context: JobContext): Promise<void> {
    const missing = this.missingParent();
    if (missing) throw new AppError(ErrorCode.ProviderUnavailable, missing);
    context.log(`creating the restic repository ${this.repository}`);
    const result = await this.restic(['init'], { context, timeoutMs: QUICK_COMMAND_MS });
    if (result.exitCode !== 0 && classifyError(result.stderrTail).kind !== 'already-exists') this.fail(result, 'init');
  }

  /**
   * A local repository whose parent directory is missing is most likely an unmounted backup disk: creating it there
   * would fill the root filesystem with backups nobody expects.
   */
  private missingParent(): string | null {
    const repository = this.repository.replace(/^local:/, '');
    if (!isAbsolute(repository)) return null;
    return existsSync(dirname(repository))
      ? null
      : `The restic repository ${repository} cannot be created: ${dirname(repository)} does not exist (is the backup disk mounted?).`;
  }

  private async passwordProblem(): Promise<string | null> {
    const file = this.config.restic.passwordFile;
    if (!file) return 'RESTIC_PASSWORD_FILE is not set.';
    try {
      await access(file, constants.R_OK);
      return null;
    } catch {
      return `RESTIC_PASSWORD_FILE ${file} cannot be read.`;
    }
  }

  private cancelled(what: string): never {
    throw new JobFailure('cancelled', `restic ${what} was cancelled`);
  }

  /**
   * restic 0.14 removes its lock on SIGINT but not on SIGTERM, which is what a cancel or a timeout sends: the lock of
   * the process just stopped is stale, and `restic unlock` (which removes only stale locks) clears it at once. Every
   * stopped command does this, not only the backup: a cancel can land in the scan or a listing after it.
   */
  private async unlockAfterStop(context: JobContext | undefined): Promise<void> {
    const result = await this.restic(['unlock'], { timeoutMs: QUICK_COMMAND_MS });
    const line =
      result.exitCode === 0
        ? 'removed the lock of the stopped restic run'
        : `restic unlock after the stop failed: ${result.stderrTail}`;
    if (context) context.log(line);
    else if (result.exitCode !== 0) this.logger.warn(line);
  }

  private failedForNoRepository(result: RunResult): boolean {
    return !result.cancelled && result.exitCode !== 0 && classifyError(result.stderrTail).kind === 'no-repository';
  }

  private failedOnLock(result: RunResult): boolean {
    return !result.cancelled && result.exitCode !== 0 && classifyError(result.stderrTail).kind === 'locked';
  }

  private async unlockStale(context: JobContext): Promise<void> {
    context.log('the repository is locked: removing stale locks (restic unlock) and trying once more');
    const result = await this.restic(['unlock'], { context, timeoutMs: QUICK_COMMAND_MS });
    if (result.exitCode !== 0) context.log(`restic unlock failed: ${result.stderrTail}`);
  }

  /** Who holds the repository now, for /v1/providers. */
  private async lockWarnings(): Promise<string[]> {
    const list = await this.restic(['list', 'locks', '--no-lock'], {
      captureStdout: true,
      timeoutMs: QUICK_COMMAND_MS,
    });
    if (list.exitCode !== 0) return [];
    const ids = list.stdout.split('\n').filter((line) => /^[0-9a-f]{64}$/.test(line));
    const warnings: string[] = [];
    for (const id of ids.slice(0, 5)) {
      const shown = await this.restic(['cat', 'lock', id, '--no-lock'], {
        captureStdout: true,
        timeoutMs: QUICK_COMMAND_MS,
      });
      const lock = shown.exitCode === 0 ? parseLock(shown.stdout) : null;
      if (lock?.exclusive) {
        warnings.push(
          `The restic repository is locked exclusively by PID ${lock.pid} on ${lock.hostname} since ${lock.time}: backups and restores fail until it is released.`,
        );
      }
    }
    return warnings;
  }

  private describe(error: ResticError): string {
    switch (error.kind) {
      case 'wrong-password':
        return `The restic repository ${this.repository} does not accept the password in RESTIC_PASSWORD_FILE (${error.message}).`;
      case 'locked':
        return `The restic repository ${this.repository} is locked by another live process: ${error.message}.`;
      case 'unreachable':
        return `The restic repository ${this.repository} cannot be reached: ${error.message}`;
      case 'no-repository':
        return `There is no restic repository at ${this.repository}: ${error.message}`;
      default:
        return `restic failed: ${error.message}`;
    }
  }

  private fail(result: RunResult, what: string): never {
    if (result.cancelled) throw new JobFailure('cancelled', `restic ${what} was cancelled`);
    if (result.timedOut) throw new JobFailure('restic-timeout', `restic ${what} timed out`);
    const error = classifyError(result.stderrTail);
    const message = this.describe(error);
    switch (error.kind) {
      case 'unreachable':
        throw new AppError(ErrorCode.ProviderUnavailable, message);
      case 'wrong-password':
        throw new JobFailure('restic-wrong-password', message);
      case 'locked':
        throw new JobFailure('restic-repository-locked', message);
      default:
        throw new JobFailure(
          `restic-${what.replace(/\s+/g, '-')}-failed`,
          `restic ${what} failed (exit ${result.exitCode}): ${error.message}`,
        );
    }
  }

  /** Runs restic with the repository and password file in its environment, never in argv. */
  private restic(
    args: string[],
    options: {
      context?: JobContext;
      /** Stops restic: for runs outside a job (a listing), or a backup stopped because its capture failed. */
      signal?: AbortSignal;
      timeoutMs?: number;
      captureStdout?: boolean;
      onStdout?: (line: string) => void;
    } = {},
  ): Promise<RunResult> {
    const { context } = options;
    context?.log(`$ ${this.runner.describe('restic', args)}`);
    const home = this.config.dataPath('restic');
    const run = mkdir(home, { recursive: true, mode: 0o700 }).then(() =>
      this.runner.run({
        command: 'restic',
        args,
        env: {
          HOME: home,
          RESTIC_CACHE_DIR: join(home, 'cache'),
          TMPDIR: context?.workDir ?? home,
          RESTIC_REPOSITORY: this.repository,
          // --time is read in the local zone; snapshot times are printed with their offset either way.
          TZ: 'UTC',
          ...(this.config.restic.passwordFile ? { RESTIC_PASSWORD_FILE: this.config.restic.passwordFile } : {}),
        },
        signal: options.signal ?? context?.signal,
        timeoutMs: options.timeoutMs,
        captureStdout: options.captureStdout,
        onSpawn: context ? (pid) => context.trackPid(pid) : undefined,
        onLine: (stream, line) => {
          if (stream === 'stdout') options.onStdout?.(line);
          else if (stream === 'stderr' && line.trim()) context?.log(line);
        },
      }),
    );
    return run.then(async (result) => {
      if ((result.cancelled || result.timedOut) && args[0] !== 'unlock') await this.unlockAfterStop(context);
      return result;
    });
  }
}

/** Bytes a local repository holds (`du -sb` would be the same figure). */
export async function directoryBytes(root: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) total += (await stat(path)).size;
    }
  };
  await walk(root).catch(() => undefined);
  return total;
}

/** A whole second as restic's --time takes it (read as UTC: restic runs with TZ=UTC). */
function resticTimeOf(second: number): string {
  return new Date(second * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

type SummaryOf = Extract<ReturnType<typeof parseBackupLine>, { kind: 'summary' }> | null;
interface ResticBackupRun {
  result: RunResult;
  summary: SummaryOf;
  errors: string[];
}

/** A restore path from the request, checked again here: relative, inside the subject, no `.` or `..`. */
function safeRelative(path: string): string {
  const parts = path.split('/');
  if (
    !path ||
    isAbsolute(path) ||
    parts.some((part) => part === '' || part === '.' || part === '..' || part.includes('\0'))
  ) {
    throw new JobFailure(
      'restic-invalid-path',
      `Restore path ${JSON.stringify(path.slice(0, 200))} must stay inside the site.`,
    );
  }
  return path;
}
