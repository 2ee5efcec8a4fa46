import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import type { ProcessRunner } from '../common/process/process-runner';
import type { ScopeStore } from './scope-store';

const CPCMD_TIMEOUT_MS = 30_000;

/** Scope values read and written through the panel's `cpcmd scope:get|set`. */
export class CpcmdScopeStore implements ScopeStore {
  readonly source = 'apiscp' as const;

  constructor(
    private readonly runner: ProcessRunner,
    private readonly cpcmd: string,
  ) {}

  async get(name: string): Promise<string | undefined> {
    const output = await this.cpcmdCall(['-o', 'json', 'scope:get', name]);
    return output.trim();
  }

  async set(name: string, value: string): Promise<void> {
    await this.cpcmdCall(['scope:set', name, value]);
  }

  private async cpcmdCall(args: string[]): Promise<string> {
    const result = await this.runner.run({
      command: this.cpcmd,
      args,
      captureStdout: true,
      timeoutMs: CPCMD_TIMEOUT_MS,
    });
    if (result.exitCode !== 0) {
      const reason = result.timedOut ? 'timed out' : `exited ${result.exitCode ?? result.signal}`;
      throw new AppError(
        ErrorCode.ScopeStoreFailed,
        `cpcmd ${args.filter((arg) => arg !== '-o' && arg !== 'json').join(' ')} ${reason}: ${result.stderrTail.slice(-300) || result.stdout.slice(-300)}`,
      );
    }
    return result.stdout;
  }
}
