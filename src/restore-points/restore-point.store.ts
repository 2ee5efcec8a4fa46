import { Injectable } from '@nestjs/common';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import type { RestorePoint, RestorePointState } from '../providers/backup-provider';
import type { BackupLevel } from '../jobs/backup-level';
import type { ProviderName } from '../config/app-config';

interface Row {
  provider: ProviderName;
  id: string;
  time: string;
  level: BackupLevel;
  chain: string;
  bytes: number | null;
  files: number | null;
  state: RestorePointState;
  replay_sets: number | null;
  replay_bytes: number | null;
}

/** The catalog's copy of each provider's restore points, so listing never runs a backup tool. */
@Injectable()
export class RestorePointStore {
  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  replace(provider: string, subject: string, points: RestorePoint[]): void {
    const insert = this.catalog.statement(
      `INSERT INTO restore_points (provider, subject, id, time, level, chain, bytes, files, state, replay_sets,
         replay_bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.catalog.transaction(() => {
      this.catalog.statement('DELETE FROM restore_points WHERE provider = ? AND subject = ?').run(provider, subject);
      for (const point of points) {
        insert.run(
          provider,
          subject,
          point.id,
          point.time,
          point.level,
          JSON.stringify(point.chain),
          point.bytes,
          point.files,
          point.state,
          point.replay?.sets ?? null,
          point.replay?.bytes ?? null,
        );
      }
      this.catalog
        .statement(
          `INSERT INTO restore_point_scans (provider, subject, scanned_at) VALUES (?, ?, ?)
         ON CONFLICT(provider, subject) DO UPDATE SET scanned_at = excluded.scanned_at`,
        )
        .run(provider, subject, this.clock.iso());
    });
  }

  /** Drops a listing known to be out of date: the next read scans the engine again. */
  forget(provider: string, subject: string): void {
    this.catalog.transaction(() => {
      this.catalog.statement('DELETE FROM restore_points WHERE provider = ? AND subject = ?').run(provider, subject);
      this.catalog
        .statement('DELETE FROM restore_point_scans WHERE provider = ? AND subject = ?')
        .run(provider, subject);
    });
  }

  scannedAt(provider: string, subject: string): string | undefined {
    const row = this.catalog
      .statement('SELECT scanned_at FROM restore_point_scans WHERE provider = ? AND subject = ?')
      .get(provider, subject) as { scanned_at: string } | undefined;
    return row?.scanned_at;
  }

  /** Newest first; `before` is an exclusive (time, id) bound for paging. */
  list(
    subject: string,
    options: { provider?: string; before?: { time: string; id: string }; limit: number },
  ): RestorePoint[] {
    const args: Array<string | number> = [subject];
    let sql = 'SELECT * FROM restore_points WHERE subject = ?';
    if (options.provider) {
      sql += ' AND provider = ?';
      args.push(options.provider);
    }
    if (options.before) {
      sql += ' AND (time < ? OR (time = ? AND id < ?))';
      args.push(options.before.time, options.before.time, options.before.id);
    }
    sql += ' ORDER BY time DESC, id DESC LIMIT ?';
    args.push(options.limit);
    return (this.catalog.statement(sql).all(...args) as Row[]).map(toPoint);
  }

  get(subject: string, id: string): RestorePoint | undefined {
    const row = this.catalog.statement('SELECT * FROM restore_points WHERE subject = ? AND id = ?').get(subject, id) as
      Row | undefined;
    return row && toPoint(row);
  }
}

function toPoint(row: Row): RestorePoint {
  return {
    id: row.id,
    provider: row.provider,
    time: row.time,
    level: row.level,
    chain: JSON.parse(row.chain) as string[],
    bytes: row.bytes,
    files: row.files,
    state: row.state,
    replay:
      row.replay_sets === null
        ? { sets: (JSON.parse(row.chain) as string[]).length, bytes: null }
        : { sets: row.replay_sets, bytes: row.replay_bytes },
  };
}
