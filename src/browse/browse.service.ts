import { Injectable } from '@nestjs/common';
import { assertPointIdShape, parseArchivePath } from '../archive/archive-path';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { decodeCursor, encodeCursor, type Page } from '../common/pagination/page';
import type { BackupProvider, BackupSubject, PointFile, RestorePoint } from '../providers/backup-provider';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { subjectOf, type Site } from '../sites/site';
import type { PointFileModel } from './browse.model';
import { PointFileStore, WHOLE_POINT, type PointKey } from './point-file.store';

const DEFAULT_LIMIT = 100;

/**
 * Browsing restore points: duplicity's whole listing is indexed into the catalog on the first request for a point
 * (callers at the same moment share that one run); Bacula's bvfs answers per directory, and each answer is kept.
 * After that a directory is one index range read in the catalog.
 */
@Injectable()
export class BrowseService {
  private readonly indexing = new Map<string, Promise<void>>();

  constructor(
    private readonly store: PointFileStore,
    private readonly restorePoints: RestorePointsService,
    private readonly registry: ProviderRegistry,
  ) {}

  async list(
    site: Site,
    pointId: string,
    query: { path: string; cursor?: string; limit?: number },
  ): Promise<Page<PointFileModel>> {
    const dir = parseArchivePath(query.path).join('/');
    assertPointIdShape(pointId);
    const subject = subjectOf(site);
    const point = await this.restorePoints.get(subject, pointId);
    const provider = this.registry.get(point.provider);
    const key: PointKey = { provider: provider.name, subject: subject.key, point: point.id };
    await this.ensureListed(provider, subject, point, key, dir);
    const offset = query.cursor
      ? decodeCursor(
          query.cursor,
          (value): value is { o: number } =>
            typeof value === 'object' && value !== null && Number.isInteger((value as { o?: unknown }).o),
        ).o
      : 0;
    const limit = query.limit ?? DEFAULT_LIMIT;
    const rows = this.store.page(key, dir, offset, limit + 1);
    const items = rows.slice(0, limit).map((row) => toModel(row));
    return { items, nextCursor: rows.length > limit ? encodeCursor({ o: offset + limit }) : null };
  }

  private async ensureListed(
    provider: BackupProvider,
    subject: BackupSubject,
    point: RestorePoint,
    key: PointKey,
    dir: string,
  ): Promise<void> {
    const notADirectory = () =>
      new AppError(ErrorCode.ArchivePathNotFound, `${dir} was not a directory at ${point.id}.`);
    if (provider.listPointFiles) {
      await this.indexOnce(key, () => provider.listPointFiles!(subject, point));
      const slash = dir.lastIndexOf('/');
      const self = this.store.entry(key, slash < 0 ? '' : dir.slice(0, slash), dir.slice(slash + 1));
      if (self?.type !== 'dir') throw notADirectory();
      return;
    }
    if (provider.listPointDirectory) {
      if (this.store.isListed(key, dir)) return;
      const entries = await this.listing(() => provider.listPointDirectory!(subject, point, dir));
      if (entries === null) throw notADirectory();
      this.store.replace(key, dir, entries);
      return;
    }
    throw new AppError(ErrorCode.ListingNotSupported, `${provider.name} cannot list the files of a restore point.`);
  }

  private async indexOnce(key: PointKey, read: () => Promise<PointFile[]>): Promise<void> {
    if (this.store.isListed(key, WHOLE_POINT)) return;
    const id = `${key.provider}\u0000${key.subject}\u0000${key.point}`;
    let running = this.indexing.get(id);
    if (!running) {
      running = this.listing(read)
        .then((entries) => this.store.replace(key, WHOLE_POINT, entries))
        .finally(() => this.indexing.delete(id));
      this.indexing.set(id, running);
    }
    await running;
  }

  /** An engine failure while listing is a 502 that says why, not a 500. */
  private async listing<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      throw new AppError(
        ErrorCode.ArchiveRestoreFailed,
        `listing failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

function toModel(row: PointFile): PointFileModel {
  return {
    name: row.name,
    path: row.dir ? `${row.dir}/${row.name}` : row.name,
    type: row.type,
    size: row.size,
    mode: row.mode === null ? null : row.mode.toString(8).padStart(4, '0'),
    uid: row.uid,
    gid: row.gid,
    mtime: row.mtime,
    target: row.target,
  };
}
