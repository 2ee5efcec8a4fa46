import { Injectable, Logger } from '@nestjs/common';
import { constants, existsSync, readdirSync } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
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
import { directoryBytes } from '../restic/restic.provider';
import type { PointFileEntry } from '../restic/restic-output';
import { BorgListingCache, sameTransaction } from './borg-listing-cache';
import {
  archiveNameFor,
  archiveOf,
  classifyError,
  parseArchiveList,
  parseCreateResult,
  parseLockEntries,
  parseListLine,
  parseLogLine,
  timeOfArchive,
  toRestorePoints,
  type BorgError,
  type BorgLogEvent,
} from './borg-output';

const QUICK_COMMAND_MS = 60_000;
/** Seconds borg waits for a repository lock before it fails: a held lock fails the job fast, not after borg's wait. */
const LOCK_WAIT_SECONDS = 5;
const EXIT_WARNING = 1;

/**
 * borg: one repository per subject (`<BORG_REPOSITORY_ROOT>/<key>`, borg locks a whole repository), created on first
 * use. Every archive is complete and deduplicated (`full`, a chain of one). borg 1.2.4 restores every xattr (symlinks'
 * too) and POSIX ACL (access and default) exactly with `--numeric-ids` (checked on Debian 12), so no manifest is
 * carried. A lock left by a dead borg of this host is removed by borg itself (BORG_HOSTNAME_IS_UNIQUE=yes, the 1.2
 * default); a live one, or another host's, is never broken.
 */
@Injectable()
export class BorgProvider implements BackupProvider {
  readonly name = 'borg' as const;
  readonly levels: readonly BackupLevel[] = ['full', 'incremental'];
  private readonly logger = new Logger(BorgProvider.name);
  private readonly creating = new Map<string, Promise<void>>();
  private readonly listings = new BorgListingCache();

  constructor(
    private readonly runner: ProcessRunner,
    private readonly config: AppConfig,
    private readonly attributes: FsAttributesService,
  ) {}

  refuseLevel(level: BackupLevel): string | undefined {
    return level === 'differential'
      ? 'borg has no differential level: every borg archive is complete and deduplicated (ask for full).'
      : undefined;
  }

  async status(): Promise<ProviderStatus> {
    const version = await this.borg(['--version'], { timeoutMs: 15_000, captureStdout: true });
    if (version.exitCode !== 0) {
      return { available: false, version: null, reason: `borg --version failed: ${version.stderrTail}`, warnings: [] };
    }
    const found = /(\d+\.\d+\.\d+\S*)/.exec(version.stdout)?.[1] ?? version.stdout.trim();
    const warnings = this.config.borg.passphraseFile
      ? []
      : ['BORG_PASSPHRASE_FILE is not set: borg repositories are created unencrypted (--encryption none).'];
    const passphraseProblem = await this.passphraseProblem();
    if (passphraseProblem) return { available: false, version: found, reason: passphraseProblem, warnings };
    const root = this.config.borg.repositoryRoot;
    if (!this.isLocal()) {
      // A repository that does not exist answers "does not exist" from a reachable server.
      const events: BorgLogEvent[] = [];
      const probe = await this.borg(['info', '--log-json', '--json', '--bypass-lock', this.repositoryOf('.probe')], {
        timeoutMs: QUICK_COMMAND_MS,
        captureStdout: true,
        events,
      });
      const error = probe.exitCode === 0 ? null : classifyError(events);
      if (error && error.kind !== 'no-repository') {
        return { available: false, version: found, reason: this.describe(error, '.probe'), warnings };
      }
      return { available: true, version: found, warnings };
    }
    if (!existsSync(root) && !existsSync(dirname(root))) {
      return { available: false, version: found, reason: this.missingRoot(), warnings };
    }
    // The most recently used repository tells whether the passphrase is right; locked ones are named.
    const repositories = await this.localRepositories();
    for (const key of repositories) {
      const holders = await this.lockHolders(key);
      if (holders.length) {
        warnings.push(
          `The borg repository of ${key} is locked by ${holders.map((h) => `PID ${h.pid} on ${h.host}`).join(', ')}: its backups and restores fail until it is released.`,
        );
      }
    }
    if (repositories.length > 0) {
      const events: BorgLogEvent[] = [];
      const probe = await this.borg(
        ['info', '--log-json', '--json', '--bypass-lock', this.repositoryOf(repositories[0])],
        {
          timeoutMs: QUICK_COMMAND_MS,
          captureStdout: true,
          events,
        },
      );
      if (probe.exitCode !== 0) {
        const error = classifyError(events);
        if (error.kind === 'wrong-passphrase' || error.kind === 'unreachable') {
          return { available: false, version: found, reason: this.describe(error, repositories[0]), warnings };
        }
      }
    }
    return { available: true, version: found, warnings };
  }

  async backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome> {
    const { subject } = request;
    const notes: string[] = [];
    if (request.level === 'incremental') {
      notes.push(
        'borg makes complete archives: this incremental was made as a full one, deduplicated against earlier archives (only new data was stored)',
      );
      context.log('borg has no incremental level: making a deduplicated full archive');
    }
    context.progress({ phase: 'prepare', percent: null, bytes: null });
    await this.ensureRepository(subject, context);

    context.progress({ phase: 'backup' });
    const expected = await this.previousSize(subject);
    const archive = archiveNameFor(new Date());
    const repository = this.repositoryOf(subject.key);
    const before = this.isLocal() ? await this.listings.transactionOf(repository) : null;
    const events: BorgLogEvent[] = [];
    const result = await this.borg(
      [
        'create',
        '--log-json',
        '--progress',
        '--json',
        '--numeric-ids',
        '--lock-wait',
        String(LOCK_WAIT_SECONDS),
        '--compression',
        'lz4',
        ...subject.exclude.flatMap((path) => ['--exclude', `pp:${path}`]),
        `${repository}::${archive}`,
        ...subject.include,
      ],
      {
        context,
        events,
        captureStdout: true,
        onEvent: (event) => {
          if (event.kind === 'progress') {
            const percent = expected ? Math.min(99, Math.round((event.originalBytes / expected) * 100)) : null;
            context.progress({ bytes: event.originalBytes, percent });
          }
        },
      },
    );
    if (result.exitCode !== 0 && result.exitCode !== EXIT_WARNING) this.fail(result, events, subject.key, 'create');
    const stats = parseCreateResult(result.stdout);
    if (!stats)
      throw new JobFailure('borg-create-failed', 'borg create printed no result: the archive may be missing.');
    const warnings = result.exitCode === EXIT_WARNING ? warningsOf(events) : [];
    await this.rememberSize(subject, stats.originalBytes);
    const time = timeOfArchive(stats.name);
    if (this.isLocal() && time) {
      await this.listings.added(repository, before, await this.listings.transactionOf(repository), {
        name: stats.name,
        time,
      });
    }
    context.log(
      `borg archive ${stats.name}: ${stats.files} file(s), ${stats.originalBytes} byte(s) read, ${stats.deduplicatedBytes} byte(s) new in the repository`,
    );
    context.progress({ percent: 100, bytes: stats.originalBytes });
    return {
      level: 'full',
      restorePointId: `borg-${stats.name}`,
      bytes: stats.deduplicatedBytes,
      files: stats.files,
      warnings,
      notes,
    };
  }

  async scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const repository = this.repositoryOf(subject.key);
    if (this.isLocal() && !existsSync(join(repository, 'config'))) return [];
    const before = this.isLocal() ? await this.listings.transactionOf(repository) : null;
    const known = this.listings.lookup(repository, before);
    if (known) return toRestorePoints(known);
    const events: BorgLogEvent[] = [];
    // --bypass-lock: a read-only listing must not wait for (or fail on) the site's running backup.
    const result = await this.borg(['list', '--log-json', '--json', '--bypass-lock', repository], {
      context,
      events,
      captureStdout: true,
      timeoutMs: QUICK_COMMAND_MS * 2,
    });
    if (result.exitCode !== 0) {
      if (classifyError(events).kind === 'no-repository') return [];
      this.fail(result, events, subject.key, 'list');
    }
    const archives = parseArchiveList(result.stdout);
    // Remembered only when no commit happened while borg read it.
    if (before && sameTransaction(before, await this.listings.transactionOf(repository))) {
      this.listings.remember(repository, before, archives);
    }
    return toRestorePoints(archives);
  }

  async restore(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome> {
    const { subject, point, paths, destination } = request;
    const archive = archiveOf(point.id);
    if (!archive) throw new JobFailure('borg-invalid-restore-point', `${point.id} is not a borg restore point.`);
    const workArea = restoreWorkArea(destination);
    await rm(workArea, { recursive: true, force: true });
    await mkdir(workArea, { recursive: true, mode: 0o700 });
    // A default ACL above the restore would be inherited by the files borg creates before it sets their own.
    await this.attributes.prepareRestoreDestination(destination, context.signal);
    await this.attributes.prepareRestoreDestination(workArea, context.signal);
    const inArchive = (path: string): string => join(subject.root, path).replace(/^\/+/, '');
    const selection = paths.map((path) => `pp:${inArchive(safeRelative(path))}`);
    context.progress({ phase: 'restore', percent: null });
    const events: BorgLogEvent[] = [];
    // borg extracts into its working directory: the work area this job created, never a tenant's directory.
    const result = await this.borg(
      [
        'extract',
        '--log-json',
        '--numeric-ids',
        '--lock-wait',
        String(LOCK_WAIT_SECONDS),
        `${this.repositoryOf(subject.key)}::${archive}`,
        ...selection,
      ],
      { context, events, cwd: workArea },
    );
    const warnings: string[] = [];
    if (result.exitCode === EXIT_WARNING) warnings.push(...warningsOf(events));
    else if (result.exitCode !== 0) this.fail(result, events, subject.key, 'extract');

    context.progress({ phase: 'move', percent: 90 });
    const restoredRoot = join(workArea, subject.root);
    if (!existsSync(restoredRoot)) {
      throw new JobFailure('borg-restore-empty', `borg restored nothing under ${subject.root} from ${point.id}.`);
    }
    const moved = paths.length ? paths : await readdir(restoredRoot);
    let found = 0;
    for (const path of moved) {
      if (!existsSync(join(restoredRoot, path))) continue;
      await mkdir(dirname(join(destination, path)), { recursive: true });
      await rename(join(restoredRoot, path), join(destination, path));
      found++;
    }
    if (paths.length && found === 0) {
      throw new JobFailure('borg-restore-empty', `${point.id} holds none of ${paths.join(', ')}.`);
    }
    await rm(workArea, { recursive: true, force: true });
    context.progress({ percent: 100 });
    return { files: null, bytes: null, warnings };
  }

  /** Every entry of an archive under the subject's root (`borg list --json-lines`), for browsing restore points. */
  async listPointFiles(subject: BackupSubject, point: RestorePoint, signal?: AbortSignal): Promise<PointFileEntry[]> {
    const archive = archiveOf(point.id);
    if (!archive) throw new JobFailure('borg-invalid-restore-point', `${point.id} is not a borg restore point.`);
    const entries: PointFileEntry[] = [];
    const events: BorgLogEvent[] = [];
    const result = await this.borg(
      ['list', '--json-lines', '--log-json', '--bypass-lock', `${this.repositoryOf(subject.key)}::${archive}`],
      {
        signal,
        events,
        onStdout: (line) => {
          const entry = parseListLine(line, subject.root);
          if (entry) entries.push(entry);
        },
      },
    );
    if (result.exitCode !== 0) this.fail(result, events, subject.key, 'list');
    return entries;
  }

  /** Any archive can go on its own: none depends on another. */
  readonly pruneUnit = 'point' as const;

  /** `borg delete` of the archives the policy drops, then `borg compact` to free their space. */
  async prune(request: PruneRequest, context: JobContext): Promise<PruneOutcome> {
    if (request.remove.length === 0) return { bytesFreed: 0, notes: ['nothing to remove'] };
    if (request.keep.length === 0) throw new JobFailure('prune-refused', 'refusing to remove every restore point');
    const archives = request.remove.map((point) => {
      const archive = archiveOf(point.id);
      if (!archive) throw new JobFailure('borg-invalid-restore-point', `${point.id} is not a borg restore point.`);
      return archive;
    });
    const repository = this.repositoryOf(request.subject.key);
    const before = this.isLocal() ? await directoryBytes(repository) : null;
    const lock = ['--lock-wait', String(LOCK_WAIT_SECONDS)];
    for (const [what, args] of [
      ['delete', ['delete', '--log-json', ...lock, repository, ...archives]],
      ['compact', ['compact', '--log-json', ...lock, repository]],
    ] as const) {
      const events: BorgLogEvent[] = [];
      const result = await this.borg([...args], { context, events });
      if (result.exitCode !== 0 && result.exitCode !== EXIT_WARNING)
        this.fail(result, events, request.subject.key, what);
    }
    const after = this.isLocal() ? await directoryBytes(repository) : null;
    return {
      bytesFreed: before !== null && after !== null ? Math.max(0, before - after) : null,
      notes: [`borg deleted ${archives.length} archive(s) and compacted the repository`],
    };
  }

  /**
   * After a crash: borg removes a dead local process's lock itself at its next run; this only logs who holds the
   * subject's repository. It never breaks a lock (`borg break-lock` is unconditional): one whose holder is alive, or
   * on another host, may be in use.
   */
  async recover(subject: BackupSubject): Promise<void> {
    if (!this.isLocal()) return;
    for (const holder of await this.lockHolders(subject.key)) {
      const ours = holder.host.split('@')[0] === hostname();
      const alive = ours ? isAlive(holder.pid) : true;
      this.logger.warn(
        `the borg repository of ${subject.key} is locked by PID ${holder.pid} on ${holder.host}` +
          (ours && !alive ? ': the process is gone, borg removes the lock at the next run' : ''),
      );
    }
  }

  private isLocal(): boolean {
    return isAbsolute(this.config.borg.repositoryRoot);
  }

  private repositoryOf(key: string): string {
    return `${this.config.borg.repositoryRoot}/${key}`;
  }

  private missingRoot(): string {
    const root = this.config.borg.repositoryRoot;
    return `BORG_REPOSITORY_ROOT ${root} cannot be created: ${dirname(root)} does not exist (is the backup disk mounted?).`;
  }

  private async localRepositories(): Promise<string[]> {
    const root = this.config.borg.repositoryRoot;
    const names = await readdir(root).catch(() => [] as string[]);
    return names.filter((name) => existsSync(join(root, name, 'config'))).sort();
  }

  private async lockHolders(key: string): Promise<Array<{ host: string; pid: number }>> {
    const entries = await readdir(join(this.repositoryOf(key), 'lock.exclusive')).catch(() => [] as string[]);
    return parseLockEntries(entries);
  }

  /** Creates the subject's repository on first use (once, even for concurrent callers). */
  private async ensureRepository(subject: BackupSubject, context: JobContext): Promise<void> {
    const passphraseProblem = await this.passphraseProblem();
    if (passphraseProblem) throw new AppError(ErrorCode.ProviderUnavailable, passphraseProblem);
    const repository = this.repositoryOf(subject.key);
    if (this.isLocal()) {
      if (existsSync(join(repository, 'config'))) return;
      const root = this.config.borg.repositoryRoot;
      if (!existsSync(root)) {
        // Only the root itself is made: a missing parent is more likely an unmounted disk than a wish for new folders.
        if (!existsSync(dirname(root))) throw new AppError(ErrorCode.ProviderUnavailable, this.missingRoot());
        await mkdir(root, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        });
      }
    } else {
      const events: BorgLogEvent[] = [];
      const probe = await this.borg(['info', '--log-json', '--json', '--bypass-lock', repository], {
        context,
        events,
        captureStdout: true,
        timeoutMs: QUICK_COMMAND_MS,
      });
      if (probe.exitCode === 0) return;
      if (classifyError(events).kind !== 'no-repository') this.fail(probe, events, subject.key, 'info');
    }
    let creating = this.creating.get(repository);
    if (!creating) {
      creating = this.create(repository, context).finally(() => this.creating.delete(repository));
      this.creating.set(repository, creating);
    }
    await creating;
  }

  private async create(repository: string, context: JobContext): Promise<void> {
    context.log(`creating the borg repository ${repository}`);
    const events: BorgLogEvent[] = [];
    const encryption = this.config.borg.passphraseFile ? 'repokey-blake2' : 'none';
    const result = await this.borg(['init', '--log-json', '--encryption', encryption, repository], {
      context,
      events,
      timeoutMs: QUICK_COMMAND_MS,
    });
    if (result.exitCode !== 0 && !events.some((e) => e.kind === 'log' && e.msgid === 'Repository.AlreadyExists')) {
      this.fail(result, events, repository, 'init');
    }
  }

  private async passphraseProblem(): Promise<string | null> {
    const file = this.config.borg.passphraseFile;
    if (!file) return null;
    try {
      await access(file, constants.R_OK);
      return null;
    } catch {
      return `BORG_PASSPHRASE_FILE ${file} cannot be read.`;
    }
  }

  private async previousSize(subject: BackupSubject): Promise<number | null> {
    try {
      const state = JSON.parse(await readFile(this.statePath(subject), 'utf8')) as { originalBytes?: unknown };
      return typeof state.originalBytes === 'number' && state.originalBytes > 0 ? state.originalBytes : null;
    } catch {
      return null;
    }
  }

  private async rememberSize(subject: BackupSubject, originalBytes: number): Promise<void> {
    await mkdir(dirname(this.statePath(subject)), { recursive: true, mode: 0o700 });
    await writeFile(this.statePath(subject), JSON.stringify({ originalBytes }));
  }

  private statePath(subject: BackupSubject): string {
    return this.config.dataPath('borg', 'state', `${subject.key}.json`);
  }

  private describe(error: BorgError, key: string): string {
    const repository = this.repositoryOf(key);
    switch (error.kind) {
      case 'wrong-passphrase':
        return `The borg repository ${repository} does not accept the passphrase in BORG_PASSPHRASE_FILE (${error.message})`;
      case 'locked':
        return `The borg repository ${repository} is locked by another process (${error.message})`;
      case 'unreachable':
        return `The borg repository ${repository} cannot be reached: ${error.message}`;
      case 'no-repository':
        return `There is no borg repository at ${repository}: ${error.message}`;
      default:
        return `borg failed: ${error.message}`;
    }
  }

  private fail(result: RunResult, events: BorgLogEvent[], key: string, what: string): never {
    if (result.cancelled) throw new JobFailure('cancelled', `borg ${what} was cancelled`);
    if (result.timedOut) throw new JobFailure('borg-timeout', `borg ${what} timed out`);
    const error = classifyError(events);
    let message = this.describe(error, key);
    switch (error.kind) {
      case 'unreachable':
        throw new AppError(ErrorCode.ProviderUnavailable, message);
      case 'wrong-passphrase':
        throw new JobFailure('borg-wrong-passphrase', message);
      case 'locked': {
        if (this.isLocal()) message += lockHoldersOf(this.repositoryOf(key));
        throw new JobFailure('borg-repository-locked', message);
      }
      default:
        throw new JobFailure(`borg-${what}-failed`, `borg ${what} failed (exit ${result.exitCode}): ${error.message}`);
    }
  }

  /** Runs borg with its passphrase reached through BORG_PASSCOMMAND (a file read by cat), never argv or logs. */
  private async borg(
    args: string[],
    options: {
      context?: JobContext;
      /** For runs outside a job (a listing): stops borg when the caller goes away. */
      signal?: AbortSignal;
      timeoutMs?: number;
      captureStdout?: boolean;
      cwd?: string;
      events?: BorgLogEvent[];
      onEvent?: (event: BorgLogEvent) => void;
      onStdout?: (line: string) => void;
    } = {},
  ): Promise<RunResult> {
    const { context } = options;
    context?.log(`$ ${this.runner.describe('borg', args)}`);
    const base = this.config.dataPath('borg');
    await mkdir(base, { recursive: true, mode: 0o700 });
    const passphraseFile = this.config.borg.passphraseFile;
    return this.runner.run({
      command: 'borg',
      args,
      cwd: options.cwd,
      env: {
        HOME: base,
        BORG_BASE_DIR: base,
        TMPDIR: context?.workDir ?? base,
        // borg prints naive local times; UTC makes them what the API says.
        TZ: 'UTC',
        BORG_HOSTNAME_IS_UNIQUE: 'yes',
        BORG_RSH: 'ssh -o BatchMode=yes -o ConnectTimeout=10',
        BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
        BORG_DISPLAY_PASSPHRASE: 'no',
        ...(passphraseFile ? { BORG_PASSCOMMAND: `cat -- ${shellQuote(passphraseFile)}` } : { BORG_PASSPHRASE: '' }),
      },
      signal: context?.signal ?? options.signal,
      timeoutMs: options.timeoutMs,
      captureStdout: options.captureStdout,
      onSpawn: context ? (pid) => context.trackPid(pid) : undefined,
      onLine: (stream, line) => {
        if (stream === 'stdout') options.onStdout?.(line);
        if (stream !== 'stderr') return;
        const event = parseLogLine(line);
        if (event.kind === 'other') return;
        options.events?.push(event);
        options.onEvent?.(event);
        if (event.kind === 'log') context?.log(`borg ${event.level.toLowerCase()}: ${event.message}`);
      },
    });
  }
}

/** Who held a local repository's lock when borg gave up waiting for it. */
function lockHoldersOf(repository: string): string {
  try {
    const names = readdirSync(join(repository, 'lock.exclusive'));
    const holders = parseLockEntries(names);
    return holders.length ? `; held by ${holders.map((h) => `PID ${h.pid} on ${h.host}`).join(', ')}` : '';
  } catch {
    return '';
  }
}

function warningsOf(events: BorgLogEvent[]): string[] {
  return events.flatMap((event) => (event.kind === 'log' && event.level === 'WARNING' ? [event.message] : []));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** borg splits BORG_PASSCOMMAND with shlex: quote the path as a POSIX shell would. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
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
      'borg-invalid-path',
      `Restore path ${JSON.stringify(path.slice(0, 200))} must stay inside the site.`,
    );
  }
  return path;
}
