import { Injectable } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { ProcessRunner } from '../../common/process/process-runner';
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
    for (const line of lines) {
      // One command per line: a newline inside one would smuggle in another command.
      if (hasControlCharacter(line))
        throw new JobFailure('bacula-invalid-command', 'A bconsole command held a control character.');
    }
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
