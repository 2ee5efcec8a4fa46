export const JOB_KINDS = ['backup', 'export', 'restore', 'prune', 'webapp', 'archive'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const FINISHED_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface JobStep {
  name: string;
  status: StepStatus;
  startedAt: string | null;
  finishedAt: string | null;
  detail: string | null;
}

export interface JobProgress {
  phase: string | null;
  percent: number | null;
  bytes: number | null;
}

export interface JobError {
  code: string;
  message: string;
  /** Whether starting the same job again can succeed (derived from the code: see job-error-codes). */
  retryable?: boolean;
}

export interface Job {
  id: string;
  seq: number;
  kind: JobKind;
  /** `siteN`, `server`, or null for a job over several sites. */
  site: string | null;
  provider: string | null;
  level: string | null;
  status: JobStatus;
  progress: JobProgress;
  steps: JobStep[];
  params: Record<string, unknown>;
  result: Record<string, unknown> | null;
  error: JobError | null;
  requestedBy: string | null;
  pid: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface NewJob {
  kind: JobKind;
  site: string | null;
  provider: string | null;
  level: string | null;
  params: Record<string, unknown>;
  requestedBy: string | null;
  /** Steps known up front, shown as pending. */
  steps?: string[];
}
