import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import type { JobContext, JobProgressUpdate } from '../providers/backup-provider';
import { FINISHED_STATUSES, type Job, type JobKind, type JobProgress, type JobStep, type NewJob } from './job';
import { JobFailure } from './job-failure';
import { JobLogStore, type JobLogWriter } from './job-log.store';
import { JobRepository } from './job.repository';

/** What a handler gets beyond the provider-facing context: named steps. */
export interface JobRun extends JobContext {
  readonly job: Job;
  /** Runs `work` as the named step, recording its status and times; a failure fails the step and propagates. */
  step<T>(name: string, work: () => Promise<T>, describe?: (result: T) => string | null): Promise<T>;
  skipStep(name: string, why: string): void;
}

/** Runs one kind of job. Returns the job's result; throws JobFailure (or anything) to fail it. */
export interface JobHandler {
  readonly kind: JobKind;
  run(run: JobRun): Promise<Record<string, unknown>>;
  /** Called at start-up for a job of this kind that a dead process left running. */
  recover?(job: Job): Promise<void>;
}

interface Running {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

const PROGRESS_FLUSH_MS = 500;

/**
 * The durable job engine: jobs are rows before anything runs; at most one running job per site and
 * MAX_CONCURRENT_JOBS in all, first come first served; cancel stops the process group; a restart marks what was
 * running as interrupted.
 */
@Injectable()
export class JobEngine implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(JobEngine.name);
  private readonly handlers = new Map<JobKind, JobHandler>();
  private readonly running = new Map<string, Running>();
  private accepting = true;
  private pumping = false;
  private listeners: Array<(job: Job) => void> = [];

  constructor(
    private readonly repository: JobRepository,
    private readonly logs: JobLogStore,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  register(handler: JobHandler): void {
    this.handlers.set(handler.kind, handler);
  }

  /** Observers of finished jobs (metrics, webhooks). */
  onFinished(listener: (job: Job) => void): void {
    this.listeners.push(listener);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.recoverInterrupted();
    this.pump();
  }

  /** Writes the job, then schedules it; returns at once. */
  enqueue(newJob: NewJob): Job {
    if (!this.accepting) throw new AppError(ErrorCode.ShuttingDown, 'The service is shutting down; retry shortly.');
    const job = this.repository.insert(newJob);
    setImmediate(() => this.pump());
    return job;
  }

  get(id: string): Job {
    const job = /^[0-9a-f-]{36}$/.test(id) ? this.repository.get(id) : undefined;
    if (!job) throw new AppError(ErrorCode.JobNotFound, `No job ${JSON.stringify(id.slice(0, 64))}.`);
    return job;
  }

  cancel(id: string, by: string): Job {
    const job = this.get(id);
    if (FINISHED_STATUSES.includes(job.status)) {
      throw new AppError(ErrorCode.JobNotCancellable, `Job ${id} already ended ${job.status}.`);
    }
    if (
      this.repository.transition(id, ['queued'], 'cancelled', {
        error: { code: 'cancelled', message: `cancelled by ${by} before it started` },
      })
    ) {
      this.emit(id);
      return this.get(id);
    }
    const running = this.running.get(id);
    if (running) {
      this.logger.log({ jobId: id, by }, 'cancelling running job');
      running.controller.abort(new JobFailure('cancelled', `cancelled by ${by}`));
    }
    return this.get(id);
  }

  /** Resolves when the job has ended (tests, synchronous callers). */
  async settled(id: string): Promise<Job> {
    await this.running.get(id)?.done;
    return this.get(id);
  }

  /** Whether a job of this kind is queued or running. */
  hasActive(kind: JobKind): boolean {
    return this.repository.countActive(kind) > 0;
  }

  runningCount(): number {
    return this.running.size;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.accepting = false;
    if (this.running.size === 0) return;
    const grace = this.config.shutdownGraceSeconds * 1000;
    this.logger.warn(`shutting down: waiting up to ${grace} ms for ${this.running.size} running job(s)`);
    const all = Promise.all([...this.running.values()].map((entry) => entry.done));
    const timedOut = await Promise.race([all.then(() => false), sleep(grace).then(() => true)]);
    if (!timedOut) return;
    for (const entry of this.running.values()) {
      entry.controller.abort(new JobFailure('interrupted', 'the service shut down before the job finished'));
    }
    await Promise.race([all, sleep(10_000)]);
  }

  /** Starts every queued job that may start now: FIFO, one per site, MAX_CONCURRENT_JOBS in all. */
  private pump(): void {
    if (this.pumping || !this.accepting) return;
    this.pumping = true;
    try {
      const busySites = new Set([...this.running.values()].map((entry) => entry.job.site).filter(Boolean));
      for (const job of this.repository.queued()) {
        if (this.running.size >= this.config.maxConcurrentJobs) break;
        // A job over several sites (site null) only waits for the concurrency limit.
        if (job.site && busySites.has(job.site)) continue;
        if (!this.repository.transition(job.id, ['queued'], 'running')) continue;
        if (job.site) busySites.add(job.site);
        this.start(this.repository.get(job.id)!);
      }
    } finally {
      this.pumping = false;
    }
  }

  private start(job: Job): void {
    const controller = new AbortController();
    const entry: Running = { job, controller, done: Promise.resolve() };
    this.running.set(job.id, entry);
    entry.done = this.execute(job, controller).finally(() => {
      this.running.delete(job.id);
      setImmediate(() => this.pump());
    });
  }

  private async execute(job: Job, controller: AbortController): Promise<void> {
    const log = this.logs.open(job.id);
    const workDir = this.config.dataPath('work', job.id);
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const run = this.createRun(job, controller.signal, log, workDir);
    log.write(`job ${job.id} (${job.kind}${job.site ? ` of ${job.site}` : ''}) started`);
    try {
      const handler = this.handlers.get(job.kind);
      if (!handler) throw new JobFailure('no-handler', `no handler for ${job.kind} jobs`);
      const result = await handler.run(run);
      run.flush();
      if (controller.signal.aborted) throw controller.signal.reason;
      this.repository.transition(job.id, ['running'], 'succeeded', { result });
      log.write('job succeeded');
      this.emit(job.id);
    } catch (error) {
      run.flush();
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : error;
      const failure = toFailure(reason);
      const status =
        failure.code === 'cancelled' ? 'cancelled' : failure.code === 'interrupted' ? 'interrupted' : 'failed';
      run.failOpenSteps(status === 'failed' ? 'failed' : 'cancelled', failure.message);
      this.repository.transition(job.id, ['running'], status, {
        error: { code: failure.code, message: failure.message },
      });
      log.write(`job ${status}: [${failure.code}] ${failure.message}`);
      this.emit(job.id);
      if (status === 'failed' && !(reason instanceof JobFailure)) {
        this.logger.error({ err: reason, jobId: job.id }, 'job failed unexpectedly');
      }
    } finally {
      await log.close();
      rmSync(workDir, { recursive: true, force: true });
    }
  }

  private createRun(
    job: Job,
    signal: AbortSignal,
    log: JobLogWriter,
    workDir: string,
  ): JobRun & { flush(): void; failOpenSteps(status: 'failed' | 'cancelled', detail: string): void } {
    const repository = this.repository;
    const clock = this.clock;
    let progress: JobProgress = { ...job.progress };
    let dirty = false;
    let lastFlush = 0;
    const steps: JobStep[] = job.steps.map((step) => ({ ...step }));
    const flush = () => {
      if (!dirty) return;
      dirty = false;
      lastFlush = Date.now();
      repository.saveProgress(job.id, progress);
    };
    const setStep = (name: string, patch: Partial<JobStep>) => {
      let step = steps.find((candidate) => candidate.name === name);
      if (!step) {
        // A step found on the way (one per database) goes before the steps still to come, so the list reads in order.
        step = { name, status: 'pending', startedAt: null, finishedAt: null, detail: null };
        const firstPending = steps.findIndex((candidate) => candidate.status === 'pending');
        steps.splice(firstPending < 0 ? steps.length : firstPending, 0, step);
      }
      Object.assign(step, patch);
      repository.saveSteps(job.id, steps);
    };
    return {
      job,
      jobId: job.id,
      signal,
      workDir,
      log: (line: string) => log.write(line),
      progress: (update: JobProgressUpdate) => {
        progress = { ...progress, ...update };
        dirty = true;
        if (Date.now() - lastFlush >= PROGRESS_FLUSH_MS || update.phase !== undefined) flush();
      },
      trackPid: (pid: number) => repository.savePid(job.id, pid),
      step: async <T>(name: string, work: () => Promise<T>, describe?: (result: T) => string | null): Promise<T> => {
        if (signal.aborted) throw signal.reason;
        setStep(name, { status: 'running', startedAt: clock.iso() });
        log.write(`step ${name} started`);
        progress = { ...progress, phase: name };
        dirty = true;
        flush();
        try {
          const result = await work();
          setStep(name, { status: 'succeeded', finishedAt: clock.iso(), detail: describe?.(result) ?? null });
          log.write(`step ${name} succeeded`);
          return result;
        } catch (error) {
          const failure = toFailure(signal.aborted ? signal.reason : error);
          setStep(name, {
            status: failure.code === 'cancelled' || failure.code === 'interrupted' ? 'cancelled' : 'failed',
            finishedAt: clock.iso(),
            detail: failure.message,
          });
          throw error;
        }
      },
      skipStep: (name: string, why: string) => setStep(name, { status: 'skipped', detail: why }),
      flush,
      failOpenSteps: (status, detail) => {
        for (const step of steps) {
          if (step.status === 'running' || step.status === 'pending') {
            Object.assign(step, {
              status: step.status === 'running' ? status : 'skipped',
              finishedAt: clock.iso(),
              detail,
            });
          }
        }
        repository.saveSteps(job.id, steps);
      },
    };
  }

  /** Jobs a dead process left running: stop their orphaned children, let handlers clean up, mark them interrupted. */
  private async recoverInterrupted(): Promise<void> {
    for (const job of this.repository.byStatus('running')) {
      if (job.pid) killOrphanGroup(job.pid);
      try {
        await this.handlers.get(job.kind)?.recover?.(job);
      } catch (error) {
        this.logger.warn({ err: error, jobId: job.id }, 'recovery step failed');
      }
      this.repository.transition(job.id, ['running'], 'interrupted', {
        error: {
          code: 'interrupted',
          message: 'the service stopped while this job was running; its site lock was released',
        },
      });
      const log = this.logs.open(job.id);
      log.write('job interrupted: the service stopped while it ran');
      await log.close();
      rmSync(this.config.dataPath('work', job.id), { recursive: true, force: true });
      this.logger.warn({ jobId: job.id, kind: job.kind, site: job.site }, 'marked interrupted job');
      this.emit(job.id);
    }
  }

  private emit(id: string): void {
    const job = this.repository.get(id);
    if (!job) return;
    for (const listener of this.listeners) {
      try {
        listener(job);
      } catch (error) {
        this.logger.warn({ err: error }, 'job listener failed');
      }
    }
  }
}

function toFailure(error: unknown): JobFailure {
  if (error instanceof JobFailure) return error;
  if (error instanceof AppError) return new JobFailure(error.code, error.detail);
  return new JobFailure('internal', error instanceof Error ? error.message : String(error));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Kills a process group left by a previous run of the service, if that pid still leads a group of ours. */
function killOrphanGroup(pid: number): void {
  try {
    const stat = readFileSync(join('/proc', String(pid), 'stat'), 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(fields[2]);
    if (pgid !== pid) return; // not a group leader any more: the pid was reused
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
