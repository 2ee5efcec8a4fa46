import { Injectable } from '@nestjs/common';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import type { PointFile, PointFileType } from '../providers/backup-provider';

/** The `dir` under which a whole point's index is recorded as listed. */
export const WHOLE_POINT = '\u0000all';

interface PointFileRow {
  dir: string;
  name: string;
  type: PointFileType;
  size: number | null;
  mode: number | null;
  uid: number | null;
  gid: number | null;
  mtime: string | null;
  target: string | null;
}

export interface PointKey {
  provider: string;
  subject: string;
  point: string;
}

/** Restore points' file listings in the catalog: written once per point (or per directory), then range reads. */
@Injectable()
export class PointFileStore {
  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  isListed(key: PointKey, dir: string): boolean {
    return (
      this.catalog
        .statement('SELECT 1 FROM point_file_listings WHERE provider = ? AND subject = ? AND point = ? AND dir = ?')
        .get(key.provider, key.subject, key.point, dir) !== undefined
    );
  }

  /** Replaces the entries of one directory, or of the whole point (`dir` = WHOLE_POINT), in one transaction. */
  replace(key: PointKey, dir: string, entries: PointFile[]): void {
    const insert = this.catalog.statement(
      `INSERT OR REPLACE INTO point_files (provider, subject, point, dir, name, type, size, mode, uid, gid, mtime, target)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.catalog.transaction(() => {
      if (dir === WHOLE_POINT) {
        this.catalog
          .statement('DELETE FROM point_files WHERE provider = ? AND subject = ? AND point = ?')
          .run(key.provider, key.subject, key.point);
      } else {
        this.catalog
          .statement('DELETE FROM point_files WHERE provider = ? AND subject = ? AND point = ? AND dir = ?')
          .run(key.provider, key.subject, key.point, dir);
      }
      for (const e of entries) {
        insert.run(
          key.provider,
          key.subject,
          key.point,
          e.dir,
          e.name,
          e.type,
          e.size,
          e.mode,
          e.uid,
          e.gid,
          e.mtime,
          e.target,
        );
      }
      this.catalog
        .statement(
          'INSERT OR REPLACE INTO point_file_listings (provider, subject, point, dir, listed_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(key.provider, key.subject, key.point, dir, this.clock.iso());
    });
  }

  entry(key: PointKey, dir: string, name: string): PointFile | undefined {
    return this.catalog
      .statement('SELECT * FROM point_files WHERE provider = ? AND subject = ? AND point = ? AND dir = ? AND name = ?')
      .get(key.provider, key.subject, key.point, dir, name) as PointFileRow | undefined;
  }

  /** One page of a directory's entries by name; the primary key's order makes it an index range read. */
  page(key: PointKey, dir: string, offset: number, limit: number): PointFile[] {
    return this.catalog
      .statement(
        `SELECT * FROM point_files WHERE provider = ? AND subject = ? AND point = ? AND dir = ?
         ORDER BY name LIMIT ? OFFSET ?`,
      )
      .all(key.provider, key.subject, key.point, dir, limit, offset) as PointFileRow[];
  }
}
