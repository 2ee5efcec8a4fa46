import assert from 'node:assert/strict';
import type { TestApp } from './test-app';

export interface JobBody {
  id: string;
  status: string;
  site: string | null;
  level: string | null;
  progress: { phase: string | null; percent: number | null; bytes: number | null };
  steps: Array<{
    name: string;
    status: string;
    detail: string | null;
    startedAt: string | null;
    finishedAt: string | null;
  }>;
  request?: Record<string, unknown>;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const FINISHED = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** Polls GET /v1/jobs/{id} until `until` holds (by default: the job ended). */
export async function waitForJob(
  t: TestApp,
  id: string,
  until: (job: JobBody) => boolean = (job) => FINISHED.includes(job.status),
  timeoutMs = 300_000,
): Promise<JobBody> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.http().get(`/v1/jobs/${id}`).set(t.auth('monitor'));
    assert.equal(res.status, 200, res.text);
    const job = res.body as JobBody;
    if (until(job)) return job;
    if (FINISHED.includes(job.status))
      throw new Error(`job ${id} ended ${job.status} before the expected state: ${JSON.stringify(job)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for job ${id}: ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a job with POST and waits for it to end; asserts the 202 and Location. */
export async function runJob(
  t: TestApp,
  path: string,
  body: object,
  role: 'operator' | 'admin' = 'operator',
): Promise<JobBody> {
  const res = await t.http().post(path).set(t.auth(role)).send(body);
  assert.equal(res.status, 202, res.text);
  assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
  return waitForJob(t, res.body.id);
}
