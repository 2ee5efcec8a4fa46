import { Injectable, Logger, Optional } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { JobEngine } from './job-engine';
import { TargetErrorCode } from './job-error-codes';
import { JobFailure } from './job-failure';

/** Waits between tries; injected so tests drive the backoff without waiting. */
@Injectable()
export class RetryTimer {
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

export interface GateContext {
  log(line: string): void;
  signal?: AbortSignal;
}

const FIRST_WAIT_MS = 2000;

/**
 * Tries work against a backup target again, with a doubling wait, while the target is unreachable (the only failure
 * a retry can cure), and tells the job engine which targets are down meanwhile: queued jobs that need a target one
 * job is probing wait for the probe's outcome instead of each failing on the same dead target.
 */
@Injectable()
export class TargetGate {
  private readonly logger = new Logger(TargetGate.name);
  /** Targets a job is probing now (a try failed, the next one is pending), by key. */
  private readonly probing = new Map<string, number>();
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly config: AppConfig,
    private readonly timer: RetryTimer,
    @Optional() engine?: JobEngine,
  ) {
    // A job's provider names its target: every job of a provider whose target is being probed waits.
    if (engine) this.listeners.push(engine.holdWhile((job) => job.provider !== null && this.isHeld(job.provider)));
  }

  /** Called when a probe ends (the target came back, or the prober gave up): held jobs may start. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Whether jobs needing `target` should stay queued: one job is probing it. */
  isHeld(target: string): boolean {
    return (this.probing.get(target) ?? 0) > 0;
  }

  /**
   * Runs `attempt`; when it fails with target-unreachable, waits (2 s, 4 s, … up to TARGET_RETRY_MAX_SECONDS) and
   * tries again, up to TARGET_RETRY_ATTEMPTS tries in all. Any other failure ends it at once.
   */
  async run<T>(target: string, attempt: (tryNumber: number) => Promise<T>, context: GateContext): Promise<T> {
    const { attempts, maxSeconds } = this.config.targetRetry;
    let holding = false;
    try {
      for (let tryNumber = 1; ; tryNumber++) {
        try {
          return await attempt(tryNumber);
        } catch (error) {
          if (!(error instanceof JobFailure) || error.code !== TargetErrorCode.Unreachable || context.signal?.aborted) {
            throw error;
          }
          if (tryNumber >= attempts) {
            throw new JobFailure(error.code, `${error.message} [gave up after ${attempts} tries]`);
          }
          if (!holding) {
            holding = true;
            this.probing.set(target, (this.probing.get(target) ?? 0) + 1);
          }
          const wait = Math.min(FIRST_WAIT_MS * 2 ** (tryNumber - 1), maxSeconds * 1000);
          context.log(`the target is unreachable (try ${tryNumber} of ${attempts}); trying again in ${wait / 1000} s`);
          this.logger.warn(`target ${target} unreachable (try ${tryNumber} of ${attempts}); retrying in ${wait} ms`);
          await this.timer.sleep(wait, context.signal);
        }
      }
    } finally {
      if (holding) {
        const left = (this.probing.get(target) ?? 1) - 1;
        if (left > 0) this.probing.set(target, left);
        else this.probing.delete(target);
        for (const listener of this.listeners) listener();
      }
    }
  }
}
