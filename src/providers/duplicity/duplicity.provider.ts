import { Injectable } from '@nestjs/common';
import { ProcessRunner } from '../../common/process/process-runner';
import { AppConfig } from '../../config/app-config';
import type {
  BackupLevel,
  BackupOutcome,
  BackupProvider,
  BackupRequest,
  BackupSubject,
  JobContext,
  ProviderStatus,
  RestoreOutcome,
  RestorePoint,
  RestoreRequest,
} from '../backup-provider';

@Injectable()
export class DuplicityProvider implements BackupProvider {
  readonly name = 'duplicity' as const;
  readonly levels: readonly BackupLevel[] = ['full', 'incremental'];

  constructor(
    private readonly runner: ProcessRunner,
    private readonly config: AppConfig,
  ) {}

  refuseLevel(level: BackupLevel): string | undefined {
    return level === 'differential'
      ? 'duplicity has no differential level: it makes full and incremental backups only. Use bacula for differentials.'
      : undefined;
  }

  async status(): Promise<ProviderStatus> {
    const result = await this.runner.run({
      command: 'duplicity',
      args: ['--version'],
      captureStdout: true,
      timeoutMs: 15_000,
    });
    const warnings = this.config.duplicity.passphraseFile
      ? []
      : ['DUPLICITY_PASSPHRASE_FILE is not set: backups are stored unencrypted (--no-encryption).'];
    if (result.exitCode !== 0) {
      return {
        available: false,
        version: null,
        reason: `duplicity --version failed: ${result.stderrTail || `exit ${result.exitCode}`}`,
        warnings,
      };
    }
    return { available: true, version: /(\d+\.\d+[\w.]*)/.exec(result.stdout)?.[1] ?? result.stdout.trim(), warnings };
  }

  backup(_request: BackupRequest, _context: JobContext): Promise<BackupOutcome> {
    throw new Error('not implemented yet');
  }

  scanRestorePoints(_subject: BackupSubject): Promise<RestorePoint[]> {
    throw new Error('not implemented yet');
  }

  restore(_request: RestoreRequest, _context: JobContext): Promise<RestoreOutcome> {
    throw new Error('not implemented yet');
  }
}
