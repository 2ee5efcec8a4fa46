import { DiscoveryService } from '@nestjs/core';
import { JOB_KINDS, type Job, type JobKind } from './job';
import type { JobRun } from './job-engine';

/**
 * Marks a provider as the runner of one kind of job: `@JobHandler('backup')`. The job engine finds every marked
 * provider at start-up through Nest's DiscoveryService, so no module registers its handler by hand.
 */
export const JobHandler = DiscoveryService.createDecorator<JobKind>();

/** Runs one kind of job. Returns the job's result; throws JobFailure (or anything) to fail it. */
export interface JobHandler {
  run(run: JobRun): Promise<Record<string, unknown>>;
  /** Called at start-up for a job of this kind that a dead process left running. */
  recover?(job: Job): Promise<void>;
}

/** Kinds that run in the request that starts them, not in the engine (an archive download): they take no handler. */
export const REQUEST_JOB_KINDS: readonly JobKind[] = ['archive'];

export interface FoundJobHandler {
  kind: JobKind;
  /** The provider's class name, for the start-up message. */
  name: string;
  handler: JobHandler;
}

/** One handler per engine kind, or a start-up error that names every kind with none or with several. */
export function indexJobHandlers(found: readonly FoundJobHandler[]): Map<JobKind, JobHandler> {
  const problems: string[] = [];
  const handlers = new Map<JobKind, JobHandler>();
  for (const kind of JOB_KINDS) {
    const mine = found.filter((candidate) => candidate.kind === kind);
    const names = mine.map((candidate) => candidate.name).join(', ');
    if (REQUEST_JOB_KINDS.includes(kind)) {
      if (mine.length > 0)
        problems.push(`'${kind}' jobs run in their request and take no handler, yet ${names} is one`);
    } else if (mine.length === 0) {
      problems.push(`no provider is marked @JobHandler('${kind}')`);
    } else if (mine.length > 1) {
      problems.push(`${mine.length} providers are marked @JobHandler('${kind}'): ${names}`);
    } else {
      handlers.set(kind, mine[0].handler);
    }
  }
  const unknown = found.filter((candidate) => !(JOB_KINDS as readonly string[]).includes(candidate.kind));
  for (const candidate of unknown) problems.push(`${candidate.name} handles '${candidate.kind}', which is no job kind`);
  if (problems.length > 0) throw new Error(`Job handlers are miswired: ${problems.join('; ')}.`);
  return handlers;
}
