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
  BackupOutcome,
  BackupProvider,
  BackupRequest,
  BackupSubject,
  ProviderStatus,
  PruneOutcome,
  PruneRequest,
  RestoreOutcome,
  RestorePoint,
  RestoreRequest,
} from '../backup-provider';
import type { BackupLevel } from '../../jobs/backup-level';
import type { JobContext } from '../../jobs/job-context';
import { BaculaJobFollower, CANCEL_GRACE_MS, reasonOf, tail } from './bacula-job-follower';
import { absolutePathOf, LONG_COMMAND_MS, queueRestore } from './bacula-restore-dialogue';
import { hasPendingVolumes, pruneBacula } from './bacula-retention';
import {
  COMMON_FILE,
  RESTORE_JOB,
  assertConfigPath,
  renderCommonConfig,
  renderSubjectConfig,
  resourcesFor,
  type DirectorSettings,
  type ExpectedFileSet,
} from './bacula-resources';
import { LEVEL_NAME, LEVEL_OF, jobIdOf, pointIdOf, restorePointsOf } from './bacula-restore-points';
import { listBaculaPointDirectory } from './bacula-files';
import { BconsoleClient, type BconsoleExchange } from './bconsole-client';
import { isLocalAddress, probeDaemon } from './local-listener';
import {
  isResourceShown,
  parseApiBlocks,
  parseConfigErrors,
  parseGreeting,
  parseJobRecords,
  parseEstimate,
  parseQueuedJobId,
  parseShownClient,
  parseShownFileSet,
  splitReplies,
  unreachableDaemon,
  parseShownStorage,
  type ShownDaemons,
} from './bconsole-output';

/**
 * Bacula through bconsole: per-subject Job and FileSet resources written to BACULA_INCLUDE_DIR and loaded with
 * `reload`; jobs started with `run`, followed with `.status` in the session that ran them, judged from the catalog
 * (`llist`) and their job log; restore points and chains read from the catalog; restores through a Restore job of its
 * own. The director may run here or on a backup server: only bconsole talks to it.
 */
@Injectable()
export class BaculaProvider implements BackupProvider {
  readonly name = 'bacula' as const;
  readonly levels: readonly BackupLevel[] = ['full', 'differential', 'incremental'];
  readonly pruneUnit = 'point' as const;
  private readonly logger = new Logger(BaculaProvider.name);
  private readonly bconsole: BconsoleClient;
  private readonly follower: BaculaJobFollower;

  constructor(
    runner: ProcessRunner,
    private readonly config: AppConfig,
  ) {
    this.bconsole = new BconsoleClient(runner, config);
    this.follower = new BaculaJobFollower(this.bconsole, config);
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
    const refused = await this.refusingDaemon({ client: fd, storage: parseShownStorage(storageReply) });
    if (refused) return { available: false, version, reason: refused, warnings };
    if (fd) {
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

  /**
   * One bconsole session from the resources' check to the job's record: every command on its own bconsole would pay
   * a connection and a login each (about 60 ms of the director's and bconsole's time), and the job's own command by
   * hand needs two (`run`, then `wait`).
   */
  async backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome> {
    const { subject } = request;
    const names = resourcesFor(subject.key);
    const rendered = renderSubjectConfig(subject, this.settings);
    context.progress({ phase: 'prepare', percent: null, bytes: null });
    await this.bconsole.assertDirectorListening();
    // Not tied to the job's signal: once the job is queued, a cancel must reach the director through the follower.
    const session = await this.bconsole.open({ onSpawn: (pid) => context.trackPid(pid) });
    const stop = (): void => void session.abandon();
    context.signal.addEventListener('abort', stop, { once: true });
    let jobId: number | null;
    let estimate: { bytes: number } | null;
    const listPoints = listPointsCommand(names.job);
    try {
      if (context.signal.aborted) throw context.signal.reason;
      const { daemons, also } = await this.installResources(
        context,
        { subject, text: rendered.text, expected: rendered.expected },
        session,
        [listPoints],
      );
      await this.assertDaemonsListening(daemons);

      const level = LEVEL_NAME[request.level];
      // Progress is measured against the previous backup of the same level. `estimate` has the file daemon walk the
      // whole site once more before the backup walks it (on a site of a million files, minutes for a percentage), so
      // it runs only for the first backup of a level, when there is nothing to compare with.
      context.progress({ phase: 'estimate' });
      estimate =
        previousOfLevel(also[0], request.level, context) ??
        (await this.estimate(session, names.job, LEVEL_NAME[request.level], context));

      const runLine = `run job=${names.job} level=${level} yes`;
      context.log(`bconsole: ${runLine}`);
      const reply = await session.send([runLine]);
      jobId = parseQueuedJobId(reply);
      if (jobId === null)
        throw new JobFailure('bacula-run-refused', `The director did not queue ${names.job}: ${tail(reply)}`);
      context.log(`Bacula JobId ${jobId} queued (${names.job}, ${level})`);
    } catch (error) {
      await session.abandon();
      throw context.signal.aborted && context.signal.reason instanceof Error ? context.signal.reason : error;
    } finally {
      context.signal.removeEventListener('abort', stop);
    }

    const { record, log, also } = await this.follower.follow(jobId, context, {
      kind: 'backup',
      estimateBytes: estimate?.bytes ?? null,
      session,
      alsoRead: [listPoints],
    });
    const made = LEVEL_OF[record.level] ?? request.level;
    const warnings = this.follower.judge(record, log, context, 'backup');
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
    return {
      level: made,
      restorePointId: pointIdOf(jobId),
      bytes: record.bytes,
      files: record.files,
      warnings,
      notes,
      points: pointsListedIn(also[0] ?? ''),
    };
  }

  /** Retention (bacula-retention.ts): `delete jobid=…`, then purge and truncate of the volumes that emptied. */
  prune(request: PruneRequest, context: JobContext): Promise<PruneOutcome> {
    return pruneBacula(request, this.bconsole, this.config, context);
  }

  /** Volumes a killed prune emptied but did not purge (bacula-retention.ts notes them before deleting jobs). */
  prunePending(subject: BackupSubject): Promise<boolean> {
    return hasPendingVolumes(this.config, subject);
  }

  async scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const names = resourcesFor(subject.key);
    await this.bconsole.assertDirectorListening();
    const command = listPointsCommand(names.job);
    const text = await this.bconsole.command([command], {
      timeoutMs: Math.max(this.config.bacula.timeoutSeconds * 1000, 120_000),
      signal: context?.signal,
      onSpawn: context ? (pid) => context.trackPid(pid) : undefined,
    });
    return pointsListedIn(splitReplies(text, [command])[0]);
  }

  /** Browsing a point: see bacula-files.ts. */
  listPointDirectory(subject: BackupSubject, point: RestorePoint, dir: string, signal?: AbortSignal) {
    return listBaculaPointDirectory(this.bconsole, subject, point, dir, signal);
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
    await this.assertDaemonsListening((await this.installResources(context, null)).daemons);

    const staging = join(destination, `.bacula-restore-${randomBytes(6).toString('hex')}`);
    try {
      const chosen = await queueRestore(
        this.bconsole,
        { point, paths, absolute, jobIds, staging, client: this.config.bacula.client },
        this.commandOptions(context),
        context,
        (jobId) => this.cancelAndWait(jobId, context),
      );
      const { record, log } = await this.follower.follow(chosen.jobId, context, { kind: 'restore' });
      const warnings = this.follower.judge(record, log, context, 'restore');
      context.progress({ phase: 'move' });
      const restoredRoot = join(staging, subject.root);
      if (!existsSync(restoredRoot)) {
        // A file deleted before the point is still found by name (the catalog's newest record of it is its
        // deletion), and the director restores nothing for it: it is not in the point.
        throw chosen.byName
          ? new JobFailure(
              'bacula-restore-path-not-found',
              `Not in restore point ${point.id}: ${JSON.stringify(paths[0])}.`,
            )
          : new JobFailure(
              'bacula-restore-empty',
              `Bacula job ${chosen.jobId} restored nothing under ${subject.root}.`,
            );
      }
      for (const entry of await readdir(restoredRoot)) {
        await rename(join(restoredRoot, entry), join(destination, entry));
      }
      context.progress({ phase: 'done', percent: 100, bytes: record.bytes });
      return { files: record.files, bytes: record.bytes, warnings };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Cancels a job this run queued and waits until the director has ended it (so it writes nothing more). */
  private async cancelAndWait(jobId: number, context: JobContext): Promise<void> {
    try {
      context.log(`bconsole: ${tail(await this.bconsole.command([`cancel jobid=${jobId} yes`]))}`);
      await this.bconsole.command([`wait jobid=${jobId}`], {
        timeoutMs: CANCEL_GRACE_MS,
        onSpawn: (pid) => context.trackPid(pid),
      });
    } catch (error) {
      // The job's own failure (the paths it names) is what the caller needs; this goes to the log.
      context.log(`cancelling Bacula JobId ${jobId}: ${reasonOf(error)}`);
    }
  }

  /** Cancels a Bacula job of the subject that a dead run of the service left queued or running. */
  async recover(subject: BackupSubject): Promise<void> {
    const names = resourcesFor(subject.key);
    const running = async (): Promise<string[]> =>
      parseApiBlocks(await this.bconsole.command(['.api 2', '.status dir running']))
        .filter((block) => block.name === names.job && block.jobid)
        .map((block) => block.jobid);
    // No job of ours starts before recovery ends, so every job of this name the director runs is a leftover; one
    // that a killed bconsole had just queued may show up only after the first look, hence the loop. Wait until the
    // director has ended them: the next backup of the site would otherwise queue behind a dead run's.
    const cancelled = new Set<string>();
    const deadline = Date.now() + CANCEL_GRACE_MS;
    for (;;) {
      const left = await running();
      if (left.length === 0) return;
      for (const jobId of left.filter((id) => !cancelled.has(id))) {
        this.logger.warn(
          `cancelling Bacula JobId ${jobId} of ${names.job}, left running by a previous run of the service`,
        );
        await this.bconsole.command([`cancel jobid=${jobId} yes`]);
        cancelled.add(jobId);
      }
      if (Date.now() > deadline) {
        this.logger.warn(`Bacula JobId(s) ${left.join(', ')} still run ${CANCEL_GRACE_MS} ms after the cancel`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * Cancels the restores a dead run of the service left queued or running on the director, and waits until the
   * director has ended them: a restore left alive would go on writing into a staging area that recovery then removes
   * (or has removed), leaving a whole copy of the site behind. At start-up no restore of ours is alive yet, so every
   * restore job of ours the director still runs is such a leftover.
   */
  async recoverRestores(): Promise<void> {
    const running = async (): Promise<string[]> =>
      parseApiBlocks(await this.bconsole.command(['.api 2', '.status dir running']))
        .filter((block) => block.name === RESTORE_JOB && block.jobid)
        .map((block) => block.jobid);
    const left = await running();
    for (const jobId of left) {
      this.logger.warn(`cancelling Bacula restore JobId ${jobId}, left running by a previous run of the service`);
      await this.bconsole.command([`cancel jobid=${jobId} yes`]);
    }
    const deadline = Date.now() + CANCEL_GRACE_MS;
    while (left.length > 0 && (await running()).some((jobId) => left.includes(jobId))) {
      if (Date.now() > deadline) {
        this.logger.warn(`Bacula restore JobId(s) ${left.join(', ')} still run ${CANCEL_GRACE_MS} ms after the cancel`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
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
    via: BconsoleExchange = this.oneShot(context),
    alsoRead: readonly string[] = [],
  ): Promise<{ daemons: ShownDaemons; also: string[] }> {
    const dir = this.config.bacula.includeDir;
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const files: [string, string][] = [[COMMON_FILE, renderCommonConfig(this.settings)]];
    const names = subject ? resourcesFor(subject.subject.key) : null;
    if (subject && names) files.push([names.file, subject.text]);
    let changed = false;
    for (const [file, text] of files) changed = (await writeIfChanged(join(dir, file), text)) || changed;

    const shows = [
      `show job=${RESTORE_JOB}`,
      `show client=${this.config.bacula.client}`,
      `show storage=${this.config.bacula.storage}`,
    ];
    if (names) shows.push(`show job=${names.job}`, `show fileset=${names.fileSet}`);
    const loaded = (replies: string[]): { ok: boolean; daemons: ShownDaemons; problems: string[] } => {
      const problems: string[] = [];
      if (!isResourceShown(replies[0], 'Job')) problems.push(`Job ${RESTORE_JOB} is not defined`);
      const client = parseShownClient(replies[1]);
      if (!client) problems.push(`Client ${this.config.bacula.client} (BACULA_CLIENT) is not defined`);
      // A missing Storage is the operator's configuration, not the include dir's: status() and the run say so.
      const storage = parseShownStorage(replies[2]);
      if (names && subject) {
        if (!isResourceShown(replies[3], 'Job')) problems.push(`Job ${names.job} is not defined`);
        const fileSet = parseShownFileSet(replies[4]);
        if (!fileSet) problems.push(`FileSet ${names.fileSet} is not defined`);
        else if (
          !sameSet(fileSet.include, subject.expected.include) ||
          !sameSet(fileSet.exclude, subject.expected.exclude)
        ) {
          problems.push(`FileSet ${names.fileSet} is not the one written (the director still has an older one)`);
        }
      }
      return { ok: problems.length === 0, daemons: { client, storage }, problems };
    };

    // The catalog reads the caller wants go along with the first look (a reload changes no catalog record).
    const first = [...shows, ...alsoRead];
    const firstReplies = splitReplies(await via.send(first), first);
    const also = firstReplies.slice(shows.length);
    let state = loaded(firstReplies);
    if (changed || !state.ok) {
      context.log(`bconsole: reload (${changed ? 'resources written' : state.problems.join('; ')})`);
      // The console message queue is emptied first, so the errors read after `reload` are this reload's own.
      const session = ['messages', 'reload', ...shows, 'messages'];
      const replies = splitReplies(await via.send(session), session);
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
    return { daemons: state.daemons, also };
  }

  /**
   * The daemons a job needs, before the director is asked to run it: with one of them stopped, the director retries
   * for its FD or SD Connect Timeout (Bacula's defaults: 3 and 30 minutes) before the job fails.
   */
  private async assertDaemonsListening(daemons: ShownDaemons): Promise<void> {
    const refused = await this.refusingDaemon(daemons);
    if (refused) throw new AppError(ErrorCode.ProviderUnavailable, refused);
  }

  /**
   * Why a daemon the job needs is known to be down, or null. The file daemon must run on this server: a refused
   * connection here means the director's would be refused too. The storage daemon is judged only when it and the
   * director are both on this server: elsewhere its Address is the director's view, and the file daemon may be
   * given another (FD Storage Address), so only the director can tell.
   */
  private async refusingDaemon({ client, storage }: ShownDaemons): Promise<string | null> {
    if (client) {
      const probe = await probeDaemon(client.address, client.port);
      if (probe.failure === 'refused')
        return `The Bacula file daemon ${client.name} at ${client.address}:${client.port} ${probe.reason}.`;
    }
    if (storage && isLocalAddress(storage.address)) {
      const director = await this.bconsole.directorAddress();
      if (director && isLocalAddress(director.address)) {
        const probe = await probeDaemon(storage.address, storage.port);
        if (probe.failure === 'refused')
          return `The Bacula storage daemon ${storage.name} at ${storage.address}:${storage.port} ${probe.reason}.`;
      }
    }
    return null;
  }

  /** What the file daemon will read (`estimate`), for a percentage; the backup goes on without it if it fails. */
  private async estimate(
    via: BconsoleExchange,
    job: string,
    level: string,
    context: JobContext,
  ): Promise<{ files: number; bytes: number } | null> {
    const command = `estimate job=${job} level=${level}`;
    try {
      const text = await via.send([command], { timeoutMs: LONG_COMMAND_MS });
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

  private commandOptions(context: JobContext): { signal: AbortSignal; onSpawn: (pid: number) => void } {
    return { signal: context.signal, onSpawn: (pid) => context.trackPid(pid) };
  }

  /** Each exchange on a bconsole of its own (a restore's few commands). */
  private oneShot(context: JobContext): BconsoleExchange {
    return { send: (lines, options) => this.bconsole.command(lines, { ...this.commandOptions(context), ...options }) };
  }
}

/** The catalog's jobs of a subject's Job: every backup, its restore points read from them (`pointsListedIn`). */
function listPointsCommand(job: string): string {
  return `llist jobname=${job}`;
}

function pointsListedIn(reply: string): RestorePoint[] {
  return restorePointsOf(parseJobRecords(reply));
}

/** The bytes of the newest finished backup of `level` in `llist jobname=…`, or null (first one, or none readable). */
function previousOfLevel(listing: string, level: BackupLevel, context: JobContext): { bytes: number } | null {
  const points = pointsListedIn(listing);
  const bytes = points.find((point) => point.level === level && point.state === 'complete')?.bytes;
  if (!bytes) return null;
  context.log(`progress is measured against the previous ${level} backup: ${bytes} byte(s)`);
  return { bytes };
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
