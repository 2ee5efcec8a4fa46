import type { Job, JobStatus } from '../jobs/job';
import { toJobModel } from '../jobs/job.model';

export const WEBHOOK_EVENTS = [
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'job.interrupted',
  'restore-point.created',
  'restore-point.expired',
  'webapp.update-confirmed',
  'webapp.update-rolled-back',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

const EVENT_OF_STATUS: Partial<Record<JobStatus, WebhookEvent>> = {
  succeeded: 'job.succeeded',
  failed: 'job.failed',
  cancelled: 'job.cancelled',
  interrupted: 'job.interrupted',
};

/** One event a finished job raises, with the `data` of its payload. */
export interface JobEvent {
  event: WebhookEvent;
  jobId: string;
  /** When it happened: the job's end. */
  occurredAt: string;
  data: Record<string, unknown>;
}

/**
 * The events a job that just ended raises: its status as `job.<status>`, and `restore-point.created` too when it is a
 * backup that produced a restore point. Nothing for a job that has not ended.
 */
export function eventsOfJob(job: Job, now: Date): JobEvent[] {
  const statusEvent = EVENT_OF_STATUS[job.status];
  if (!statusEvent) return [];
  const model = toJobModel(job);
  const occurredAt = job.finishedAt ?? now.toISOString();
  const events: JobEvent[] = [{ event: statusEvent, jobId: job.id, occurredAt, data: { job: model } }];
  const restorePoint = job.result?.restorePoint;
  if (job.status === 'succeeded' && job.kind === 'backup' && typeof restorePoint === 'string' && restorePoint) {
    const level = typeof job.result?.level === 'string' ? job.result.level : job.level;
    events.push({
      event: 'restore-point.created',
      jobId: job.id,
      occurredAt,
      data: { job: model, restorePoint: { id: restorePoint, site: job.site, provider: job.provider, level } },
    });
  }
  const removed = job.result?.removed;
  if (job.status === 'succeeded' && job.kind === 'prune' && Array.isArray(removed)) {
    // One event per restore point a prune removed.
    for (const point of removed as Array<{ id?: unknown; time?: unknown; level?: unknown }>) {
      events.push({
        event: 'restore-point.expired',
        jobId: job.id,
        occurredAt,
        data: {
          job: model,
          restorePoint: { id: point.id, site: job.site, provider: job.provider, level: point.level, time: point.time },
        },
      });
    }
  }
  const assurance = job.result?.assurance as { outcome?: unknown } | undefined;
  if (job.status === 'succeeded' && job.kind === 'webapp' && job.level === 'confirm' && assurance) {
    const event = assurance.outcome === 'confirmed' ? 'webapp.update-confirmed' : 'webapp.update-rolled-back';
    events.push({ event, jobId: job.id, occurredAt, data: { job: model, site: job.site, assurance } });
  }
  return events;
}
