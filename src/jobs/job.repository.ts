import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import type { Job, JobError, JobKind, JobProgress, JobStatus, JobStep, NewJob } from './job';
import { isRetryableCode } from './job-error-codes';

interface JobRow {
  id: string;
  seq: number;
  kind: JobKind;
  site: string | null;
  provider: string | null;
  level: string | null;
  status: JobStatus;
  phase: string | null;
  percent: number | null;
  bytes: number | null;
  steps: string;
  params: string;
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  requested_by: string | null;
  pid: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface JobFilter {
  site?: string;
  kind?: JobKind;
  status?: JobStatus;
  provider?: string;
  since?: string;
  until?: string;
  /** Only jobs with seq below this (newest-first paging). */
  beforeSeq?: number;
  limit: number;
}

/** Jobs in the catalog. Every write is one short statement; nothing here blocks for long. */
@Injectable()
export class JobRepository {
  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  insert(job: NewJob): Job {
    const id = randomUUID();
    const steps: JobStep[] = (job.steps ?? []).map((name) => ({
      name,
      status: 'pending',
      startedAt: null,
      finishedAt: null,
      detail: null,
    }));
    this.catalog.transaction(() => {
      const { next } = this.catalog.statement('SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM jobs').get() as {
        next: number;
      };
      this.catalog
        .statement(
          `INSERT INTO jobs (id, seq, kind, site, provider, level, status, steps, params, requested_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
        )
        .run(
          id,
          next,
          job.kind,
          job.site,
          job.provider,
          job.level,
          JSON.stringify(steps),
          JSON.stringify(job.params),
          job.requestedBy,
          this.clock.iso(),
        );
    });
    return this.get(id)!;
  }

  get(id: string): Job | undefined {
    const row = this.catalog.statement('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row && toJob(row);
  }

  /** Queued jobs, first come first served. */
  queued(): Job[] {
    return (this.catalog.statement(`SELECT * FROM jobs WHERE status = 'queued' ORDER BY seq`).all() as JobRow[]).map(
      toJob,
    );
  }

  byStatus(status: JobStatus): Job[] {
    return (this.catalog.statement('SELECT * FROM jobs WHERE status = ? ORDER BY seq').all(status) as JobRow[]).map(
      toJob,
    );
  }

  /** The newest succeeded backup job of a site, per provider. */
  lastSuccessfulBackups(site: string): Job[] {
    return (
      this.catalog
        .statement(
          `SELECT * FROM jobs WHERE seq IN (
             SELECT MAX(seq) FROM jobs WHERE site = ? AND kind = 'backup' AND status = 'succeeded' GROUP BY provider
           ) ORDER BY provider`,
        )
        .all(site) as JobRow[]
    ).map(toJob);
  }

  countActive(kind: JobKind): number {
    const row = this.catalog
      .statement(`SELECT COUNT(*) AS n FROM jobs WHERE kind = ? AND status IN ('queued', 'running')`)
      .get(kind) as { n: number };
    return row.n;
  }

  /** Queued and running jobs of a site, oldest first. */
  active(site: string): Job[] {
    return (
      this.catalog
        .statement(`SELECT * FROM jobs WHERE site = ? AND status IN ('queued', 'running') ORDER BY seq`)
        .all(site) as JobRow[]
    ).map(toJob);
  }

  list(filter: JobFilter): Job[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      args.push(value);
    };
    add('site = ?', filter.site);
    add('kind = ?', filter.kind);
    add('status = ?', filter.status);
    add('provider = ?', filter.provider);
    add('created_at >= ?', filter.since);
    add('created_at < ?', filter.until);
    add('seq < ?', filter.beforeSeq);
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    return (this.catalog.statement(sql).all(...args, filter.limit) as JobRow[]).map(toJob);
  }

  /** Moves a job from one status to another only if it is still in `from`; returns whether it moved. */
  transition(
    id: string,
    from: JobStatus[],
    to: JobStatus,
    extra: { error?: JobError | null; result?: unknown } = {},
  ): boolean {
    const now = this.clock.iso();
    const finished = to === 'succeeded' || to === 'failed' || to === 'cancelled' || to === 'interrupted';
    const info = this.catalog
      .statement(
        `UPDATE jobs SET status = ?,
           started_at = CASE WHEN ? = 'running' THEN ? ELSE started_at END,
           finished_at = CASE WHEN ? THEN ? ELSE finished_at END,
           error_code = COALESCE(?, error_code), error_message = COALESCE(?, error_message),
           result = COALESCE(?, result),
           pid = CASE WHEN ? THEN NULL ELSE pid END
         WHERE id = ? AND status IN (${from.map(() => '?').join(', ')})`,
      )
      .run(
        to,
        to,
        now,
        finished ? 1 : 0,
        now,
        extra.error?.code ?? null,
        extra.error?.message ?? null,
        extra.result === undefined ? null : JSON.stringify(extra.result),
        finished ? 1 : 0,
        id,
        ...from,
      );
    return info.changes === 1;
  }

  saveProgress(id: string, progress: JobProgress): void {
    this.catalog
      .statement('UPDATE jobs SET phase = ?, percent = ?, bytes = ? WHERE id = ?')
      .run(progress.phase, progress.percent, progress.bytes, id);
  }

  saveSteps(id: string, steps: JobStep[]): void {
    this.catalog.statement('UPDATE jobs SET steps = ? WHERE id = ?').run(JSON.stringify(steps), id);
  }

  /**
   * Deletes jobs that ended before `before` and returns their ids. The newest successful job of each kind, site and
   * provider stays whatever its age: it is the "last successful backup" that status pages and alerts read. What is
   * deleted is added to forgotten_job_totals, so the job counters in /metrics never go down.
   */
  deleteFinishedBefore(before: string): string[] {
    return this.catalog.transaction(() => {
      const rows = this.catalog
        .statement(
          `DELETE FROM jobs
           WHERE status IN ('succeeded', 'failed', 'cancelled', 'interrupted') AND finished_at < ?
             AND id NOT IN (
               SELECT id FROM (
                 SELECT id, ROW_NUMBER() OVER (
                   PARTITION BY kind, COALESCE(site, ''), COALESCE(provider, '') ORDER BY finished_at DESC, seq DESC
                 ) AS newest
                 FROM jobs WHERE status = 'succeeded'
               ) WHERE newest = 1
             )
           RETURNING id, kind, COALESCE(provider, '') AS provider, status, started_at IS NOT NULL AS started`,
        )
        .all(before) as Array<{ id: string; kind: string; provider: string; status: string; started: number }>;
      const count = this.catalog.statement(
        `INSERT INTO forgotten_job_totals (kind, provider, status, started, finished) VALUES (?, ?, ?, ?, 1)
         ON CONFLICT (kind, provider, status) DO UPDATE
           SET started = started + excluded.started, finished = finished + 1`,
      );
      for (const row of rows) count.run(row.kind, row.provider, row.status, row.started);
      return rows.map((row) => row.id);
    });
  }

  savePid(id: string, pid: number | null): void {
    this.catalog.statement('UPDATE jobs SET pid = ? WHERE id = ?').run(pid, id);
  }
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    seq: row.seq,
    kind: row.kind,
    site: row.site,
    provider: row.provider,
    level: row.level,
    status: row.status,
    progress: { phase: row.phase, percent: row.percent, bytes: row.bytes },
    steps: JSON.parse(row.steps) as JobStep[],
    params: JSON.parse(row.params) as Record<string, unknown>,
    result: row.result ? (JSON.parse(row.result) as Record<string, unknown>) : null,
    error: row.error_code
      ? { code: row.error_code, message: row.error_message ?? '', retryable: isRetryableCode(row.error_code) }
      : null,
    requestedBy: row.requested_by,
    pid: row.pid,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
