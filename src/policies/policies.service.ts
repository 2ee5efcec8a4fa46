import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/role';
import { Clock } from '../common/clock';
import { AppError, type FieldError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import type { ProviderName } from '../config/app-config';
import { BACKUP_LEVELS } from '../jobs/backup-level';
import { ProviderRegistry } from '../providers/provider-registry';
import { cronProblem } from '../scheduler/cron-schedule';
import { nextRunsOf, type NextRun } from '../scheduler/next-runs';
import { AppConfig } from '../config/app-config';
import { SiteDirectory } from '../sites/site-directory';
import type { SiteRef } from '../sites/site-ref';
import type { Policy, PolicySource } from './policy';
import type { PolicyBody } from './policy.model';
import { PolicyStore } from './policy.store';

export interface EffectivePolicy {
  site: string;
  source: PolicySource;
  policy: Policy | null;
}

export interface EffectivePolicyWithRuns extends EffectivePolicy {
  nextRuns: NextRun[];
}

/** Policy CRUD, validation beyond field shapes, and which policy applies to a site. */
@Injectable()
export class PoliciesService {
  constructor(
    private readonly store: PolicyStore,
    private readonly registry: ProviderRegistry,
    private readonly sites: SiteDirectory,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  list(): Policy[] {
    return this.store.list();
  }

  get(id: string): Policy {
    const policy = typeof id === 'string' && id.length <= 64 ? this.store.get(id) : undefined;
    if (!policy) throw new AppError(ErrorCode.PolicyNotFound, `No policy ${JSON.stringify(String(id).slice(0, 64))}.`);
    return policy;
  }

  create(body: PolicyBody, _by: Principal): Policy {
    const now = this.clock.iso();
    const policy = this.validated(body, { id: randomUUID(), createdAt: now, updatedAt: now });
    this.store.save(policy);
    return policy;
  }

  replace(id: string, body: PolicyBody, _by: Principal): Policy {
    const existing = this.get(id);
    const policy = this.validated(body, { id, createdAt: existing.createdAt, updatedAt: this.clock.iso() });
    this.store.save(policy);
    return policy;
  }

  delete(id: string): void {
    this.get(id);
    const sites = this.store.sitesUsing(id);
    if (sites.length > 0) {
      throw new AppError(
        ErrorCode.PolicyInUse,
        `The policy is assigned to ${sites.length} site(s) (${sites.slice(0, 5).join(', ')}${sites.length > 5 ? ', …' : ''}); assign them another first.`,
      );
    }
    this.store.delete(id);
  }

  /** The site's policy, where it comes from, and the next scheduled run of each level. */
  async effectiveFor(ref: SiteRef): Promise<EffectivePolicyWithRuns> {
    const site = await this.sites.resolve(ref);
    return this.withRuns(this.effectiveForSite(site.id));
  }

  private withRuns(effective: EffectivePolicy): EffectivePolicyWithRuns {
    const { policy, site } = effective;
    const nextRuns = policy ? nextRunsOf(policy, site, this.clock.now(), this.config.scheduleSpreadMinutes) : [];
    return { ...effective, nextRuns };
  }

  /** The site's own policy, else the default one, else none. Synchronous: the scheduler asks for every site. */
  effectiveForSite(site: string): EffectivePolicy {
    const assigned = this.store.assignment(site);
    const own = assigned ? this.store.get(assigned) : undefined;
    if (own) return { site, source: 'site', policy: own };
    const fallback = this.store.defaultPolicy();
    return fallback ? { site, source: 'default', policy: fallback } : { site, source: 'none', policy: null };
  }

  async assign(ref: SiteRef, policyId: string | null): Promise<EffectivePolicyWithRuns> {
    const site = await this.sites.resolve(ref);
    if (policyId !== null && policyId !== undefined) this.get(policyId);
    this.store.assign(site.id, policyId ?? null, this.clock.iso());
    return this.withRuns(this.effectiveForSite(site.id));
  }

  /** Checks what field decorators cannot: the provider, its levels, cron and zone, a retention that keeps a chain. */
  private validated(body: PolicyBody, meta: Pick<Policy, 'id' | 'createdAt' | 'updatedAt'>): Policy {
    const errors: FieldError[] = [];
    const problem = (field: string, message: string) => errors.push({ field: `body.${field}`, messages: [message] });
    const clash = this.store.byName(body.name);
    if (clash && clash.id !== meta.id) problem('name', `a policy named ${JSON.stringify(body.name)} exists already`);
    const provider = this.registry.all().find((candidate) => candidate.name === body.provider);
    if (!provider) problem('provider', `${body.provider} is not enabled here`);
    for (const level of BACKUP_LEVELS) {
      const schedule = body.schedules[level];
      if (!schedule) continue;
      if (provider && !provider.levels.includes(level)) {
        problem(
          `schedules.${level}`,
          `${provider.name} has no ${level} level (it makes ${provider.levels.join(', ')} backups)`,
        );
      }
      const cron = cronProblem(schedule.cron, schedule.timezone);
      if (cron) problem(`schedules.${level}.${/time zone/.test(cron) ? 'timezone' : 'cron'}`, cron);
    }
    const { retention } = body;
    if (retention.minFulls < 1 && retention.fullDays === 0) {
      problem('retention.minFulls', 'with fullDays 0, minFulls must be at least 1, or no complete chain would be kept');
    }
    if (body.budget && body.budget.maxChain === undefined && body.budget.maxReplayBytes === undefined) {
      problem('budget', 'name maxChain, maxReplayBytes or both');
    }
    if (errors.length > 0) {
      throw new AppError(ErrorCode.ValidationFailed, errors.map((e) => `${e.field}: ${e.messages[0]}`).join('; '), {
        errors,
      });
    }
    const schedules: Policy['schedules'] = {};
    for (const level of BACKUP_LEVELS) {
      const schedule = body.schedules[level];
      if (schedule) schedules[level] = { cron: schedule.cron.trim(), timezone: schedule.timezone ?? 'UTC' };
    }
    return {
      ...meta,
      name: body.name,
      provider: body.provider as ProviderName,
      default: body.default ?? false,
      schedules,
      retention: { ...retention },
      ...(body.exportDatabases !== undefined ? { exportDatabases: body.exportDatabases } : {}),
      ...(body.budget ? { budget: { ...body.budget } } : {}),
    };
  }
}
