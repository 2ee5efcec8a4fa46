import { Injectable } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import { hasControlCharacter } from './bacula-resources';
import { isAuthorizationFailure, parseConsoleDirector, parseGreeting } from './bconsole-output';

export interface BconsoleOptions {
  /** Default: BACULA_TIMEOUT_SECONDS. `null` waits as long as it takes (`wait jobid=N`). */
  timeoutMs?: number | null;
  /** Aborting kills bconsole (never the Bacula job: that takes `cancel`). */
  signal?: AbortSignal;
  onSpawn?: (pid: number) => void;
}

/** Whether a TCP connection to a daemon's port opens, and why not. */
export interface PortProbe {
  reachable: boolean;
  /** `refused` means nothing listens there: the daemon is down. */
  failure?: 'refused' | 'timeout' | 'unresolved' | 'other';
  reason?: string;
}

const PROBE_TIMEOUT_MS = 3000;

/** What a caller talks to the director through: one bconsole run per call, or an open session. */
export interface BconsoleExchange {
  /** Runs `lines`; the text is everything bconsole printed for them, echoed commands included. */
  send(lines: readonly string[], options?: { timeoutMs?: number | null }): Promise<string>;
}

/**
 * bconsole echoes each line it reads, and reads the next one only when the director has ended its reply to the last
 * (the end-of-command signal; in `.api` mode dot commands still send one, other commands do not). A comment line
 * after the commands therefore comes back exactly when their replies are complete. `@#` lines are bconsole's own
 * comments: the director never sees them.
 */
const MARKER = '@# apiscp-backup-api: end of reply';

/**
 * The one door to the director: runs bconsole with commands on stdin and returns what it printed. bconsole's exit code
 * says little (0 for an unknown job, 1 only after ~15 s when the director is down), so success is judged by the
 * director's greeting in the output, and a failure to connect is explained by a quick TCP probe of its port.
 */
@Injectable()
export class BconsoleClient {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly config: AppConfig,
  ) {}

  /** Runs `lines` in one bconsole session; the text is everything it printed, echoed commands included. */
  async command(lines: readonly string[], options: BconsoleOptions = {}): Promise<string> {
    assertOneLineEach(lines);
    const output: string[] = [];
    const timeoutMs = options.timeoutMs === undefined ? this.config.bacula.timeoutSeconds * 1000 : options.timeoutMs;
    const result = await this.runner.run({
      command: this.config.bacula.bconsole,
      args: ['-n', '-c', this.config.bacula.bconsoleConfig],
      input: `${lines.join('\n')}\n`,
      timeoutMs: timeoutMs ?? undefined,
      signal: options.signal,
      onSpawn: options.onSpawn,
      onLine: (_stream, line) => output.push(line),
    });
    const text = output.join('\n');
    if (result.cancelled) {
      throw options.signal?.reason instanceof Error ? options.signal.reason : new JobFailure('cancelled', 'cancelled');
    }
    if (!parseGreeting(text)) throw await this.connectionFailure(text, result.exitCode, result.timedOut);
    if (result.timedOut) {
      throw new JobFailure(
        'bacula-timeout',
        `bconsole did not finish \`${lines[0]}\` within ${Math.round((timeoutMs ?? 0) / 1000)} s (BACULA_TIMEOUT_SECONDS).`,
      );
    }
    return text;
  }

  /**
   * Opens one bconsole session for several exchanges (one connection and login, where every `command` pays both):
   * a job followed from its `run` to its record. Resolves once the director has greeted it; `close()` ends it.
   */
  async open(options: Pick<BconsoleOptions, 'signal' | 'onSpawn'> = {}): Promise<BconsoleSession> {
    const session = new BconsoleSession(this.config.bacula.timeoutSeconds * 1000, options.signal);
    const ended = this.runner
      .run({
        command: this.config.bacula.bconsole,
        args: ['-n', '-c', this.config.bacula.bconsoleConfig],
        stdin: session.stdin,
        signal: session.signal,
        onSpawn: options.onSpawn,
        onLine: (_stream, line) => session.line(line),
      })
      .then((result) => {
        session.ended(result);
        return result;
      });
    session.attach(ended);
    try {
      const greeting = await session.send([]);
      if (!parseGreeting(greeting)) throw new Error('no greeting');
    } catch (error) {
      const result = await session.abandon();
      if (result.cancelled)
        throw options.signal?.reason instanceof Error
          ? options.signal.reason
          : new JobFailure('cancelled', 'cancelled');
      if (error instanceof JobFailure && error.code === 'bacula-timeout') throw error;
      throw await this.connectionFailure(session.transcript(), result.exitCode, result.timedOut);
    }
    return session;
  }

  /** Where bconsole connects, from BACULA_BCONSOLE_CONFIG; null when the file cannot be read or understood. */
  async directorAddress(): Promise<{ address: string; port: number } | null> {
    const text = await readFile(this.config.bacula.bconsoleConfig, 'utf8').catch(() => null);
    return text === null ? null : parseConsoleDirector(text);
  }

  /** A fast check that the director listens, so a stopped director is reported in milliseconds, not 15 s. */
  async probeDirector(): Promise<PortProbe> {
    const director = await this.directorAddress();
    if (!director) {
      return { reachable: true };
    }
    const probe = await probePort(director.address, director.port);
    if (!probe.reachable) probe.reason = `the Bacula director at ${director.address}:${director.port} ${probe.reason}`;
    return probe;
  }

  /** Throws ProviderUnavailable when nothing listens at the director's address. */
  async assertDirectorListening(): Promise<void> {
    const probe = await this.probeDirector();
    if (!probe.reachable && probe.failure !== 'timeout')
      throw new AppError(ErrorCode.ProviderUnavailable, `${capitalise(probe.reason!)}.`);
  }

  private async connectionFailure(text: string, exitCode: number | null, timedOut: boolean): Promise<Error> {
    const conf = this.config.bacula.bconsoleConfig;
    if (isAuthorizationFailure(text)) {
      return new AppError(
        ErrorCode.ProviderUnavailable,
        `The Bacula director refused bconsole's login: the password in ${conf} does not match the director's.`,
      );
    }
    if (exitCode === 127) {
      return new AppError(ErrorCode.ProviderUnavailable, 'bconsole is not installed (Debian package bacula-console).');
    }
    const configError = /Config error: (.*)/.exec(text);
    if (configError) {
      return new AppError(ErrorCode.ProviderUnavailable, `bconsole cannot use ${conf}: ${configError[1].trim()}`);
    }
    const probe = await this.probeDirector();
    const why = !probe.reachable
      ? probe.reason!
      : timedOut
        ? `the Bacula director did not answer bconsole within ${this.config.bacula.timeoutSeconds} s`
        : `bconsole could not talk to the Bacula director (${lastLines(text) || `exit ${exitCode}`})`;
    return new AppError(ErrorCode.ProviderUnavailable, `${capitalise(why)}.`);
  }
}

/**
 * An open bconsole: exchanges run one after the other, each ended by the echo of MARKER. When bconsole exits (the
 * director went away, the signal aborted it, a timeout) the pending exchange fails, as do later ones.
 */
export class BconsoleSession implements BconsoleExchange {
  readonly stdin = new PassThrough();
  private readonly control = new AbortController();
  /** What bconsole printed since the last reply ended (a session following a long job must not keep every poll). */
  private lines: string[] = [];
  private waiter: { resolve: (text: string) => void; reject: (error: Error) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private run: Promise<RunResult> | null = null;
  /** Set once bconsole has exited or an exchange timed out: every exchange from then on fails with it. */
  private failure: Error | null = null;
  private readonly stopOnOuterAbort = (): void => this.control.abort(this.outer?.reason);

  constructor(
    private readonly defaultTimeoutMs: number,
    private readonly outer?: AbortSignal,
  ) {
    if (outer?.aborted) this.stopOnOuterAbort();
    else outer?.addEventListener('abort', this.stopOnOuterAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.control.signal;
  }

  attach(run: Promise<RunResult>): void {
    this.run = run;
  }

  async send(lines: readonly string[], options: { timeoutMs?: number | null } = {}): Promise<string> {
    assertOneLineEach(lines);
    const exchange = this.queue.then(() => this.exchange(lines, options.timeoutMs));
    this.queue = exchange.catch(() => undefined);
    return exchange;
  }

  /** Ends the session (end of input: bconsole quits) and waits for bconsole to exit. */
  async close(): Promise<void> {
    await this.queue;
    this.stdin.end();
    await this.run;
  }

  /** Stops bconsole at once (it is killed, which never touches a job) and returns how it ended. */
  async abandon(): Promise<RunResult> {
    this.control.abort(new JobFailure('bacula-session-closed', 'The bconsole session was closed.'));
    this.stdin.end();
    return this.run!;
  }

  /** What bconsole printed since the last complete reply (at login: the greeting, or why there was none). */
  transcript(): string {
    return this.lines.join('\n');
  }

  line(line: string): void {
    const trimmed = line.trimEnd();
    if (trimmed.endsWith(MARKER) && this.waiter) {
      // After a question (`OK to run? (yes/mod/no): `, no newline) the echo follows it on the same line.
      const before = trimmed.slice(0, -MARKER.length);
      if (before.trim()) this.lines.push(before);
      const text = this.lines.join('\n');
      this.lines = [];
      this.waiter.resolve(text);
      this.waiter = null;
      return;
    }
    this.lines.push(line);
  }

  ended(result: RunResult): void {
    this.outer?.removeEventListener('abort', this.stopOnOuterAbort);
    const reason = this.outer?.aborted
      ? this.outer.reason instanceof Error
        ? this.outer.reason
        : new JobFailure('cancelled', 'cancelled')
      : new JobFailure(
          'bacula-session-ended',
          `bconsole ended mid-session (${result.timedOut ? 'timeout' : `exit ${result.exitCode ?? result.signal}`}): ` +
            lastLines(this.lines.join('\n')),
        );
    this.failure = reason;
    this.waiter?.reject(reason);
    this.waiter = null;
  }

  private exchange(lines: readonly string[], timeoutMs: number | null | undefined): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const limit = timeoutMs === undefined ? this.defaultTimeoutMs : timeoutMs;
    return new Promise<string>((resolve, reject) => {
      const timer =
        limit === null
          ? undefined
          : setTimeout(() => {
              const failure = new JobFailure(
                'bacula-timeout',
                `bconsole did not finish \`${lines[0] ?? 'its login'}\` within ${Math.round(limit / 1000)} s (BACULA_TIMEOUT_SECONDS).`,
              );
              this.failure = failure;
              reject(failure);
              this.waiter = null;
              this.control.abort(failure);
            }, limit);
      this.waiter = {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.stdin.write(`${[...lines, MARKER].join('\n')}\n`);
    });
  }
}

/** One command per line: a newline inside one would smuggle in another command. */
function assertOneLineEach(lines: readonly string[]): void {
  if (lines.some((line) => hasControlCharacter(line)))
    throw new JobFailure('bacula-invalid-command', 'A bconsole command held a control character.');
}

/** Opens and closes a TCP connection (bacula-fd logs a Security Alert for it: see local-listener.ts). */
export function probePort(address: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<PortProbe> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const finish = (probe: PortProbe): void => {
      socket.destroy();
      resolve(probe);
    };
    socket.setTimeout(timeoutMs, () =>
      finish({ reachable: false, failure: 'timeout', reason: `did not answer within ${timeoutMs / 1000} s` }),
    );
    socket.once('connect', () => finish({ reachable: true }));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED')
        finish({ reachable: false, failure: 'refused', reason: 'refuses connections (is it running?)' });
      else if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN')
        finish({ reachable: false, failure: 'unresolved', reason: `cannot be resolved (${error.code})` });
      else finish({ reachable: false, failure: 'other', reason: `cannot be reached (${error.code ?? error.message})` });
    });
  });
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' / ');
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
