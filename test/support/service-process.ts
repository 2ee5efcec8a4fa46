import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TOKENS } from './test-app';

const MAIN = join(__dirname, '..', '..', '..', 'dist', 'main.js');

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
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: port, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let attempt = 0; ; attempt++) {
    const ok = await fetch(`${url}/readyz`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ok) break;
    if (attempt > 150 || child.exitCode !== null) throw new Error(`service did not become ready:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    url,
    output: () => output,
    call: async (method, path, body) => {
      const res = await fetch(`${url}${path}`, {
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
