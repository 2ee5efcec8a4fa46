import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../../src/common/errors/app-error';
import { ErrorCode } from '../../../src/common/errors/error-code';
import type { RunRequest, RunResult } from '../../../src/common/process/process-runner';
import { FakeRunner } from '../../support/fake-runner';
import { loadConfig } from '../../../src/config/load-config';
import { JobFailure } from '../../../src/jobs/job-failure';
import { BconsoleClient } from '../../../src/providers/bacula/bconsole-client';
import { fixture } from './bacula-fixtures';

/** A runner that prints canned output (the Bacula fixtures), and remembers what it was asked to run. */
function canned({ output, ...result }: Partial<Omit<RunResult, 'stdout'>> & { output: string }): FakeRunner {
  return FakeRunner.printing(output, result);
}

const GREETING = ['Connecting to Director 127.0.0.1:9101', '1000 OK: 103 t-dir Version: 9.6.7 (10 December 2020)'];

/**
 * Plays an interactive bconsole: prints the greeting, then echoes every line it reads from stdin and prints the
 * reply `replies` gives for it, as the real one does, until stdin ends (or `exitAfter` lines were read).
 */
function conversing(
  replies: (line: string) => string[] | Promise<string[]>,
  options: { greeting?: string[]; exitAfter?: number } = {},
): FakeRunner {
  return new FakeRunner(async (request: RunRequest) => {
    const print = (line: string) => request.onLine?.('stdout', line);
    (options.greeting ?? GREETING).forEach(print);
    let read = 0;
    // A question (`OK to run? (yes/mod/no): `) ends without a newline: the next echo follows it on its line.
    let question = '';
    for await (const line of createInterface({ input: request.stdin! })) {
      if (request.signal?.aborted) return { cancelled: true, exitCode: null };
      if (options.exitAfter !== undefined && read++ >= options.exitAfter) return { exitCode: 1 };
      print(`${question}${line}`);
      const reply = await replies(line);
      question = reply.at(-1)?.endsWith(': ') ? reply.pop()! : '';
      reply.forEach(print);
    }
    return { exitCode: request.signal?.aborted ? null : 0, cancelled: request.signal?.aborted ?? false };
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function rejection(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

describe('BconsoleClient', () => {
  let dir: string;
  let conf: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bconsole-client-'));
    conf = join(dir, 'bconsole.conf');
    writeFileSync(
      conf,
      `Director {\n  Name = t-dir\n  DIRport = ${await closedPort()}\n  address = 127.0.0.1\n  Password = "secret"\n}\n`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const client = (runner: FakeRunner): BconsoleClient =>
    new BconsoleClient(
      runner.asProcessRunner(),
      loadConfig({ BACULA_BCONSOLE_CONFIG: conf, BACULA_TIMEOUT_SECONDS: '7' }),
    );

  it('sends the commands on stdin, one a line, with the configured timeout, and returns the whole transcript', async () => {
    const runner = canned({ output: fixture('run-queued.txt') });
    const text = await client(runner).command(['run job=apiscp-site12 level=Full yes']);
    assert.match(text, /Job queued\. JobId=1/);
    assert.equal(runner.requests[0].command, 'bconsole');
    assert.deepEqual(runner.requests[0].args, ['-n', '-c', conf]);
    assert.equal(runner.requests[0].input, 'run job=apiscp-site12 level=Full yes\n');
    assert.equal(runner.requests[0].timeoutMs, 7000);
  });

  it('refuses a command holding a newline, which would smuggle in another command', async () => {
    const runner = canned({ output: '' });
    const error = await rejection(() => client(runner).command(['show job=x\ndelete jobid=1']));
    assert.ok(error instanceof JobFailure && error.code === 'bacula-invalid-command');
    assert.equal(runner.requests.length, 0);
  });

  it('explains a stopped director with the probe of its port, whatever bconsole exited with', async () => {
    const error = await rejection(() =>
      client(canned({ output: fixture('bconsole-director-down.txt'), exitCode: 1 })).command(['version']),
    );
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, ErrorCode.ProviderUnavailable);
    assert.match(error.detail, /^The Bacula director at 127\.0\.0\.1:\d+ refuses connections \(is it running\?\)\.$/);
    const probe = await client(canned({ output: '' })).probeDirector();
    assert.equal(probe.reachable, false);
    assert.equal(probe.failure, 'refused');
  });

  it('names a wrong password, a missing bconsole and a broken configuration', async () => {
    const password = await rejection(() =>
      client(canned({ output: fixture('bconsole-bad-password.txt'), exitCode: 1 })).command(['version']),
    );
    assert.ok(password instanceof AppError);
    assert.match(password.detail, /refused bconsole's login: the password in .*bconsole\.conf does not match/);
    const missing = await rejection(() => client(canned({ output: '', exitCode: 127 })).command(['version']));
    assert.ok(missing instanceof AppError);
    assert.match(missing.detail, /bconsole is not installed/);
    const broken = await rejection(() =>
      client(
        canned({
          output: 'Config error: Cannot open config file "/x": No such file or directory',
          exitCode: 1,
        }),
      ).command(['version']),
    );
    assert.ok(broken instanceof AppError);
    assert.match(broken.detail, /bconsole cannot use .*: Cannot open config file/);
  });

  it('reports a command that outlives its timeout after the director answered', async () => {
    const error = await rejection(() =>
      client(canned({ output: fixture('wait-ok.txt').split('wait')[0], timedOut: true, exitCode: null })).command([
        'estimate job=x',
      ]),
    );
    assert.ok(error instanceof JobFailure);
    assert.equal(error.code, 'bacula-timeout');
    assert.match(error.message, /`estimate job=x` within 7 s/);
  });

  it('turns a cancelled run into the abort reason', async () => {
    const controller = new AbortController();
    const reason = new JobFailure('cancelled', 'by the test');
    controller.abort(reason);
    const error = await rejection(() =>
      client(canned({ output: '', cancelled: true, exitCode: null })).command(['wait jobid=1'], {
        signal: controller.signal,
      }),
    );
    assert.equal(error, reason);
  });

  describe('an open session', () => {
    it('runs exchanges one after the other on one bconsole, each reply ending where it ends', async () => {
      const runner = conversing((line) =>
        line.startsWith('.status')
          ? ['Running Jobs:', 'No Jobs running.', '====']
          : line.startsWith('run')
            ? ['Job queued. JobId=4']
            : [],
      );
      const session = await client(runner).open();
      const [run, status] = await Promise.all([
        session.send(['run job=apiscp-site1 level=Full yes']),
        session.send(['.status dir running']),
      ]);
      assert.equal(run, 'run job=apiscp-site1 level=Full yes\nJob queued. JobId=4');
      assert.equal(status, '.status dir running\nRunning Jobs:\nNo Jobs running.\n====');
      await session.close();
      assert.equal(runner.requests.length, 1, 'one bconsole for the whole session');
      assert.equal(runner.requests[0].input, undefined);
      assert.deepEqual(runner.requests[0].args, ['-n', '-c', conf]);
    });

    it('ends a reply that asks a question, whose echo of the next line follows on the same line', async () => {
      const session = await client(
        conversing((line) =>
          line.startsWith('restore')
            ? ['1 file selected to be restored.', 'OK to run? (yes/mod/no): ']
            : line === 'yes'
              ? ['Job queued. JobId=9']
              : [],
        ),
      ).open();
      const asked = await session.send(['restore jobid=1 file="/a" where="/b"']);
      assert.match(asked, /1 file selected to be restored\.\nOK to run\? \(yes\/mod\/no\): $/);
      assert.equal(await session.send(['yes']), 'yes\nJob queued. JobId=9');
      await session.close();
    });

    it('refuses a command holding a newline, and sends nothing of it', async () => {
      const seen: string[] = [];
      const session = await client(conversing((line) => (seen.push(line), []))).open();
      const error = await rejection(() => session.send(['list jobs\ndelete jobid=1']));
      assert.ok(error instanceof JobFailure);
      assert.equal(error.code, 'bacula-invalid-command');
      await session.close();
      assert.ok(!seen.some((line) => /delete/.test(line)), seen.join(' | '));
    });

    it('explains a session the director refuses at login, as a single command does', async () => {
      const error = await rejection(() =>
        client(
          conversing(() => [], { greeting: fixture('bconsole-bad-password.txt').split('\n'), exitAfter: 0 }),
        ).open(),
      );
      assert.ok(error instanceof AppError, String(error));
      assert.equal(error.code, ErrorCode.ProviderUnavailable);
      assert.match(error.detail, /refused bconsole's login/);
    });

    it('fails the exchange under way, and every later one, when bconsole ends mid-session', async () => {
      // Three lines: the login's marker, then `version` and its marker.
      const session = await client(conversing(() => [], { exitAfter: 3 })).open();
      await session.send(['version']);
      const error = await rejection(() => session.send(['.status dir running']));
      assert.ok(error instanceof JobFailure);
      assert.equal(error.code, 'bacula-session-ended');
      const later = await rejection(() => session.send(['version']));
      assert.ok(later instanceof JobFailure);
    });

    it('stops bconsole when an exchange outlives its timeout', async () => {
      let answer: () => void = () => undefined;
      const runner = conversing((line) =>
        line.startsWith('estimate') ? new Promise<string[]>((resolve) => (answer = () => resolve([]))) : [],
      );
      const session = await client(runner).open();
      const error = await rejection(() => session.send(['estimate job=x'], { timeoutMs: 1 }));
      assert.ok(error instanceof JobFailure);
      assert.equal(error.code, 'bacula-timeout');
      assert.match(error.message, /`estimate job=x` within 0 s/);
      assert.equal(runner.requests[0].signal?.aborted, true, 'bconsole is stopped');
      answer();
      await session.abandon();
    });
  });
});
