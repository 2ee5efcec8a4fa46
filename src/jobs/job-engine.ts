import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { mkdirSync, rmSync } from 'node:fs';
import { Clock } from '../common/clock';
import { runTagged } from '../common/process/process-tag';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import type { JobContext, JobProgressUpdate } from './job-context';
import { FINISHED_STATUSES, type Job, type JobKind, type JobProgress, type JobStep, type NewJob } from './job';
import { JobFailure } from './job-failure';
import { indexJobHandlers, JobHandler, type FoundJobHandler } from './job-handler';
import { JobLogStore, type JobLogWriter } from './job-log.store';
import { JobRepository } from './job.repository';
import { ProcessIdentityStore, stopLeftProcesses } from './process-identity';

/** What a handler gets beyond the provider-facing context: named steps. */
export interface JobRun extends JobContext {
  readonly job: Job;
  /** Runs `work` as the named step, recording its status and times; a failure fails the step and propagates. */
  step<T>(name: string, work: () => Promise<T>, describe?: (result: T) => string | null): Promise<T>;
  skipStep(name: string, why: string): void;
  /**
   * Marks the point of no return (an in-place restore's swap): from now on a cancel no longer ends the job
   * `cancelled`; it ends as what happened (succeeded with a note that the cancel came too late, or failed).
   */
  commit(what: string): void;
  /** For a job over several sites (its `site` is null): holds `site`'s lock while `work` runs, as a site job would. */
  withSiteLock<T>(site: string, work: () => Promise<T>): Promise<T>;
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
export class JobEngine implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(JobEngine.name);
  private handlers = new Map<JobKind, JobHandler>();
  private readonly running = new Map<string, Running>();
  private accepting = true;
  private pumping = false;
  private listeners: Array<(job: Job) => void> = [];
  /** Callers holding a `GET /v1/jobs/{id}` until the job ends, by job id. */
  private readonly endWaiters = new Map<string, Set<() => void>>();
  private readonly holds: Array<(job: Job) => boolean> = [];
  /** Sites held by jobs over several sites (`withSiteLock`): site → job id. */
  private readonly lentSites = new Map<string, string>();
  private siteWaiters: Array<() => void> = [];
  private readonly identities: ProcessIdentityStore;

  constructor(
    private readonly repository: JobRepository,
    private readonly logs: JobLogStore,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly discovery: DiscoveryService,
  ) {
    this.identities = new ProcessIdentityStore(this.config.dataPath('pids'));
  }

  /** Finds the @JobHandler providers; start-up fails when a kind has none or several. */
  onModuleInit(): void {
    const found: FoundJobHandler[] = this.discovery
      .getProviders({ metadataKey: JobHandler.KEY })
      .filter((wrapper) => wrapper.instance)
      .map((wrapper) => ({
        kind: this.discovery.getMetadataByDecorator(JobHandler, wrapper) as JobKind,
        name: String(wrapper.name),
        handler: wrapper.instance as JobHandler,
      }));
    this.handlers = indexJobHandlers(found);
  }

  /**
   * Keeps a queued job waiting while `hold(job)` is true (its backup target is being probed); the returned function
   * re-checks the queue once the reason is gone.
   */
  holdWhile(hold: (job: Job) => boolean): () => void {
    this.holds.push(hold);
    return () => setImmediate(() => this.pump());
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

  /**
   * The job once it has ended, or as it is after `ms` (a long poll: one request instead of many). Resolves early when
   * `signal` aborts (the caller went away). Unknown ids throw as `get` does.
   */
  async waitForEnd(id: string, ms: number, signal?: AbortSignal): Promise<Job> {
    const job = this.get(id);
    if (ms <= 0 || FINISHED_STATUSES.includes(job.status) || signal?.aborted) return job;
    await new Promise<void>((resolve) => {
      const waiters = this.endWaiters.get(job.id) ?? new Set<() => void>();
      this.endWaiters.set(job.id, waiters);
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.endWaiters.get(job.id) === waiters) this.endWaiters.delete(job.id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      waiters.add(done);
    });
    return this.get(id);
  }

  /** How many `GET /v1/jobs/{id}?waitSeconds=` answers are held now. */
  waitingCallers(): number {
    let count = 0;
    for (const waiters of this.endWaiters.values()) count += waiters.size;
    return count;
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
    try {
      await this.letRunningJobsEnd();
    } finally {
      // Held `GET /v1/jobs/{id}` answers go out now (a queued job stays queued): the HTTP server closes only once
      // its connections have, and would otherwise wait up to a minute for them.
      for (const waiters of [...this.endWaiters.values()]) for (const done of [...waiters]) done();
    }
  }

  private async letRunningJobsEnd(): Promise<void> {
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
      for (const site of this.lentSites.keys()) busySites.add(site);
      for (const job of this.repository.queued()) {
        if (this.running.size >= this.config.maxConcurrentJobs) break;
        // A job over several sites (site null) only waits for the concurrency limit.
        if (job.site && busySites.has(job.site)) continue;
        if (this.holds.some((hold) => hold(job))) continue;
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
      this.identities.forget(job.id);
      this.wakeSiteWaiters();
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
      const handled = await runTagged(job.id, () => handler.run(run));
      run.flush();
      if (controller.signal.aborted && !run.committed()) throw controller.signal.reason;
      const result =
        controller.signal.aborted && run.committed()
          ? {
              ...handled,
              cancelTooLate: `${JobFailure.from(controller.signal.reason).message}, too late: ${run.committed()}`,
            }
          : handled;
      this.repository.transition(job.id, ['running'], 'succeeded', { result });
      log.write('job succeeded');
      this.emit(job.id);
    } catch (error) {
      run.flush();
      const reason: unknown = controller.signal.aborted && !run.committed() ? controller.signal.reason : error;
      const failure = JobFailure.from(reason);
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
  ): JobRun & {
    flush(): void;
    failOpenSteps(status: 'failed' | 'cancelled', detail: string): void;
    committed(): string | null;
  } {
    const repository = this.repository;
    const identities = this.identities;
    let committedAt: string | null = null;
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
      trackPid: (pid: number) => {
        repository.savePid(job.id, pid);
        identities.save(job.id, pid);
      },
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
          const failure = JobFailure.from(signal.aborted && committedAt === null ? signal.reason : error);
          setStep(name, {
            status: failure.code === 'cancelled' || failure.code === 'interrupted' ? 'cancelled' : 'failed',
            finishedAt: clock.iso(),
            detail: failure.message,
          });
          throw error;
        }
      },
      skipStep: (name: string, why: string) => setStep(name, { status: 'skipped', detail: why }),
      commit: (what: string) => {
        committedAt ??= what;
        log.write(`past the point of no return: ${what}; a cancel now ends the job as what happened`);
      },
      committed: () => committedAt,
      withSiteLock: <T>(site: string, work: () => Promise<T>) => this.withSiteLock(job.id, site, signal, work),
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

  private async withSiteLock<T>(jobId: string, site: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    while (this.lentSites.has(site) || [...this.running.values()].some((entry) => entry.job.site === site)) {
      if (signal.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        this.siteWaiters.push(resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    this.lentSites.set(site, jobId);
    try {
      return await work();
    } finally {
      this.lentSites.delete(site);
      this.wakeSiteWaiters();
      setImmediate(() => this.pump());
    }
  }

  private wakeSiteWaiters(): void {
    const waiters = this.siteWaiters;
    this.siteWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Jobs a dead process left running: stop their orphaned children, let handlers clean up, mark them interrupted. */
  private async recoverInterrupted(): Promise<void> {
    for (const job of this.repository.byStatus('running')) {
      // What the dead run left: the stored process group (only if its leader is still that very process: a pid
      // reused since is someone else's) and every process tagged with the job's id. Cleanup waits until they are
      // gone, so that no dying child still writes where it is about to run.
      const left = await stopLeftProcesses(job.id, job.pid, this.identities.load(job.id));
      if (left.killed > 0)
        this.logger.warn({ jobId: job.id, killed: left.killed }, 'stopped processes a dead run left');
      if (left.stillAlive.length > 0) {
        this.logger.error({ jobId: job.id, pids: left.stillAlive }, 'processes a dead run left did not exit');
      }
      this.identities.forget(job.id);
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
    // No job runs yet: every work directory left is a dead run's, including one that ended but was killed between
    // its final status and the removal of its directory.
    rmSync(this.config.dataPath('work'), { recursive: true, force: true });
  }

  private emit(id: string): void {
    for (const done of [...(this.endWaiters.get(id) ?? [])]) done();
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
