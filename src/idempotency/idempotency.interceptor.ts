import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { from, lastValueFrom, type Observable } from 'rxjs';
import type { Principal } from '../auth/role';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { JobEngine } from '../jobs/job-engine';
import { toJobModel, type JobModel } from '../jobs/job.model';
import { canonicalJson } from './canonical-json';
import { IdempotencyStore } from './idempotency.store';

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on a POST that starts a job: the same key with the same request within 24 hours answers with the
 * original job instead of starting another; the same key with a different request is a 422. Keys are per token.
 * Requests are compared by meaning: the body as canonical JSON, so reordered keys or other spacing are the same request.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  /** Requests under way, so a concurrent retry waits for the first instead of racing it. */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: IdempotencyStore,
    private readonly engine: JobEngine,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request & { principal?: Principal }>();
    const res = context.switchToHttp().getResponse<Response>();
    const header = req.headers['idempotency-key'];
    if (header === undefined) return next.handle();
    if (typeof header !== 'string' || !KEY.test(header)) {
      throw new AppError(ErrorCode.ValidationFailed, 'Idempotency-Key must be 1 to 255 printable ASCII characters.', {
        errors: [{ field: 'header.idempotency-key', messages: ['must be 1 to 255 printable ASCII characters'] }],
      });
    }
    const principal = req.principal?.name ?? 'anonymous';
    const fingerprint = createHash('sha256')
      .update(`${req.method} ${req.path}\n${canonicalJson(req.body ?? null)}`)
      .digest('hex');
    const slot = `${principal}\0${header}`;
    return from(this.handle(slot, principal, header, fingerprint, res, () => lastValueFrom(next.handle())));
  }

  private async handle(
    slot: string,
    principal: string,
    key: string,
    fingerprint: string,
    res: Response,
    run: () => Promise<unknown>,
  ): Promise<unknown> {
    // Wait for an identical request that is still running, then answer from what it stored.
    while (this.inFlight.has(slot)) await this.inFlight.get(slot)!.catch(() => undefined);
    const stored = this.store.find(principal, key);
    if (stored) {
      if (stored.fingerprint !== fingerprint) {
        throw new AppError(
          ErrorCode.IdempotencyKeyReused,
          'This Idempotency-Key was used with a different request in the last 24 hours; use a new key.',
        );
      }
      const job = this.engine.get(stored.jobId);
      res.status(stored.statusCode);
      res.setHeader('Location', `/v1/jobs/${job.id}`);
      res.setHeader('Idempotent-Replayed', 'true');
      return toJobModel(job);
    }
    const work = run();
    this.inFlight.set(slot, work);
    try {
      const body = (await work) as JobModel;
      if (body && typeof body.id === 'string')
        this.store.save(principal, key, { fingerprint, statusCode: res.statusCode, jobId: body.id });
      return body;
    } finally {
      this.inFlight.delete(slot);
    }
  }
}
