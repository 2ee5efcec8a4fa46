import { Injectable, Logger } from '@nestjs/common';
import { decodeCursor, DEFAULT_PAGE_LIMIT, encodeCursor, type Page } from '../common/pagination/page';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import type { BackupProvider, BackupSubject, RestorePoint, SetSize } from '../providers/backup-provider';
import type { JobContext } from '../jobs/job-context';
import { ProviderRegistry } from '../providers/provider-registry';
import type { ListingState, ProviderListingModel } from './restore-point.model';
import { RestorePointStore } from './restore-point.store';

/** Engine scans started for listings run at most this many at a time, whatever the number of sites asked about. */
export const SCAN_CONCURRENCY = 2;
/** A failed scan is not retried for this long: a burst of reads against a dead target starts one process, not hundreds. */
export const SCAN_FAILURE_MEMORY_MS = 5 * 60_000;

/**
 * Restore points from the catalog. Reads never wait on an engine: a subject never scanned gets one background scan
 * (one per subject and provider at a time, SCAN_CONCURRENCY in all, a failure remembered for a while) and the
 * answer says the listing is not scanned yet.
 */
@Injectable()
export class RestorePointsService {
  private readonly logger = new Logger(RestorePointsService.name);
  private readonly scans = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, { at: number; message: string }>();
  private scanSlots = SCAN_CONCURRENCY;
  private readonly slotWaiters: Array<() => void> = [];

  constructor(
    private readonly store: RestorePointStore,
    private readonly registry: ProviderRegistry,
  ) {}

  /**
   * Re-reads a provider's points for a subject into the catalog (after every backup); `listed` is a listing the
   * backup itself just read from the engine, which spares the engine a second one.
   */
  async refresh(
    provider: BackupProvider,
    subject: BackupSubject,
    context?: JobContext,
    listed?: RestorePoint[],
  ): Promise<RestorePoint[]> {
    const scanned = listed ?? (await provider.scanRestorePoints(subject, context));
    const sizes = (await provider.measureSets?.(subject).catch(() => undefined)) ?? new Map<string, SetSize>();
    const points = withReplay(scanned, sizes);
    this.store.replace(provider.name, subject.key, points);
    return points;
  }

  /**
   * Forgets the catalog's points of a provider and subject (a prune killed midway removed some of them): reads
   * answer "scanning" and restores wait for a fresh scan, instead of offering points the engine no longer has.
   */
  forget(provider: string, subject: string): void {
    this.store.forget(provider, subject);
  }

  /** The catalog's points of a provider and subject, newest first, without asking the engine. */
  cached(provider: string, subject: string): RestorePoint[] {
    return this.store.list(subject, { provider, limit: 10_000 });
  }

  list(
    subject: BackupSubject,
    query: { provider?: string; cursor?: string; limit?: number },
  ): Promise<Page<RestorePoint> & { listings: ProviderListingModel[] }> {
    const listings = this.listingsOf(subject, query.provider);
    const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
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
    return Promise.resolve({
      items: page,
      nextCursor: more && last ? encodeCursor({ time: last.time, id: last.id }) : null,
      listings,
    });
  }

  /** Each provider's listing state; a never-scanned one gets a background scan (under the limits) and says so. */
  private listingsOf(subject: BackupSubject, only?: string): ProviderListingModel[] {
    return this.registry
      .all()
      .filter((provider) => !only || provider.name === only)
      .map((provider) => {
        const scannedAt = this.store.scannedAt(provider.name, subject.key) ?? null;
        const key = `${provider.name}:${subject.key}`;
        if (scannedAt === null) void this.scanOnce(provider, subject);
        const failure = this.failures.get(key);
        const state: ListingState =
          scannedAt !== null
            ? 'scanned'
            : this.scans.has(key)
              ? 'scanning'
              : failure
                ? 'scan-failed'
                : 'not-yet-scanned';
        return { provider: provider.name, state, scannedAt, error: failure?.message ?? null };
      });
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

  /** Before a restore: a never-scanned subject is scanned (waiting, but under the same limits as listings). */
  private async ensureScanned(subject: BackupSubject): Promise<void> {
    await Promise.all(
      this.registry
        .all()
        .filter((provider) => this.store.scannedAt(provider.name, subject.key) === undefined)
        .map((provider) => this.scanOnce(provider, subject)),
    );
  }

  /**
   * One scan of a never-scanned subject: joins a scan already running for it, does nothing while a recent failure
   * is remembered, and waits for one of SCAN_CONCURRENCY slots. Never rejects.
   */
  private scanOnce(provider: BackupProvider, subject: BackupSubject): Promise<void> {
    const key = `${provider.name}:${subject.key}`;
    const running = this.scans.get(key);
    if (running) return running;
    const failure = this.failures.get(key);
    if (failure && Date.now() - failure.at < SCAN_FAILURE_MEMORY_MS) return Promise.resolve();
    const scan = this.withScanSlot(() => this.refresh(provider, subject))
      .then(() => {
        this.failures.delete(key);
      })
      .catch((error: unknown) => {
        this.failures.set(key, { at: Date.now(), message: error instanceof Error ? error.message : String(error) });
        this.logger.warn({ err: error, subject: subject.key, provider: provider.name }, 'restore-point scan failed');
      })
      .finally(() => this.scans.delete(key));
    this.scans.set(key, scan);
    return scan;
  }

  private async withScanSlot<T>(work: () => Promise<T>): Promise<T> {
    while (this.scanSlots === 0) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.scanSlots--;
    try {
      return await work();
    } finally {
      this.scanSlots++;
      this.slotWaiters.shift()?.();
    }
  }
}

/**
 * Each point with what a restore of it replays: the backups of its chain, and the bytes they hold (the engine's own
 * byte count, or the measured size of the set; null when a member's size is unknown).
 */
export function withReplay(points: readonly RestorePoint[], sizes: ReadonlyMap<string, SetSize>): RestorePoint[] {
  const bytesOf = new Map<string, number | null>();
  for (const point of points) bytesOf.set(point.id, point.bytes ?? sizes.get(point.id)?.bytes ?? null);
  return points.map((point) => {
    let bytes: number | null = 0;
    for (const member of point.chain) {
      const size = bytesOf.get(member);
      bytes = size === undefined || size === null || bytes === null ? null : bytes + size;
    }
    return {
      ...point,
      bytes: point.bytes ?? sizes.get(point.id)?.bytes ?? null,
      replay: { sets: point.chain.length, bytes },
    };
  });
}
