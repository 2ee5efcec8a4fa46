import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { execa, type Options, type ResultPromise } from 'execa';
import { writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { currentProcessTag, PROCESS_TAG_ENV } from './process-tag';
import { redactSecrets } from './redact';

export type OutputStream = 'stdout' | 'stderr' | 'log';

export interface RunRequest {
  command: string;
  args: readonly string[];
  /** The child's whole environment beyond PATH/LANG: nothing is inherited from the service. */
  env?: Record<string, string>;
  cwd?: string;
  /** Text written to the child's stdin; stdin is closed (not inherited) otherwise. */
  input?: string;
  /** A stream piped into the child's stdin as it is written, for a conversation (a bconsole session); not with `input`. */
  stdin?: Readable;
  /** Aborting it stops the whole process group: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  timeoutMs?: number;
  killGraceMs?: number;
  /** Values to redact from every recorded line and from the command description. */
  secrets?: readonly string[];
  /** Opens fd 3 as a pipe whose lines arrive as stream `log` (duplicity's --log-fd 3). */
  logFd?: boolean;
  /** Every line of stdout, stderr and the log fd, already redacted, as it arrives. */
  onLine?: (stream: OutputStream, line: string) => void;
  /** Keep stdout lines in memory for the result (bounded by `maxCapturedBytes`); off for streaming callers. */
  captureStdout?: boolean;
  maxCapturedBytes?: number;
  /**
   * Raw stdout bytes go here (with backpressure) instead of being read as lines: for dumps. It is ended when stdout
   * ends; if it fails, the process group is stopped and the failure is reported as `stdoutError`.
   */
  stdoutTo?: Writable;
  onSpawn?: (pid: number) => void;
  /**
   * A child a client is waiting on as it runs (a download's tar): keeps the service's priority instead of niceness
   * 10 in a niced autogroup, which on a busy server slowed a download tenfold. It still is a group of its own.
   */
  interactive?: boolean;
}

export interface RunResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  /** Captured stdout (redacted), when asked for. */
  stdout: string;
  /** The last lines of stderr (redacted), for error messages. */
  stderrTail: string;
  durationMs: number;
  pid: number | undefined;
  /** Why `stdoutTo` failed (e.g. disk full), when it did. */
  stdoutError?: string;
}

const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const STDERR_TAIL_LINES = 40;
/** Backup tools yield the CPU to the hosted sites and to this API (process and autogroup niceness). */
export const CHILD_NICENESS = 10;

/**
 * `detached` makes each child a session leader, and with sched_autogroup (on in Debian's kernels) every session is
 * its own scheduling group: niceness then only ranks processes inside it, and four backups took four fifths of the
 * CPU from this API (event-loop stalls of 100-230 ms, p99 of status polls near 1 s). The group's own niceness is what
 * yields. No autogroup (disabled, another kernel): nothing to do.
 */
function lowerAutogroup(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(CHILD_NICENESS));
  } catch {
    // no autogroup support, or the child already exited
  }
}

/**
 * The one door to child processes: argument arrays only (never a shell), an explicit environment, output read as
 * line streams (never buffered whole), a process group so cancel stops the whole tree, and secrets redacted.
 */
@Injectable()
export class ProcessRunner implements OnApplicationShutdown {
  private readonly logger = new Logger(ProcessRunner.name);
  private readonly live = new Map<number, () => void>();

  describe(command: string, args: readonly string[], secrets: readonly string[] = []): string {
    return redactSecrets([command, ...args].map(quoteArg).join(' '), secrets);
  }

  async run(request: RunRequest): Promise<RunResult> {
    const started = Date.now();
    const secrets = request.secrets ?? [];
    const killGraceMs = request.killGraceMs ?? 5000;
    const stdoutLines: string[] = [];
    let capturedBytes = 0;
    const maxCaptured = request.maxCapturedBytes ?? 32 * 1024 * 1024;
    const stderrTail: string[] = [];
    let cancelled = false;
    let timedOut = false;

    const child: ResultPromise = execa(request.command, [...request.args], {
      env: { PATH: BASE_PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', ...request.env, ...tagEnvironment() },
      extendEnv: false,
      cwd: request.cwd,
      detached: true,
      reject: false,
      buffer: false,
      stripFinalNewline: false,
      input: request.input,
      stdio: [
        request.input === undefined && !request.stdin ? 'ignore' : 'pipe',
        'pipe',
        'pipe',
        ...(request.logFd ? ['pipe'] : []),
      ],
      cleanup: true,
    } as unknown as Options);
    if (request.stdin && child.stdin) {
      // A child that exits first closes the pipe: what is still written goes nowhere, and that is no failure.
      child.stdin.on('error', () => undefined);
      request.stdin.pipe(child.stdin);
    }

    const pid = child.pid;
    const killGroup = (): void => {
      if (pid === undefined) return;
      signalGroup(pid, 'SIGTERM');
      const hard = setTimeout(() => signalGroup(pid, 'SIGKILL'), killGraceMs);
      hard.unref();
      void child.finally(() => clearTimeout(hard)).catch(() => undefined);
    };
    if (pid !== undefined) {
      this.live.set(pid, killGroup);
      // Backup tools yield the CPU to the hosted sites and to this API; their children inherit it.
      if (!request.interactive) {
        try {
          setPriority(pid, CHILD_NICENESS);
        } catch {
          // already exited
        }
        lowerAutogroup(pid);
      }
      request.onSpawn?.(pid);
    }

    const onAbort = (): void => {
      cancelled = true;
      killGroup();
    };
    if (request.signal?.aborted) onAbort();
    else request.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      request.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            killGroup();
          }, request.timeoutMs)
        : undefined;

    const readers: Promise<void>[] = [];
    const read = (stream: Readable | null | undefined, name: OutputStream): void => {
      if (!stream) return;
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      readers.push(
        (async () => {
          for await (const raw of lines) {
            const line = redactSecrets(raw, secrets);
            if (name === 'stdout' && request.captureStdout && capturedBytes < maxCaptured) {
              stdoutLines.push(line);
              capturedBytes += line.length + 1;
            }
            if (name === 'stderr') {
              stderrTail.push(line);
              if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
            }
            request.onLine?.(name, line);
          }
        })().catch(() => undefined),
      );
    };
    let stdoutError: string | undefined;
    if (request.stdoutTo && child.stdout) {
      readers.push(
        pipeline(child.stdout, request.stdoutTo).catch((error: unknown) => {
          // A child still running would block on a pipe nobody reads.
          if (!cancelled) {
            stdoutError = redactSecrets(error instanceof Error ? error.message : String(error), secrets);
            killGroup();
          }
        }),
      );
    } else {
      read(child.stdout, 'stdout');
    }
    read(child.stderr, 'stderr');
    if (request.logFd) read(child.stdio[3], 'log');

    const result = await child;
    // The leader is gone; whatever it started in its group must not outlive a cancel or a timeout.
    if ((cancelled || timedOut) && pid !== undefined) signalGroup(pid, 'SIGKILL');
    await Promise.all(readers);
    if (timer) clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
    if (pid !== undefined) this.live.delete(pid);
    // A failure to start (ENOENT) comes back as a result with no exit code; report it like a shell would.
    const spawnFailed = result.exitCode === undefined && !result.signal;
    if (spawnFailed)
      stderrTail.push(redactSecrets(String(result.originalMessage ?? result.message ?? 'spawn failed'), secrets));
    return {
      exitCode: spawnFailed ? 127 : (result.exitCode ?? null),
      signal: result.signal ?? null,
      timedOut,
      cancelled,
      stdout: stdoutLines.join('\n'),
      stderrTail: stderrTail.join('\n'),
      durationMs: Date.now() - started,
      pid,
      ...(stdoutError !== undefined ? { stdoutError } : {}),
    };
  }

  /**
   * Stops every child still running, so none outlives the service. No grace is left to give at shutdown: the process
   * is about to exit, and an escalation timer with it.
   */
  private killAllNow(): number {
    const count = this.live.size;
    for (const pid of this.live.keys()) signalGroup(pid, 'SIGKILL');
    return count;
  }

  onApplicationShutdown(): void {
    const killed = this.killAllNow();
    if (killed > 0) this.logger.warn(`stopped ${killed} child process group(s) on shutdown`);
  }
}

/** A job's children carry its id (process-tag.ts), so a restarted service finds every one a dead run left. */
function tagEnvironment(): Record<string, string> {
  const tag = currentProcessTag();
  return tag === undefined ? {} : { [PROCESS_TAG_ENV]: tag };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
