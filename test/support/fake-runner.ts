import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ProcessRunner, type RunRequest, type RunResult } from '../../src/common/process/process-runner';

/** What a faked tool run prints, line by line, and how it ends (a clean exit 0 unless told otherwise). */
export interface FakeRun extends Partial<Omit<RunResult, 'stdout'>> {
  stdout?: string[];
  stderr?: string[];
}

/**
 * Plays a tool's part for unit tests: prints the lines the script returns for each request (through `onLine`, or
 * into `stdoutTo` when the request gives one, as the real runner does, and as `stdout` when the request captures it) and remembers every request, so tests can look at
 * argv and env. The script may be async: a test holds a run open on a promise it settles when it wants the run to
 * end, instead of a delay. Integration tests use the real ProcessRunner.
 */
export class FakeRunner {
  readonly requests: RunRequest[] = [];

  constructor(private readonly script: (request: RunRequest) => FakeRun | Promise<FakeRun>) {}

  /** A runner that prints `output` and ends as `result` says, whatever it is asked. */
  static printing(output: string, result: Partial<Omit<RunResult, 'stdout'>> = {}): FakeRunner {
    return new FakeRunner(() => ({ ...result, stdout: output.split('\n') }));
  }

  /** Typed as what services take. */
  asProcessRunner(): ProcessRunner {
    return this as unknown as ProcessRunner;
  }

  async run(request: RunRequest): Promise<RunResult> {
    this.requests.push(request);
    const { stdout = [], stderr = [], ...result } = await this.script(request);
    if (request.stdoutTo) {
      // As the real runner: raw stdout goes to the stream (ended when stdout ends) instead of being read as lines.
      await pipeline(Readable.from([Buffer.from(stdout.map((line) => `${line}\n`).join(''))]), request.stdoutTo);
    } else {
      for (const line of stdout) request.onLine?.('stdout', line);
    }
    for (const line of stderr) request.onLine?.('stderr', line);
    return {
      exitCode: 0,
      signal: null,
      timedOut: false,
      cancelled: false,
      // The real runner also collects stdout when asked to.
      stdout: request.captureStdout ? stdout.map((line) => `${line}\n`).join('') : '',
      stderrTail: stderr.join('\n'),
      durationMs: 1,
      pid: 1,
      ...result,
    };
  }
}

/**
 * The real ProcessRunner, remembering each request: integration tests check what a service did (which tools it ran,
 * what it fed bconsole) rather than how long it took.
 */
export class RecordingRunner extends ProcessRunner {
  readonly requests: RunRequest[] = [];
  private readonly written = new Map<RunRequest, string[]>();

  override run(request: RunRequest): Promise<RunResult> {
    this.requests.push(request);
    if (request.stdin) {
      const chunks: string[] = [];
      this.written.set(request, chunks);
      request.stdin.on('data', (chunk: Buffer | string) => chunks.push(String(chunk)));
    }
    return super.run(request);
  }

  /** Everything a request gave the child on stdin: its `input`, or what was written to its `stdin` stream. */
  fed(request: RunRequest): string {
    return request.input ?? this.written.get(request)?.join('') ?? '';
  }

  /** The requests of `command` made while `work` ran. */
  async during<T>(command: string, work: () => Promise<T>): Promise<{ value: T; requests: RunRequest[] }> {
    const from = this.requests.length;
    const value = await work();
    return { value, requests: this.requests.slice(from).filter((request) => request.command === command) };
  }
}
