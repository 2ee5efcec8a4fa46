import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import type { PageCheck } from './http-checker';

export const ASSURANCE_STATUSES = ['preparing', 'ready', 'confirming', 'confirmed', 'rolled-back', 'failed'] as const;
export type AssuranceStatus = (typeof ASSURANCE_STATUSES)[number];

export interface Assurance {
  id: string;
  site: string;
  app: string;
  host: string | null;
  urlPath: string;
  shrink: number;
  status: AssuranceStatus;
  snapshot: string | null;
  baseline: PageCheck | null;
  lastCheck: PageCheck | null;
  reasons: string[];
  prepareJob: string | null;
  confirmJob: string | null;
  createdBy: string | null;
  createdAt: string;
  finishedAt: string | null;
}

interface Row {
  id: string;
  site: string;
  app: string;
  host: string | null;
  url_path: string;
  shrink: number;
  status: string;
  snapshot: string | null;
  baseline: string | null;
  last_check: string | null;
  reasons: string | null;
  prepare_job: string | null;
  confirm_job: string | null;
  created_by: string | null;
  created_at: string;
  finished_at: string | null;
}

function toAssurance(row: Row): Assurance {
  return {
    id: row.id,
    site: row.site,
    app: row.app,
    host: row.host,
    urlPath: row.url_path,
    shrink: row.shrink,
    status: row.status as AssuranceStatus,
    snapshot: row.snapshot,
    baseline: row.baseline ? (JSON.parse(row.baseline) as PageCheck) : null,
    lastCheck: row.last_check ? (JSON.parse(row.last_check) as PageCheck) : null,
    reasons: row.reasons ? (JSON.parse(row.reasons) as string[]) : [],
    prepareJob: row.prepare_job,
    confirmJob: row.confirm_job,
    createdBy: row.created_by,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** Update Assurance records in the catalog: one per pre-update snapshot, its baseline, and how it ended. */
@Injectable()
export class AssuranceStore {
  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  insert(values: {
    site: string;
    app: string;
    host: string | null;
    urlPath: string;
    shrink: number;
    createdBy: string;
  }): Assurance {
    const id = randomUUID();
    this.catalog
      .statement(
        `INSERT INTO webapp_assurances (id, site, app, host, url_path, shrink, status, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, 'preparing', ?, ?)`,
      )
      .run(id, values.site, values.app, values.host, values.urlPath, values.shrink, values.createdBy, this.clock.iso());
    return this.get(id)!;
  }

  get(id: string): Assurance | undefined {
    const row = this.catalog.statement('SELECT * FROM webapp_assurances WHERE id = ?').get(id) as Row | undefined;
    return row ? toAssurance(row) : undefined;
  }

  setJob(id: string, column: 'prepare_job' | 'confirm_job', jobId: string): void {
    this.catalog.statement(`UPDATE webapp_assurances SET ${column} = ? WHERE id = ?`).run(jobId, id);
  }

  /** Moves the record from one of `from` to `to`; false when it was elsewhere (a concurrent confirm). */
  transition(
    id: string,
    from: readonly AssuranceStatus[],
    to: AssuranceStatus,
    patch: { snapshot?: string; baseline?: PageCheck; lastCheck?: PageCheck; reasons?: string[] } = {},
  ): boolean {
    const finished = ['confirmed', 'rolled-back', 'failed'].includes(to) ? this.clock.iso() : null;
    const result = this.catalog
      .statement(
        `UPDATE webapp_assurances SET status = ?,
           snapshot = COALESCE(?, snapshot), baseline = COALESCE(?, baseline), last_check = COALESCE(?, last_check),
           reasons = COALESCE(?, reasons), finished_at = COALESCE(?, finished_at)
         WHERE id = ? AND status IN (${from.map(() => '?').join(', ')})`,
      )
      .run(
        to,
        patch.snapshot ?? null,
        patch.baseline ? JSON.stringify(patch.baseline) : null,
        patch.lastCheck ? JSON.stringify(patch.lastCheck) : null,
        patch.reasons ? JSON.stringify(patch.reasons) : null,
        finished,
        id,
        ...from,
      );
    return result.changes === 1;
  }

  /** Ended assurances per final status, for /metrics. */
  outcomes(): Array<{ status: string; count: number }> {
    return this.catalog
      .statement(
        `SELECT status, COUNT(*) AS count FROM webapp_assurances WHERE status IN ('confirmed', 'rolled-back', 'failed') GROUP BY status`,
      )
      .all() as Array<{ status: string; count: number }>;
  }
}
