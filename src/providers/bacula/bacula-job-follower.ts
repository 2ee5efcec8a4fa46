import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import type { JobContext } from '../../jobs/job-context';
import { USABLE_STATUSES } from './bacula-restore-points';
import type { BconsoleClient, BconsoleSession } from './bconsole-client';
import {
  messagesOf,
  parseClientJobProgress,
  parseJobLog,
  parseJobRecords,
  parseJobSummary,
  parseRunningJobs,
  splitReplies,
  unreachableDaemon,
  type BaculaJobRecord,
  type ClientJobProgress,
  type JobLogEntry,
} from './bconsole-output';

/** How often the director is asked whether the job still runs (`.status dir running`, about a millisecond of its time). */
const END_POLL_MS = 200;
/** How often the file daemon is asked for the job's progress (it answers over a new connection). */
const PROGRESS_POLL_MS = 2000;
const PROGRESS_LOG_MS = 30_000;
/** How long a cancelled job may take to reach status A before the provider stops waiting for it. */
export const CANCEL_GRACE_MS = 60_000;
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

export interface FinishedJob {
  record: BaculaJobRecord;
  log: JobLogEntry[];
  /** The replies to `Follow.alsoRead`, in order. */
  also: string[];
}

export interface Follow {
  kind: 'backup' | 'restore';
  estimateBytes?: number | null;
  /** The session that queued the job, to follow it in (the follower closes it); one is opened otherwise. */
  session?: BconsoleSession;
  /** Catalog reads to make with the job's record once it has ended, in the same session. */
  alsoRead?: readonly string[];
}

/** Follows a queued Bacula job to its end (progress, cancel, the catalog's record and log) and judges how it ended. */
export class BaculaJobFollower {
  constructor(
    private readonly bconsole: BconsoleClient,
    private readonly config: AppConfig,
  ) {}

  /**
   * Watches the job in one bconsole session until the director no longer runs it, then reads its record and log
   * from the catalog in the same session; cancels it when the job context is aborted. `wait jobid=N` would do the
   * watching, but the director checks on the job once a second, so it notices the end half a second late on average:
   * on a short incremental, a tenth of the backup's time. `.status dir running` lists the same jobs `wait`
   * looks for (those the director still holds), every 200 ms.
   */
  async follow(jobId: number, context: JobContext, follow: Follow): Promise<FinishedJob> {
    let session: BconsoleSession | null = follow.session ?? null;
    let cancelled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const cancel = (): void => {
      cancelled = true;
      context.log(`cancelling Bacula JobId ${jobId}`);
      this.bconsole
        .command([`cancel jobid=${jobId} yes`])
        .then((reply) => context.log(`bconsole: ${tail(reply)}`))
        .catch((error: unknown) => context.log(`cancel jobid=${jobId} failed: ${reasonOf(error)}`));
      // The catalog below says what became of a job that outlives the grace.
      graceTimer = setTimeout(() => void session?.abandon(), CANCEL_GRACE_MS);
      graceTimer.unref();
    };
    if (context.signal.aborted) cancel();
    else context.signal.addEventListener('abort', cancel, { once: true });

    const reads = [`llist jobid=${jobId}`, `llist joblog jobid=${jobId}`, ...(follow.alsoRead ?? [])];
    let replies: string[] | null = null;
    let gaveUp = false;
    try {
      session ??= await this.bconsole.open({ onSpawn: (pid) => context.trackPid(pid) });
      gaveUp = await this.watch(session, jobId, context, follow);
      replies = splitReplies(await session.send(reads), reads);
      await session.close();
    } catch (error) {
      // The director went away mid-job, or the cancel grace ran out: the catalog below says what became of it.
      context.log(`following Bacula JobId ${jobId} ended early: ${reasonOf(error)}`);
      await session?.abandon();
    } finally {
      context.signal.removeEventListener('abort', cancel);
      clearTimeout(graceTimer);
    }
    replies ??= splitReplies(await this.bconsole.command(reads, { onSpawn: (pid) => context.trackPid(pid) }), reads);

    const [recordReply, logReply, ...also] = replies;
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
    return { record, log, also };
  }

  /**
   * Polls the director until the job is gone from its running jobs, and the file daemon now and then for progress.
   * Returns true when it stopped waiting for a job the director shows as failed but has not wound down yet.
   */
  private async watch(session: BconsoleSession, jobId: number, context: JobContext, follow: Follow): Promise<boolean> {
    const poll = new ProgressPoll(jobId, follow, context);
    let fatalSince: number | null = null;
    let progressAt = 0;
    let misread = 0;
    for (;;) {
      const running = parseRunningJobs(await session.send(['.status dir running']));
      if (running === null) {
        // Not a listing of running jobs: never taken for the job's end, and never looped on for long.
        if (++misread >= 3) {
          context.log(`the director's running jobs could not be read: waiting for JobId ${jobId} with \`wait\``);
          await session.send([`wait jobid=${jobId}`], { timeoutMs: null });
          return false;
        }
      } else {
        misread = 0;
        const state = running.get(jobId);
        if (!state) return false;
        if (state.status !== 'R') poll.waiting(state.description);
        else if (Date.now() - progressAt >= PROGRESS_POLL_MS) {
          progressAt = Date.now();
          const client = await session.send([`.status client=${this.config.bacula.client} running`]);
          const progress = parseClientJobProgress(client, jobId);
          if (progress) poll.running(progress);
        }
        if (FATAL_RUNNING_STATUSES.has(state.status)) {
          fatalSince ??= Date.now();
          if (Date.now() - fatalSince >= FATAL_SETTLE_MS) {
            context.log(
              `Bacula JobId ${jobId} ${state.description}: not waiting for the director to wind it down (it can take a minute)`,
            );
            return true;
          }
        }
      }
      await sleep(END_POLL_MS);
    }
  }

  /** Success, success with warnings (returned), or a thrown failure that names the daemon or quotes the director. */
  judge(record: BaculaJobRecord, log: JobLogEntry[], context: JobContext, what: 'backup' | 'restore'): string[] {
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

/** The last meaningful lines of a bconsole reply, for messages. */
export function tail(text: string): string {
  return text
    .split('\n')
    .filter((line) => line.trim() && !/^(Connecting to Director|1000 OK|Enter a period|You have messages)/.test(line))
    .slice(-3)
    .join(' / ');
}

export function reasonOf(error: unknown): string {
  // An AppError's message is its detail.
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
