import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freeListenPort } from './ports';
import { checkedFetch } from './openapi-validator';
import type { JobBody } from './jobs';
import { TOKENS } from './test-app';

const MAIN = join(__dirname, '..', '..', '..', 'dist', 'main.js');

/** The node flags production starts the service with (Dockerfile CMD, `npm start`; a unit test keeps them equal). */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=2', '--optimize-for-size'];

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses of any route
  call: (method: string, path: string, body?: object) => Promise<{ status: number; body: Record<string, any> }>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Runs the built service (dist/main.js) as its own process, as `npm start` would, and waits until it is ready. */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const port = String(await freeListenPort());
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, MAIN], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: port, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Start-up on a loaded machine can take a while: the deadline only bounds a failure.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      if (child.exitCode === null) child.kill('SIGKILL');
      throw new Error(`service did not become ready:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    url,
    output: () => output,
    call: async (method, path, body) => {
      const res = await checkedFetch(`${url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${TOKENS.admin}`, 'Content-Type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

const FINISHED = ['succeeded', 'failed', 'cancelled', 'interrupted'];

const ended = (job: JobBody): boolean => FINISHED.includes(job.status);

/**
 * Reads a service process's GET /v1/jobs/{id} until `until` holds (by default: the job ended, waited for with the
 * long poll `waitSeconds`, as a client would; any other state is polled for).
 */
export async function waitForServiceJob(
  service: ServiceProcess,
  id: string,
  until: (job: JobBody) => boolean = ended,
  timeoutMs = 120_000,
): Promise<JobBody> {
  const deadline = Date.now() + timeoutMs;
  const query = until === ended ? '?waitSeconds=60' : '';
  for (;;) {
    const res = await service.call('GET', `/v1/jobs/${id}${query}`);
    if (res.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${res.status} ${JSON.stringify(res.body)}`);
    const job = res.body as JobBody;
    if (until(job)) return job;
    if (FINISHED.includes(job.status))
      throw new Error(`job ${id} ended ${job.status} before the expected state: ${JSON.stringify(job)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for job ${id}: ${JSON.stringify(job)}`);
    if (!query) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
