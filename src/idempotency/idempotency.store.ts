import { Injectable } from '@nestjs/common';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';

export interface StoredOutcome {
  fingerprint: string;
  statusCode: number;
  jobId: string;
}

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

@Injectable()
export class IdempotencyStore {
  constructor(
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  find(principal: string, key: string): StoredOutcome | undefined {
    const cutoff = new Date(this.clock.now().getTime() - IDEMPOTENCY_TTL_MS).toISOString();
    const row = this.catalog
      .statement(
        'SELECT fingerprint, status_code AS statusCode, job_id AS jobId FROM idempotency_keys WHERE principal = ? AND key = ? AND created_at >= ?',
      )
      .get(principal, key, cutoff) as StoredOutcome | undefined;
    return row;
  }

  save(principal: string, key: string, outcome: StoredOutcome): void {
    const now = this.clock.now();
    this.catalog.transaction(() => {
      this.catalog
        .statement('DELETE FROM idempotency_keys WHERE created_at < ?')
        .run(new Date(now.getTime() - IDEMPOTENCY_TTL_MS).toISOString());
      this.catalog
        .statement(
          `INSERT INTO idempotency_keys (principal, key, fingerprint, status_code, job_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(principal, key) DO UPDATE SET fingerprint = excluded.fingerprint, status_code = excluded.status_code,
             job_id = excluded.job_id, created_at = excluded.created_at`,
        )
        .run(principal, key, outcome.fingerprint, outcome.statusCode, outcome.jobId, now.toISOString());
    });
  }
}
