import { Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { ProcessRunner } from '../../common/process/process-runner';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import type {
  BackupLevel,
  BackupOutcome,
  BackupProvider,
  BackupRequest,
  BackupSubject,
  JobContext,
  ProviderStatus,
  RestoreOutcome,
  RestorePoint,
  RestoreRequest,
} from '../backup-provider';
import {
  COMMON_FILE,
  RESTORE_JOB,
  assertConfigPath,
  consoleQuote,
  hasControlCharacter,
  markPattern,
  renderCommonConfig,
  renderSubjectConfig,
  resourcesFor,
  type DirectorSettings,
  type ExpectedFileSet,
} from './bacula-resources';
import { LEVEL_NAME, LEVEL_OF, USABLE_STATUSES, jobIdOf, pointIdOf, restorePointsOf } from './bacula-restore-points';
import { BconsoleClient, probePort } from './bconsole-client';
import {
  isResourceShown,
  markedCount,
  messagesOf,
  parseApiBlocks,
  parseClientJobProgress,
  parseConfigErrors,
  parseDirectorJobState,
  parseEstimate,
  parseGreeting,
  parseJobLog,
  parseJobRecords,
  parseJobSummary,
  parseQueuedJobId,
  parseRestoreSelection,
  parseShownClient,
  parseShownFileSet,
  splitReplies,
  unreachableDaemon,
  type BaculaJobRecord,
  type ClientJobProgress,
  type DirectorJobState,
  type JobLogEntry,
  type ShownDaemon,
} from './bconsole-output';

const POLL_MS = 2000;
const PROGRESS_LOG_MS = 30_000;
/** How long a cancelled job may take to reach status A before the provider stops waiting for it. */
const CANCEL_GRACE_MS = 60_000;
/** Walking a big site (`estimate`) or building a restore tree from the catalog can take minutes. */
const LONG_COMMAND_MS = 30 * 60_000;
const JOB_LOG_LINES = 200;
const FAILED_STATUSES = new Set(['E', 'e', 'f']);
/**
 * A running job the director already shows as fatally failed (`f`) or ended in error (`E`) never recovers, yet the
 * director can take a minute more to wind it down (a daemon killed mid-job: it waits for the other daemon's status).
 * After this long in that state the provider stops waiting and reports the failure.
 */
const FATAL_SETTLE_MS = 5_000;
const FATAL_RUNNING_STATUSES = new Set(['f', 'E']);
const STATUS_NAMES: Record<string, string> = {
  T: 'OK',
  W: 'OK with warnings',
  E: 'error',
  e: 'non-fatal error',
  f: 'fatal error',
  A: 'cancelled',
};

interface FinishedJob {
  record: BaculaJobRecord;
  log: JobLogEntry[];
}

interface Follow {
  kind: 'backup' | 'restore';
  estimateBytes?: number | null;
}

/**
 * Bacula through bconsole: per-subject Job and FileSet resources written to BACULA_INCLUDE_DIR and loaded with
 * `reload`; jobs started with `run`, followed with `wait` and `.status`, judged from the catalog (`llist`) and their job
 * log; restore points and chains read from the catalog; restores through a Restore job of its own. The director may
 * run here or on a backup server: only bconsole talks to it.
 */
@Injectable()
export class BaculaProvider implements BackupProvider {
  readonly name = 'bacula' as const;
  readonly levels: readonly BackupLevel[] = ['full', 'differential', 'incremental'];
  private readonly logger = new Logger(BaculaProvider.name);
  private readonly bconsole: BconsoleClient;

  constructor(
    runner: ProcessRunner,
    private readonly config: AppConfig,
  ) {
    this.bconsole = new BconsoleClient(runner, config);
  }

  private get settings(): DirectorSettings {
    const { client, storage, pool, jobDefaults, compression } = this.config.bacula;
    return { client, storage, pool, jobDefaults, compression };
  }

  async status(): Promise<ProviderStatus> {
    const warnings: string[] = [];
    const probe = await this.bconsole.probeDirector();
    if (!probe.reachable) return { available: false, version: null, reason: `${probe.reason}.`, warnings };
    const { client, storage, pool } = this.config.bacula;
    const commands = [
      'version',
      `show client=${client}`,
      `show storage=${storage}`,
      `show pool=${pool}`,
      `show job=${RESTORE_JOB}`,
    ];
    let text: string;
    try {
      text = await this.bconsole.command(commands);
    } catch (error) {
      return { available: false, version: null, reason: reasonOf(error), warnings };
    }
    const version = parseGreeting(text)?.version ?? null;
    const [, clientReply, storageReply, poolReply, restoreReply] = splitReplies(text, commands);
    const missing = [
      isResourceShown(clientReply, 'Client') ? null : `Client ${client} (BACULA_CLIENT)`,
      isResourceShown(storageReply, 'Storage') ? null : `Storage ${storage} (BACULA_STORAGE)`,
      isResourceShown(poolReply, 'Pool') ? null : `Pool ${pool} (BACULA_POOL)`,
    ].filter((item) => item !== null);
    if (missing.length > 0) {
      return { available: false, version, reason: `The Bacula director has no ${missing.join(', ')}.`, warnings };
    }
    const fd = parseShownClient(clientReply);
    if (fd) {
      const fdProbe = await probePort(fd.address, fd.port);
      if (fdProbe.failure === 'refused') {
        return {
          available: false,
          version,
          reason: `The Bacula file daemon ${client} at ${fd.address}:${fd.port} ${fdProbe.reason}.`,
          warnings,
        };
      }
      if (/MaxJobs=1 /.test(clientReply) && this.config.maxConcurrentJobs > 1) {
        warnings.push(
          `Client ${client} runs one job at a time (Maximum Concurrent Jobs = 1): concurrent backups and restores queue in Bacula.`,
        );
      }
    }
    if (!isResourceShown(restoreReply, 'Job')) {
      warnings.push(
        `The director has not loaded ${join(this.config.bacula.includeDir, COMMON_FILE)} yet: it is written at the first backup or restore; ` +
          `its configuration must include ${this.config.bacula.includeDir} (see docs/bacula.md).`,
      );
    }
    try {
      await mkdir(this.config.bacula.includeDir, { recursive: true, mode: 0o750 });
    } catch (error) {
      return {
        available: false,
        version,
        reason: `BACULA_INCLUDE_DIR cannot be created: ${reasonOf(error)}`,
        warnings,
      };
    }
    return { available: true, version, warnings };
  }

  async backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome> {
    const { subject } = request;
    const names = resourcesFor(subject.key);
    const rendered = renderSubjectConfig(subject, this.settings);
    context.progress({ phase: 'prepare', percent: null, bytes: null });
    await this.bconsole.assertDirectorListening();
    const fd = await this.installResources(context, { subject, text: rendered.text, expected: rendered.expected });
    await this.assertClientListening(fd);

    const level = LEVEL_NAME[request.level];
    context.progress({ phase: 'estimate' });
    const estimate = await this.estimate(names.job, level, context);

    const runLine = `run job=${names.job} level=${level} yes`;
    context.log(`bconsole: ${runLine}`);
    const reply = await this.bconsole.command([runLine], this.commandOptions(context));
    const jobId = parseQueuedJobId(reply);
    if (jobId === null)
      throw new JobFailure('bacula-run-refused', `The director did not queue ${names.job}: ${tail(reply)}`);
    context.log(`Bacula JobId ${jobId} queued (${names.job}, ${level})`);

    const { record, log } = await this.follow(jobId, context, {
      kind: 'backup',
      estimateBytes: estimate?.bytes ?? null,
    });
    const made = LEVEL_OF[record.level] ?? request.level;
    const warnings = this.judge(record, log, context, 'backup');
    const notes: string[] = [];
    if (made !== request.level) {
      const why = log
        .filter((entry) => /No prior|Doing FULL|upgraded|Prior failed/i.test(entry.text))
        .map((entry) => entry.text.trim());
      notes.push(
        `Bacula made a ${made} backup although ${request.level} was asked for${why.length ? `: ${why.join(' ')}` : ''}`,
      );
    }
    context.progress({ phase: 'done', percent: 100, bytes: record.bytes });
    return { level: made, restorePointId: pointIdOf(jobId), bytes: record.bytes, files: record.files, warnings, notes };
  }

  async scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const names = resourcesFor(subject.key);
    await this.bconsole.assertDirectorListening();
    const command = `llist jobname=${names.job}`;
    const text = await this.bconsole.command([command], {
      timeoutMs: Math.max(this.config.bacula.timeoutSeconds * 1000, 120_000),
      signal: context?.signal,
      onSpawn: context ? (pid) => context.trackPid(pid) : undefined,
    });
    return restorePointsOf(parseJobRecords(splitReplies(text, [command])[0]));
  }

  async restore(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome> {
    const { subject, point, paths, destination } = request;
    resourcesFor(subject.key);
    assertConfigPath(subject.root, 'Subject root');
    assertConfigPath(destination, 'Restore destination');
    const jobIds = point.chain.map((id) => {
      const jobId = jobIdOf(id);
      if (jobId === null)
        throw new JobFailure('bacula-invalid-restore-point', `${JSON.stringify(id)} is not a Bacula restore point id.`);
      return jobId;
    });
    if (jobIds.length === 0 || jobIds.at(-1) !== jobIdOf(point.id)) {
      throw new JobFailure('bacula-invalid-restore-point', `The chain of ${point.id} does not end with it.`);
    }
    const absolute = paths.map((path) => absolutePathOf(subject.root, path));

    context.progress({ phase: 'prepare', percent: null, bytes: null });
    await this.bconsole.assertDirectorListening();
    await this.installResources(context, null);

    const staging = join(destination, `.bacula-restore-${randomBytes(6).toString('hex')}`);
    const { client } = this.config.bacula;
    const base =
      `restore jobid=${jobIds.join(',')} client=${client} restoreclient=${client} ` +
      `where=${consoleQuote(staging)} restorejob=${RESTORE_JOB}`;
    const selection = absolute.flatMap((path) => [
      'cd /',
      `cd ${consoleQuote(posix.dirname(path))}`,
      `mark ${markPattern(posix.basename(path))}`,
    ]);
    const options = { ...this.commandOptions(context), timeoutMs: LONG_COMMAND_MS };

    context.progress({ phase: 'select' });
    let expectedFiles: number | null = null;
    if (absolute.length > 0) {
      // The dialogue cannot branch on the director's answers, and a `cd` that fails leaves the previous directory
      // current, where `mark` could pick the wrong file: so first a dry run that only checks every path is there.
      const dry = parseRestoreSelection(await this.bconsole.command([base, ...selection, 'done', 'no'], options));
      const missing = paths.filter((_path, index) => {
        const [, cd, mark] = dry.steps.slice(index * 3, index * 3 + 3);
        const dir = posix.dirname(absolute[index]);
        return !cd?.reply.includes(`cwd is: ${dir === '/' ? '/' : `${dir}/`}`) || markedCount(mark?.reply ?? '') === 0;
      });
      if (dry.steps.length < selection.length) {
        throw new JobFailure('bacula-restore-refused', `The director did not open the file selection for ${point.id}.`);
      }
      if (missing.length > 0) {
        throw new JobFailure(
          'bacula-restore-path-not-found',
          `Not in restore point ${point.id}: ${missing.map((path) => JSON.stringify(path)).join(', ')}.`,
        );
      }
    }
    const lines = absolute.length > 0 ? [`${base} yes`, ...selection, 'done'] : [`${base} all done yes`];
    context.log(`bconsole: ${lines[0]}${absolute.length ? ` (+ ${absolute.length} path(s) marked)` : ''}`);
    const chosen = parseRestoreSelection(await this.bconsole.command(lines, options));
    expectedFiles = chosen.selectedFiles;
    if (chosen.jobId === null) {
      throw new JobFailure(
        'bacula-restore-refused',
        `The director did not queue the restore of ${point.id} (${expectedFiles ?? 'no'} file(s) selected).`,
      );
    }
    context.log(
      `Bacula JobId ${chosen.jobId} queued: restore of ${point.id} (chain ${point.chain.join(', ')}), ${expectedFiles ?? '?'} file(s)`,
    );

    try {
      const { record, log } = await this.follow(chosen.jobId, context, { kind: 'restore' });
      const warnings = this.judge(record, log, context, 'restore');
      context.progress({ phase: 'move' });
      const restoredRoot = join(staging, subject.root);
      if (!existsSync(restoredRoot))
        throw new JobFailure(
          'bacula-restore-empty',
          `Bacula job ${chosen.jobId} restored nothing under ${subject.root}.`,
        );
      for (const entry of await readdir(restoredRoot)) {
        await rename(join(restoredRoot, entry), join(destination, entry));
      }
      context.progress({ phase: 'done', percent: 100, bytes: record.bytes });
      return { files: record.files, bytes: record.bytes, warnings };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Cancels a Bacula job of the subject that a dead run of the service left queued or running. */
  async recover(subject: BackupSubject): Promise<void> {
    const names = resourcesFor(subject.key);
    const text = await this.bconsole.command(['.api 2', '.status dir running']);
    const left = parseApiBlocks(text).filter((block) => block.name === names.job && block.jobid);
    for (const block of left) {
      this.logger.warn(
        `cancelling Bacula JobId ${block.jobid} of ${names.job}, left running by a previous run of the service`,
      );
      await this.bconsole.command([`cancel jobid=${block.jobid} yes`]);
    }
  }

  /**
   * Writes the restore job's file and the subject's, then has the director `reload` when a file changed or it does not
   * show the resources as written (a director started before the files existed, or a reload that failed). `reload`
   * answers nothing when it rejects a file, so the result is checked with `show`, and the director's queued
   * messages explain a rejection.
   */
  private async installResources(
    context: JobContext,
    subject: { subject: BackupSubject; text: string; expected: ExpectedFileSet } | null,
  ): Promise<ShownDaemon | null> {
    const dir = this.config.bacula.includeDir;
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const files: [string, string][] = [[COMMON_FILE, renderCommonConfig(this.settings)]];
    const names = subject ? resourcesFor(subject.subject.key) : null;
    if (subject && names) files.push([names.file, subject.text]);
    let changed = false;
    for (const [file, text] of files) changed = (await writeIfChanged(join(dir, file), text)) || changed;

    const shows = [`show job=${RESTORE_JOB}`, `show client=${this.config.bacula.client}`];
    if (names) shows.push(`show job=${names.job}`, `show fileset=${names.fileSet}`);
    const loaded = (replies: string[]): { ok: boolean; client: ShownDaemon | null; problems: string[] } => {
      const problems: string[] = [];
      if (!isResourceShown(replies[0], 'Job')) problems.push(`Job ${RESTORE_JOB} is not defined`);
      const client = parseShownClient(replies[1]);
      if (!client) problems.push(`Client ${this.config.bacula.client} (BACULA_CLIENT) is not defined`);
      if (names && subject) {
        if (!isResourceShown(replies[2], 'Job')) problems.push(`Job ${names.job} is not defined`);
        const fileSet = parseShownFileSet(replies[3]);
        if (!fileSet) problems.push(`FileSet ${names.fileSet} is not defined`);
        else if (
          !sameSet(fileSet.include, subject.expected.include) ||
          !sameSet(fileSet.exclude, subject.expected.exclude)
        ) {
          problems.push(`FileSet ${names.fileSet} is not the one written (the director still has an older one)`);
        }
      }
      return { ok: problems.length === 0, client, problems };
    };

    let state = loaded(splitReplies(await this.bconsole.command(shows, this.commandOptions(context)), shows));
    if (changed || !state.ok) {
      context.log(`bconsole: reload (${changed ? 'resources written' : state.problems.join('; ')})`);
      // The console message queue is emptied first, so the errors read after `reload` are this reload's own.
      const session = ['messages', 'reload', ...shows, 'messages'];
      const replies = splitReplies(await this.bconsole.command(session, this.commandOptions(context)), session);
      state = loaded(replies.slice(2, -1));
      if (!state.ok) {
        const errors = parseConfigErrors(replies.at(-1) ?? '');
        const problems = state.problems.join('; ');
        if (errors.length > 0) {
          throw new JobFailure(
            'bacula-config-rejected',
            `The Bacula director rejected its configuration on reload: ${errors.slice(0, 5).join('; ')} (${problems}).`,
          );
        }
        throw new JobFailure(
          'bacula-config-not-loaded',
          `After reload the director still reports: ${problems}. Does its configuration include ${dir}/*.conf? (see docs/bacula.md)`,
        );
      }
    }
    return state.client;
  }

  /** The file daemon must run on this server; a refused connection here means the director would be refused too. */
  private async assertClientListening(fd: ShownDaemon | null): Promise<void> {
    if (!fd) return;
    const probe = await probePort(fd.address, fd.port);
    if (probe.failure === 'refused') {
      throw new AppError(
        ErrorCode.ProviderUnavailable,
        `The Bacula file daemon ${fd.name} at ${fd.address}:${fd.port} ${probe.reason}.`,
      );
    }
  }

  /** What the file daemon will read (`estimate`), for a percentage; the backup goes on without it if it fails. */
  private async estimate(
    job: string,
    level: string,
    context: JobContext,
  ): Promise<{ files: number; bytes: number } | null> {
    const command = `estimate job=${job} level=${level}`;
    try {
      const text = await this.bconsole.command([command], {
        ...this.commandOptions(context),
        timeoutMs: LONG_COMMAND_MS,
      });
      const estimate = parseEstimate(text);
      if (!estimate) {
        if (unreachableDaemon(text) === 'client') {
          throw new AppError(
            ErrorCode.ProviderUnavailable,
            `The Bacula director cannot reach the file daemon ${this.config.bacula.client}: ${tail(text)}`,
          );
        }
        context.log(`estimate gave no figure: ${tail(text)}`);
        return null;
      }
      context.log(`estimate: ${estimate.files} file(s), ${estimate.bytes} byte(s) to read`);
      return estimate;
    } catch (error) {
      if (error instanceof JobFailure && error.code === 'bacula-timeout') {
        context.log('estimate took too long: progress will have no percentage');
        return null;
      }
      throw error;
    }
  }

  /**
   * Waits for a job with `wait jobid=N` while polling its progress; cancels it when the job context is aborted; then
   * reads its record and log from the catalog.
   */
  private async follow(jobId: number, context: JobContext, follow: Follow): Promise<FinishedJob> {
    const waitControl = new AbortController();
    let cancelled = false;
    const cancel = (): void => {
      cancelled = true;
      context.log(`cancelling Bacula JobId ${jobId}`);
      this.bconsole
        .command([`cancel jobid=${jobId} yes`])
        .then((reply) => context.log(`bconsole: ${tail(reply)}`))
        .catch((error: unknown) => context.log(`cancel jobid=${jobId} failed: ${reasonOf(error)}`));
      setTimeout(() => waitControl.abort(), CANCEL_GRACE_MS).unref();
    };
    if (context.signal.aborted) cancel();
    else context.signal.addEventListener('abort', cancel, { once: true });

    let done = false;
    const waiting = this.bconsole
      .command([`wait jobid=${jobId}`], {
        timeoutMs: null,
        signal: waitControl.signal,
        onSpawn: (pid) => context.trackPid(pid),
      })
      .finally(() => (done = true));
    waiting.catch(() => undefined);
    const poll = new ProgressPoll(jobId, follow, context);
    let fatalSince: number | null = null;
    let gaveUp = false;
    try {
      while (!done) {
        await Promise.race([waiting.catch(() => undefined), sleep(POLL_MS)]);
        if (done) break;
        const state = await this.pollProgress(poll).catch(() => null);
        if (state && FATAL_RUNNING_STATUSES.has(state.status)) {
          fatalSince ??= Date.now();
          if (Date.now() - fatalSince >= FATAL_SETTLE_MS && !done) {
            gaveUp = true;
            context.log(
              `Bacula JobId ${jobId} ${state.description}: not waiting for the director to wind it down (it can take a minute)`,
            );
            waitControl.abort();
            break;
          }
        }
      }
      await waiting.catch((error: unknown) => {
        // The director went away mid-job, or the cancel grace ran out: the catalog below says what became of it.
        context.log(`wait jobid=${jobId} ended early: ${reasonOf(error)}`);
      });
    } finally {
      context.signal.removeEventListener('abort', cancel);
      waitControl.abort();
    }

    const commands = [`llist jobid=${jobId}`, `llist joblog jobid=${jobId}`];
    const text = await this.bconsole.command(commands, { onSpawn: (pid) => context.trackPid(pid) });
    const [recordReply, logReply] = splitReplies(text, commands);
    const found = parseJobRecords(recordReply).find((candidate) => candidate.jobId === jobId);
    // The catalog still says R while the director winds down a job it already shows as failed.
    const record = found && gaveUp && found.status === 'R' ? { ...found, status: 'f' } : found;
    const log = parseJobLog(logReply);
    for (const entry of log.filter((e) => e.severity !== 'summary').slice(0, JOB_LOG_LINES)) {
      context.log(`bacula ${entry.daemon}: ${entry.text.trim()}`);
    }
    const termination = parseJobSummary(log).get('Termination');
    if (termination) context.log(`Bacula JobId ${jobId}: ${termination}`);
    if (cancelled)
      throw context.signal.reason instanceof Error ? context.signal.reason : new JobFailure('cancelled', 'cancelled');
    if (!record) throw new JobFailure('bacula-job-lost', `The catalog has no record of Bacula JobId ${jobId}.`);
    if (!USABLE_STATUSES.has(record.status) && !FAILED_STATUSES.has(record.status) && record.status !== 'A') {
      throw new JobFailure(
        'bacula-job-lost',
        `Bacula JobId ${jobId} has not finished (status ${record.status}) and the provider lost track of it.`,
      );
    }
    return { record, log };
  }

  /** Updates the job's progress from the director and the client; returns the director's view of the job. */
  private async pollProgress(poll: ProgressPoll): Promise<DirectorJobState | null> {
    const dir = await this.bconsole.command(['.api 2', '.status dir running']);
    const state = parseDirectorJobState(dir, poll.jobId);
    if (!state) return null;
    if (state.status !== 'R') {
      poll.waiting(state.description);
      return state;
    }
    const client = await this.bconsole.command(['.api 2', `.status client=${this.config.bacula.client} running`]);
    const progress = parseClientJobProgress(client, poll.jobId);
    if (progress) poll.running(progress);
    return state;
  }

  /** Success, success with warnings (returned), or a thrown failure that names the daemon or quotes the director. */
  private judge(
    record: BaculaJobRecord,
    log: JobLogEntry[],
    context: JobContext,
    what: 'backup' | 'restore',
  ): string[] {
    const status = `${record.status} (${STATUS_NAMES[record.status] ?? 'unknown'})`;
    if (record.status === 'A') {
      throw new JobFailure(
        `bacula-${what}-cancelled`,
        `Bacula JobId ${record.jobId} was cancelled on the director, not through this service.`,
      );
    }
    if (FAILED_STATUSES.has(record.status)) {
      const messages = messagesOf(log, ['fatal', 'error']);
      const daemon = unreachableDaemon(messages.join('\n'));
      const detail = messages.length
        ? messages.join('; ')
        : (parseJobSummary(log).get('Termination') ?? 'no message in the job log');
      if (daemon) {
        const which =
          daemon === 'client'
            ? `file daemon ${this.config.bacula.client}`
            : daemon === 'storage'
              ? `storage daemon ${this.config.bacula.storage}`
              : 'director';
        throw new AppError(
          ErrorCode.ProviderUnavailable,
          `Bacula ${what} JobId ${record.jobId} failed: the ${which} cannot be reached. ${detail}`,
        );
      }
      throw new JobFailure(
        `bacula-${what}-failed`,
        `Bacula ${what} JobId ${record.jobId} ended with status ${status}: ${detail}`,
      );
    }
    if (record.status === 'T' && record.errors === 0) return [];
    const warnings = messagesOf(log, ['warning', 'error']);
    if (warnings.length === 0)
      warnings.push(
        `Bacula JobId ${record.jobId} ended with status ${status} and ${record.errors} non-fatal error(s); see its job log.`,
      );
    context.log(`Bacula JobId ${record.jobId} succeeded with ${warnings.length} warning(s)`);
    return warnings;
  }

  private commandOptions(context: JobContext): { signal: AbortSignal; onSpawn: (pid: number) => void } {
    return { signal: context.signal, onSpawn: (pid) => context.trackPid(pid) };
  }
}

/** Turns `.status` answers into progress updates and, now and then, a log line. */
class ProgressPoll {
  private lastDescription = '';
  private lastLogAt = 0;

  constructor(
    readonly jobId: number,
    private readonly follow: Follow,
    private readonly context: JobContext,
  ) {}

  waiting(description: string): void {
    if (description === this.lastDescription) return;
    this.lastDescription = description;
    this.context.progress({ phase: 'queued' });
    this.context.log(`Bacula JobId ${this.jobId} ${description}`);
  }

  running(progress: ClientJobProgress): void {
    let percent: number | null = null;
    if (this.follow.kind === 'backup' && this.follow.estimateBytes) {
      percent = Math.min(99, Math.floor((progress.readBytes * 100) / this.follow.estimateBytes));
    } else if (this.follow.kind === 'restore' && progress.expectedFiles) {
      percent = Math.min(99, Math.floor((progress.files * 100) / progress.expectedFiles));
    }
    this.context.progress({ phase: this.follow.kind, percent, bytes: progress.bytes });
    if (Date.now() - this.lastLogAt >= PROGRESS_LOG_MS) {
      this.lastLogAt = Date.now();
      this.context.log(
        `Bacula JobId ${this.jobId}: ${progress.files} file(s), ${progress.bytes} byte(s)` +
          (progress.currentFile ? `, at ${progress.currentFile}` : ''),
      );
    }
  }
}

/** `shadow/var/www` under the subject's root, refusing what could escape it or break a bconsole line. */
function absolutePathOf(root: string, path: string): string {
  const normalised = posix.normalize(path).replace(/\/+$/, '');
  if (
    !path ||
    posix.isAbsolute(path) ||
    normalised === '.' ||
    normalised.startsWith('..') ||
    hasControlCharacter(path)
  ) {
    throw new JobFailure(
      'bacula-invalid-path',
      `Restore path ${JSON.stringify(path.slice(0, 200))} must be relative to the site and stay inside it.`,
    );
  }
  return posix.join(root, normalised);
}

async function writeIfChanged(file: string, text: string): Promise<boolean> {
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current === text) return false;
  // The temporary name does not end in .conf, so a reload running meanwhile never includes a half-written file.
  const temporary = join(posix.dirname(file), `.${posix.basename(file)}.${process.pid}.tmp`);
  await writeFile(temporary, text, { mode: 0o640 });
  await rename(temporary, file);
  return true;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

function tail(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.trim() && !/^(Connecting to Director|1000 OK|Enter a period|You have messages)/.test(line))
    .slice(-3)
    .join(' / ');
}

function reasonOf(error: unknown): string {
  if (error instanceof AppError) return error.detail;
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
