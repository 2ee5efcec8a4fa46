import { Injectable } from '@nestjs/common';
import { roleAllows, type Principal } from '../auth/role';
import { BackupSubjects } from '../backup-subjects/backup-subjects';
import { Clock } from '../common/clock';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import type { Job } from '../jobs/job';
import { JobEngine, type JobRun } from '../jobs/job-engine';
import { JobHandler } from '../jobs/job-handler';
import { JobFailure } from '../jobs/job-failure';
import { PoliciesService } from '../policies/policies.service';
import type { RestorePoint } from '../providers/backup-provider';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { SiteDirectory } from '../sites/site-directory';
import type { SiteRef } from '../sites/site-ref';
import { PruneMetrics } from './prune-metrics';
import { planRetention } from './retention-rules';

export interface PruneParams {
  provider: string;
  dryRun: boolean;
}

/** A point as a prune result lists it. */
function brief(point: RestorePoint, reason: string) {
  return { id: point.id, time: point.time, level: point.level, reason };
}

/**
 * Prune jobs: re-read the engine's restore points, let the policy's retention decide (retention-rules.ts), and have
 * the provider remove the rest. A prune is a job of its site, so it never runs beside that site's backup or restore.
 */
@JobHandler('prune')
@Injectable()
export class PruneService implements JobHandler {
  constructor(
    private readonly engine: JobEngine,
    private readonly registry: ProviderRegistry,
    private readonly sites: SiteDirectory,
    private readonly subjects: BackupSubjects,
    private readonly restorePoints: RestorePointsService,
    private readonly policies: PoliciesService,
    private readonly clock: Clock,
    private readonly metrics: PruneMetrics,
  ) {}

  async start(ref: SiteRef, body: { provider?: string; dryRun?: boolean }, by: Principal): Promise<Job> {
    const site = await this.sites.resolve(ref);
    const dryRun = body.dryRun ?? false;
    if (!dryRun && !roleAllows(by.role, 'admin')) {
      throw new AppError(
        ErrorCode.Forbidden,
        'Removing restore points needs an admin token; a dry run needs operator.',
      );
    }
    const effective = this.policies.effectiveForSite(site.id);
    if (!effective.policy) {
      throw new AppError(ErrorCode.PolicyRequired, `${site.id} has no backup policy, so nothing says what to keep.`);
    }
    return this.enqueue(site.id, body.provider ?? effective.policy.provider, dryRun, by.name);
  }

  /** The prune that follows a scheduled backup (synchronous: written in the slot's transaction). */
  enqueueScheduled(site: string, provider: string): Job {
    return this.enqueue(site, provider, false, 'schedule');
  }

  private enqueue(site: string, providerName: string, dryRun: boolean, by: string): Job {
    const provider = this.registry.get(providerName);
    if (!provider.prune) {
      throw new AppError(ErrorCode.LevelNotSupported, `${provider.name} cannot remove restore points.`);
    }
    const params: PruneParams = { provider: provider.name, dryRun };
    return this.engine.enqueue({
      kind: 'prune',
      site,
      provider: provider.name,
      level: null,
      params: { ...params },
      requestedBy: by,
      steps: ['restore-points', 'plan', ...(dryRun ? [] : ['prune', 'refresh'])],
    });
  }

  async run(run: JobRun): Promise<Record<string, unknown>> {
    const params = run.job.params as unknown as PruneParams;
    const provider = this.registry.get(params.provider);
    const site = run.job.site!;
    const subject = await this.subjects.resolve(site);
    const points = await run.step(
      'restore-points',
      () => this.restorePoints.refresh(provider, subject, run),
      (list) => `${list.length} restore point(s)`,
    );
    // Points a killed prune had removed are counted now (the engine no longer lists them).
    const carried = params.dryRun
      ? 0
      : this.metrics.settlePending(site, provider.name, new Set(points.map((p) => p.id)));
    const { policy } = this.policies.effectiveForSite(site);
    if (!policy) throw new JobFailure('policy-required', `${site} has no backup policy any more`);
    const now = this.clock.now();
    const plan = await run.step(
      'plan',
      () => Promise.resolve(planRetention(points, policy.retention, now, provider.pruneUnit ?? 'point')),
      (result) => `keep ${result.keep.length}, remove ${result.remove.length} (policy ${policy.name})`,
    );
    const result = {
      dryRun: params.dryRun,
      policy: policy.id,
      evaluatedAt: now.toISOString(),
      remove: plan.remove.map((entry) => brief(entry.point, entry.reason)),
      keep: plan.keep.map((entry) => brief(entry.point, entry.reason)),
      untouched: plan.untouched.map((point) => point.id),
    };
    if (params.dryRun) return result;

    // A prune killed midway (Bacula: jobs deleted, their volumes not yet purged) is finished by the next one.
    const work =
      plan.remove.length > 0 || plan.untouched.length > 0 || ((await provider.prunePending?.(subject)) ?? false);
    if (work)
      this.metrics.notePending(
        site,
        provider.name,
        plan.remove.map((entry) => entry.point.id),
      );
    const outcome = !work
      ? { bytesFreed: 0, notes: ['nothing to remove'] }
      : await run.step('prune', () =>
          provider.prune!(
            {
              subject,
              remove: plan.remove.map((entry) => entry.point),
              keep: plan.keep.map((entry) => entry.point),
              leftovers: plan.untouched,
            },
            run,
          ),
        );
    if (!work) {
      run.skipStep('prune', 'nothing to remove');
      run.skipStep('refresh', 'nothing was removed');
    }
    // Nothing removed: the points just read are current, so no second scan of the engine.
    const after = !work
      ? points
      : await run.step(
          'refresh',
          () => this.restorePoints.refresh(provider, subject, run),
          (list) => `${list.length} restore point(s)`,
        );
    const present = new Map(after.map((point) => [point.id, point]));
    const lost = plan.keep.filter((entry) => present.get(entry.point.id)?.state !== 'complete');
    if (lost.length > 0) {
      throw new JobFailure(
        'prune-lost-kept-point',
        `kept point(s) no longer complete after the prune: ${lost.map((e) => e.point.id).join(', ')}`,
      );
    }
    const removed = plan.remove.filter((entry) => !present.has(entry.point.id));
    this.metrics.settlePending(site, provider.name, new Set(present.keys()));
    this.metrics.record(site, provider.name, plan.keep.length, outcome.bytesFreed);
    const notes =
      carried > 0 ? [`${carried} point(s) a killed prune removed are counted now`, ...outcome.notes] : outcome.notes;
    return {
      ...result,
      removed: removed.map((entry) => brief(entry.point, entry.reason)),
      bytesFreed: outcome.bytesFreed,
      notes,
    };
  }

  /**
   * A prune the service died in: clear what the engine's killed run left (duplicity's archive lock), and forget the
   * site's listing, which may name points the prune already removed (the next read or restore scans again).
   */
  async recover(job: Job): Promise<void> {
    if (!job.site || !job.provider) return;
    const subject = this.subjects.listingSubject(job.site);
    await this.registry.get(job.provider).recover?.(subject);
    if (!(job.params as unknown as PruneParams).dryRun) this.restorePoints.forget(job.provider, subject.key);
  }
}
