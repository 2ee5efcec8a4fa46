import { Injectable, Logger } from '@nestjs/common';
import { decodeCursor, encodeCursor, type Page } from '../common/pagination/page';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import type { BackupProvider, BackupSubject, JobContext, RestorePoint } from '../providers/backup-provider';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointStore } from './restore-point.store';

const DEFAULT_LIMIT = 100;

@Injectable()
export class RestorePointsService {
  private readonly logger = new Logger(RestorePointsService.name);
  private readonly firstScans = new Map<string, Promise<void>>();

  constructor(
    private readonly store: RestorePointStore,
    private readonly registry: ProviderRegistry,
  ) {}

  /** Re-reads a provider's points for a subject into the catalog (after every backup). */
  async refresh(provider: BackupProvider, subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const points = await provider.scanRestorePoints(subject, context);
    this.store.replace(provider.name, subject.key, points);
    return points;
  }

  async list(
    subject: BackupSubject,
    query: { provider?: string; cursor?: string; limit?: number },
  ): Promise<Page<RestorePoint>> {
    await this.ensureScanned(subject, query.provider);
    const limit = query.limit ?? DEFAULT_LIMIT;
    const before = query.cursor
      ? decodeCursor(
          query.cursor,
          (value): value is { time: string; id: string } =>
            typeof value === 'object' &&
            value !== null &&
            typeof (value as { time?: unknown }).time === 'string' &&
            typeof (value as { id?: unknown }).id === 'string',
        )
      : undefined;
    const items = this.store.list(subject.key, { provider: query.provider, before, limit: limit + 1 });
    const more = items.length > limit;
    const page = items.slice(0, limit);
    const last = page.at(-1);
    return { items: page, nextCursor: more && last ? encodeCursor({ time: last.time, id: last.id }) : null };
  }

  /** A restorable point of the subject, or a 404/422 that says why not. */
  async get(subject: BackupSubject, id: string): Promise<RestorePoint> {
    await this.ensureScanned(subject);
    const point = this.store.get(subject.key, id);
    if (!point)
      throw new AppError(
        ErrorCode.RestorePointNotFound,
        `${subject.key} has no restore point ${JSON.stringify(id.slice(0, 80))}.`,
      );
    return point;
  }

  /** The first listing of a subject reads the engines once; after that only backups refresh the catalog. */
  private async ensureScanned(subject: BackupSubject, only?: string): Promise<void> {
    const providers = this.registry.all().filter((provider) => !only || provider.name === only);
    await Promise.all(
      providers
        .filter((provider) => this.store.scannedAt(provider.name, subject.key) === undefined)
        .map((provider) => {
          const key = `${provider.name}:${subject.key}`;
          let scan = this.firstScans.get(key);
          if (!scan) {
            scan = this.refresh(provider, subject)
              .then(() => undefined)
              .catch((error: unknown) =>
                this.logger.warn(
                  { err: error, subject: subject.key, provider: provider.name },
                  'first restore-point scan failed',
                ),
              )
              .finally(() => this.firstScans.delete(key));
            this.firstScans.set(key, scan);
          }
          return scan;
        }),
    );
  }
}
