import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import {
  type BackupLevel,
  BackupOutcome,
  BackupProvider,
  BackupRequest,
  BackupSubject,
  JobContext,
  ProviderStatus,
  RestoreOutcome,
  RestorePoint,
  RestoreRequest,
  restoreWorkArea,
} from '../backup-provider';
import { FsAttributesService } from '../fs-attributes/fs-attributes.service';
import { partialSetsIn } from './duplicity-names';
import {
  LogFdParser,
  duplicityErrorFor,
  findFatalError,
  interpretRecord,
  parseCollectionStatus,
  toRestorePoints,
  type DuplicityRecord,
} from './duplicity-output';

const ATTRIBUTES_FILE = 'attributes.dump';
const STATUS_TIMEOUT_MS = 120_000;

/**
 * Duplicity backups of a subject's paths, one chain per subject at `<DUPLICITY_TARGET>/<key>`. Duplicity drops xattrs
 * and ACLs, so each backup also carries a manifest of them that a restore re-applies.
 */
@Injectable()
export class DuplicityProvider implements BackupProvider, OnApplicationShutdown {
  readonly name = 'duplicity' as const;
  readonly levels: readonly BackupLevel[] = ['full', 'incremental'];
  private readonly logger = new Logger(DuplicityProvider.name);

  constructor(
    private readonly runner: ProcessRunner,
    private readonly config: AppConfig,
    private readonly attributes: FsAttributesService,
  ) {}

  refuseLevel(level: BackupLevel): string | undefined {
    return level === 'differential'
      ? 'duplicity has no differential level: it makes full and incremental backups only (use the bacula provider for differentials).'
      : undefined;
  }

  async status(): Promise<ProviderStatus> {
    const result = await this.runner.run({
      command: 'duplicity',
      args: ['--version'],
      captureStdout: true,
      timeoutMs: 15_000,
    });
    const warnings = this.config.duplicity.passphraseFile
      ? []
      : ['DUPLICITY_PASSPHRASE_FILE is not set: backups are stored unencrypted (--no-encryption).'];
    if (result.exitCode !== 0) {
      return {
        available: false,
        version: null,
        reason: `duplicity --version failed: ${result.stderrTail || `exit ${result.exitCode}`}`,
        warnings,
      };
    }
    return { available: true, version: /(\d+\.\d+[\w.]*)/.exec(result.stdout)?.[1] ?? result.stdout.trim(), warnings };
  }

  async backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome> {
    const { subject } = request;
    const notes: string[] = [];
    let level = request.level;
    if (level === 'incremental') {
      const points = await this.scanRestorePoints(subject, context);
      if (!points.some((point) => point.state === 'complete')) {
        level = 'full';
        notes.push('no full backup existed for this site, so this backup is a full one');
        context.log('no complete chain at the target: making a full backup instead of an incremental');
      }
    }

    context.progress({ phase: 'capture-attributes', percent: null, bytes: null });
    const manifestDir = this.manifestDir(subject);
    await mkdir(manifestDir, { recursive: true, mode: 0o700 });
    const captured = await this.attributes.capture({
      root: subject.root,
      paths: subject.include.map((path) => relative(subject.root, path)),
      exclude: subject.exclude.map((path) => relative(subject.root, path)),
      manifestFile: join(manifestDir, ATTRIBUTES_FILE),
      signal: context.signal,
    });
    context.log(`captured extended attributes and ACLs of ${captured.entries} file(s)`);
    captured.warnings.forEach((warning) => context.log(`warning: ${warning}`));

    context.progress({ phase: 'backup' });
    const selection = [
      ...subject.exclude.flatMap((path) => ['--exclude', path]),
      '--include',
      manifestDir,
      ...subject.include.flatMap((path) => ['--include', path]),
      '--exclude',
      '**',
    ];
    let statistics: Record<string, string | number> = {};
    const errors: DuplicityRecord[] = [];
    // The previous backup's source size estimates this one's, so INFO 2 (bytes read so far) gives a percent.
    const expected = await this.previousSourceSize(subject);
    const result = await this.duplicity(
      [level, '--verbosity', 'info', ...(await this.common(subject)), ...selection, '/', this.targetOf(subject)],
      context,
      (record) => {
        const event = interpretRecord(record);
        if (event.kind === 'statistics') statistics = event.values;
        if (event.kind === 'bytes') {
          const percent = expected ? Math.min(99, Math.round((event.bytes / expected) * 100)) : null;
          context.progress({ bytes: event.bytes, percent });
        }
        if (event.kind === 'error') errors.push(record);
      },
    );
    this.assertSucceeded(result, 'backup', errors);
    const sourceSize = numberOr(statistics.SourceFileSize);
    if (sourceSize !== null) await this.rememberSourceSize(subject, sourceSize);
    context.progress({ percent: 100, bytes: sourceSize });
    return {
      level,
      restorePointId: null,
      bytes: numberOr(statistics.TotalDestinationSizeChange ?? statistics.RawDeltaSize),
      files: numberOr(statistics.SourceFiles),
      warnings: captured.warnings,
      notes,
    };
  }

  /**
   * Reads the chains with collection-status. It runs on a throw-away archive dir: every duplicity action takes the
   * archive lock, and a scan must not fail because a backup of the site is running. Sets a killed run left
   * half-written look complete to duplicity; the real archive dir's `.part` manifests mark them incomplete.
   */
  async scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const records: DuplicityRecord[] = [];
    const scratch = await mkdtemp(join(await this.ensureDir('scans'), `${subject.key}-`));
    try {
      const result = await this.duplicity(
        ['collection-status', ...(await this.common(subject, scratch)), this.targetOf(subject)],
        context,
        (record) => records.push(record),
        STATUS_TIMEOUT_MS,
      );
      const status = result.exitCode === 0 ? parseCollectionStatus(records) : null;
      if (!status) {
        const error = duplicityErrorFor(result.exitCode, result.stderrTail, findFatalError(records, result.exitCode));
        // No backups yet at the target is an empty list, not a failure.
        if (error.code === 'duplicity-no-backups') return [];
        throw new JobFailure(error.code, error.message);
      }
      const archive = await readdir(join(this.archiveDir(), subject.key)).catch(() => [] as string[]);
      return toRestorePoints(status, this.name, { partialSets: partialSetsIn(archive) });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  async restore(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome> {
    const { subject, point, paths, destination } = request;
    const time = point.id.replace(/^duplicity-/, '');
    // duplicity writes beside the destination, on its filesystem, so the moves below are renames, never copies.
    const workArea = restoreWorkArea(destination);
    await rm(workArea, { recursive: true, force: true });
    await mkdir(workArea, { recursive: true, mode: 0o700 });
    const scratch = join(workArea, 'tree');
    const rootInArchive = relative('/', subject.root);
    const manifestInArchive = relative('/', this.manifestDir(subject));
    // A default ACL above the restore would be inherited by every restored file; start from clean directories.
    await this.attributes.prepareRestoreDestination(destination, context.signal);
    await this.attributes.prepareRestoreDestination(workArea, context.signal);
    const wanted = paths.length ? [...paths.map((path) => join(rootInArchive, path)), manifestInArchive] : [''];
    context.progress({ phase: 'restore', percent: null });
    for (const [index, inArchive] of wanted.entries()) {
      const dest = inArchive ? join(scratch, inArchive) : scratch;
      await mkdir(dirname(dest), { recursive: true });
      const args = [
        'restore',
        '--time',
        time,
        ...(inArchive ? ['--file-to-restore', inArchive] : []),
        ...(await this.common(subject)),
        this.targetOf(subject),
        dest,
      ];
      const errors: DuplicityRecord[] = [];
      const result = await this.duplicity(['--verbosity', 'info', ...args], context, (record) => {
        const event = interpretRecord(record);
        if (event.kind === 'error') errors.push(record);
        if (event.kind === 'volumes' && event.total > 0) {
          context.progress({ percent: Math.round(((index + event.done / event.total) / wanted.length) * 90) });
        }
      });
      this.assertSucceeded(result, 'restore', errors);
      // duplicity can exit 0 having restored nothing (a missing parent directory); check instead of trusting it.
      if (!existsSync(dest))
        throw new JobFailure('duplicity-restore-empty', `duplicity restored nothing for ${inArchive || 'the backup'}`);
      context.progress({ percent: Math.round(((index + 1) / wanted.length) * 90) });
    }

    const restoredRoot = join(scratch, rootInArchive);
    const moved = paths.length ? paths : await readdir(restoredRoot);
    for (const path of moved) {
      if (!existsSync(join(restoredRoot, path))) continue;
      await mkdir(dirname(join(destination, path)), { recursive: true });
      await rename(join(restoredRoot, path), join(destination, path));
    }

    context.progress({ phase: 'reapply-attributes' });
    const manifest = join(scratch, manifestInArchive, ATTRIBUTES_FILE);
    const warnings: string[] = [];
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
      warnings.push('the backup holds no attribute manifest: extended attributes and ACLs were not restored');
    }
    await rm(workArea, { recursive: true, force: true });
    context.progress({ percent: 100 });
    return { files: null, bytes: null, warnings };
  }

  /**
   * gpg daemonises an agent that holds the passphrase in its environment, in its own session beyond our process
   * groups: stop it with the service.
   */
  async onApplicationShutdown(): Promise<void> {
    if (!this.config.duplicity.passphraseFile) return;
    await this.runner.run({
      command: 'gpgconf',
      args: ['--homedir', this.config.dataPath('duplicity', 'gnupg'), '--kill', 'gpg-agent'],
      timeoutMs: 5000,
    });
  }

  /** Removes the archive lock a killed run left; called only when no run of ours can be alive. */
  async recover(subject: BackupSubject): Promise<void> {
    const lock = join(this.archiveDir(), subject.key, 'lockfile');
    await unlink(lock).then(
      () => this.logger.warn(`removed stale duplicity lock ${lock}`),
      () => undefined,
    );
  }

  private async previousSourceSize(subject: BackupSubject): Promise<number | null> {
    try {
      const state = JSON.parse(await readFile(join(await this.ensureDir('state'), `${subject.key}.json`), 'utf8')) as {
        sourceSize?: unknown;
      };
      return typeof state.sourceSize === 'number' && state.sourceSize > 0 ? state.sourceSize : null;
    } catch {
      return null;
    }
  }

  private async rememberSourceSize(subject: BackupSubject, sourceSize: number): Promise<void> {
    await writeFile(join(await this.ensureDir('state'), `${subject.key}.json`), JSON.stringify({ sourceSize }));
  }

  private targetOf(subject: BackupSubject): string {
    return `${this.config.duplicity.target}/${subject.key}`;
  }

  private archiveDir(): string {
    return this.config.dataPath('duplicity', 'archive');
  }

  private manifestDir(subject: BackupSubject): string {
    return this.config.dataPath('duplicity', 'attributes', subject.key);
  }

  private async ensureDir(name: string): Promise<string> {
    const dir = this.config.dataPath('duplicity', name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private async common(subject: BackupSubject, archiveDir = this.archiveDir()): Promise<string[]> {
    await mkdir(archiveDir, { recursive: true, mode: 0o700 });
    return [
      '--archive-dir',
      archiveDir,
      '--name',
      subject.key,
      '--log-fd',
      '3',
      // Fail within seconds on a dead target, not after duplicity's default 5 × 30 s of retries.
      '--num-retries',
      '2',
      '--backend-retry-delay',
      '3',
      ...(this.config.duplicity.passphraseFile ? [] : ['--no-encryption']),
    ];
  }

  private async duplicity(
    args: string[],
    context: JobContext | undefined,
    onRecord: (record: DuplicityRecord) => void,
    timeoutMs?: number,
  ): Promise<RunResult> {
    const passphrase = this.config.duplicity.passphraseFile
      ? readFileSync(this.config.duplicity.passphraseFile, 'utf8').trim()
      : undefined;
    const gnupgHome = this.config.dataPath('duplicity', 'gnupg');
    await mkdir(gnupgHome, { recursive: true, mode: 0o700 });
    const parser = new LogFdParser();
    const secrets = passphrase ? [passphrase] : [];
    context?.log(`$ ${this.runner.describe('duplicity', args, secrets)}`);
    return this.runner.run({
      command: 'duplicity',
      args,
      env: {
        HOME: this.config.dataPath('duplicity'),
        GNUPGHOME: gnupgHome,
        TMPDIR: context?.workDir ?? this.config.dataPath('duplicity'),
        ...(passphrase ? { PASSPHRASE: passphrase } : {}),
      },
      logFd: true,
      secrets,
      signal: context?.signal,
      timeoutMs,
      onSpawn: (pid) => context?.trackPid(pid),
      onLine: (stream, line) => {
        if (stream === 'log') {
          for (const record of parser.push(line)) {
            onRecord(record);
            const event = interpretRecord(record);
            if (event.kind === 'error' || event.kind === 'warning') context?.log(`${event.kind}: ${event.message}`);
          }
        } else if (stream === 'stderr' && line.trim()) {
          context?.log(line);
        }
      },
    });
  }

  private assertSucceeded(result: RunResult, what: string, errors: DuplicityRecord[]): void {
    if (result.cancelled) throw new JobFailure('cancelled', `duplicity ${what} was cancelled`);
    if (result.timedOut) throw new JobFailure('duplicity-timeout', `duplicity ${what} timed out`);
    if (result.exitCode !== 0) {
      const error = duplicityErrorFor(result.exitCode, result.stderrTail, findFatalError(errors, result.exitCode));
      throw new JobFailure(error.code, error.message);
    }
  }
}

function numberOr(value: string | number | undefined): number | null {
  const number = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(number) ? number : null;
}
