import { Inject, Injectable } from '@nestjs/common';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import { BACKUP_PROVIDERS, type BackupProvider, type ProviderStatus } from './backup-provider';
import { type BackupLevel } from '../jobs/backup-level';

const STATUS_TTL_MS = 15_000;

/** The enabled providers, by name. */
@Injectable()
export class ProviderRegistry {
  private readonly byName: Map<string, BackupProvider>;
  private readonly statuses = new Map<string, { at: number; value: Promise<ProviderStatus> }>();

  constructor(
    @Inject(BACKUP_PROVIDERS) providers: BackupProvider[],
    private readonly config: AppConfig,
  ) {
    this.byName = new Map(providers.map((provider) => [provider.name, provider]));
  }

  /**
   * A provider's status, cached briefly: probing runs the engine's binary (or asks a director), far too slow to do on
   * every request or scrape.
   */
  status(provider: BackupProvider): Promise<ProviderStatus> {
    const cached = this.statuses.get(provider.name);
    if (cached && Date.now() - cached.at < STATUS_TTL_MS) return cached.value;
    const value = provider.status().catch((error: unknown): ProviderStatus => ({
      available: false,
      version: null,
      reason: error instanceof Error ? error.message : String(error),
      warnings: [],
    }));
    this.statuses.set(provider.name, { at: Date.now(), value });
    return value;
  }

  all(): BackupProvider[] {
    return [...this.byName.values()];
  }

  /** The named provider, or the default one; 422 when it is not enabled. */
  get(name?: string): BackupProvider {
    const wanted = name ?? this.config.defaultProvider;
    const provider = this.byName.get(wanted);
    if (!provider) {
      throw new AppError(
        ErrorCode.ProviderNotEnabled,
        `Provider ${JSON.stringify(wanted)} is not enabled here; enabled: ${[...this.byName.keys()].join(', ')}.`,
      );
    }
    return provider;
  }

  /** The provider, checked to support `level`; 422 otherwise. */
  forLevel(name: string | undefined, level: BackupLevel): BackupProvider {
    const provider = this.get(name);
    const refusal =
      provider.refuseLevel?.(level) ??
      (provider.levels.includes(level)
        ? undefined
        : `${provider.name} supports ${provider.levels.join(', ')}, not ${level}.`);
    if (refusal) throw new AppError(ErrorCode.LevelNotSupported, refusal);
    return provider;
  }
}
