import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import type { JobContext } from '../../jobs/job-context';
import { USABLE_STATUSES } from './bacula-restore-points';
import type { BconsoleClient } from './bconsole-client';
import {
  messagesOf,
  parseClientJobProgress,
  parseDirectorJobState,
  parseJobLog,
  parseJobRecords,
  parseJobSummary,
  splitReplies,
  unreachableDaemon,
  type BaculaJobRecord,
  type ClientJobProgress,
  type DirectorJobState,
  type JobLogEntry,
} from './bconsole-output';

const POLL_MS = 2000;
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
}

export interface Follow {
  kind: 'backup' | 'restore';
  estimateBytes?: number | null;
}

/** Follows a queued Bacula job to its end (progress, cancel, the catalog's record and log) and judges how it ended. */
export class BaculaJobFollower {
  constructor(
    private readonly bconsole: BconsoleClient,
    private readonly config: AppConfig,
  ) {}

  /**
   * Waits for a job with `wait jobid=N` while polling its progress; cancels it when the job context is aborted; then
   * reads its record and log from the catalog.
   */
  async follow(jobId: number, context: JobContext, follow: Follow): Promise<FinishedJob> {
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
