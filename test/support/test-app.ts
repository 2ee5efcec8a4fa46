import 'reflect-metadata';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import request, { type Response as SupertestResponse, type Test } from 'supertest';
import { createApp } from '../../src/app.factory';
import { sha256Hex } from '../../src/auth/token-store';
import type { AppConfig } from '../../src/config/app-config';
import { loadConfig } from '../../src/config/load-config';
import { validateResponse } from './openapi-validator';

export const TOKENS = {
  monitor: 'monitor-token-0123456789',
  operator: 'operator-token-0123456789',
  admin: 'admin-token-0123456789',
};

export interface TestApp {
  app: NestExpressApplication;
  config: AppConfig;
  root: string;
  /** Every log line the app wrote, raw. */
  logs: string[];
  http: () => ReturnType<typeof request>;
  auth: (role: keyof typeof TOKENS) => { Authorization: string };
  close: () => Promise<void>;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'apiscp-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes a token file holding the three test tokens' digests and returns its path. */
export function writeTokensFile(dir: string): string {
  const file = join(dir, 'tokens.json');
  writeFileSync(
    file,
    JSON.stringify(
      Object.entries(TOKENS).map(([role, token]) => ({ name: `${role}-bot`, role, sha256: sha256Hex(token) })),
    ),
  );
  return file;
}

/**
 * Starts the whole application in-process on temporary directories. `env` overrides variables of the configuration
 * contract; VIRTUAL_ROOT defaults to an empty directory under the test root.
 */
export async function startTestApp(env: Record<string, string> = {}, root = tempDir()): Promise<TestApp> {
  mkdirSync(join(root, 'virtual'), { recursive: true });
  const config = loadConfig({
    VIRTUAL_ROOT: join(root, 'virtual'),
    DATA_DIR: join(root, 'data'),
    APNSCP_ROOT: join(root, 'apnscp'),
    API_TOKENS_FILE: writeTokensFile(root),
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'debug',
    ...env,
  });
  // nestjs-pino keeps the logger for lines written outside a request per process: point it at this app's.
  __resetOutOfContextForTests();
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const app = await createApp(config, { logDestination: destination as unknown as NodeJS.WritableStream });
  await app.init();
  const server = app.getHttpServer();
  return {
    app,
    config,
    root,
    logs,
    http: () => checkedAgent(request(server)),
    auth: (role) => ({ Authorization: `Bearer ${TOKENS[role]}` }),
    close: async () => {
      await app.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const HTTP_VERBS = new Set(['get', 'head', 'post', 'put', 'patch', 'delete', 'options']);

/** supertest, with every answer checked against the committed spec (a mismatch fails the request's promise). */
function checkedAgent(agent: ReturnType<typeof request>): ReturnType<typeof request> {
  return new Proxy(agent, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !HTTP_VERBS.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => checkedTest((value as (...a: unknown[]) => Test).apply(target, args));
    },
  });
}

function checkedTest(test: Test): Test {
  const end = test.end.bind(test);
  test.end = (callback?: (error: unknown, res: SupertestResponse) => void) =>
    end((error: unknown, res: SupertestResponse) => {
      if (!error && res) {
        try {
          validateResponse(observed(test, res));
        } catch (mismatch) {
          callback?.(mismatch, res);
          return;
        }
      }
      callback?.(error, res);
    });
  return test;
}

export function observed(test: Test, res: SupertestResponse) {
  const request = test as unknown as { method: string; url: string };
  const body: unknown = res.body;
  const text =
    typeof res.text === 'string'
      ? res.text
      : Buffer.isBuffer(body)
        ? body.toString('utf8')
        : body !== undefined && body !== null && Object.keys(body).length > 0
          ? JSON.stringify(body)
          : undefined;
  return {
    method: request.method.toUpperCase(),
    // As sent: supertest keeps `..` segments in the request line, so the server saw them too.
    path: request.url.replace(/^[a-z]+:\/\/[^/]+/i, ''),
    status: res.status,
    headers: res.headers as Record<string, string>,
    // An empty text stays the empty string: the validator tells an empty text/plain answer (a queued job's log) from
    // no body at all.
    text,
  };
}
