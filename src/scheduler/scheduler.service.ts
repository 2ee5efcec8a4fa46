import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { BackupsService } from '../backups/backups.service';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import type { Job } from '../jobs/job';
import { PoliciesService } from '../policies/policies.service';
import { LEVEL_RANK, type Policy } from '../policies/policy';
import { BACKUP_LEVELS, type BackupLevel } from '../jobs/backup-level';
import { ProviderRegistry } from '../providers/provider-registry';
import { PruneService } from '../retention/prune.service';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { ScopesService } from '../scopes/scopes.service';
import { SiteDirectory } from '../sites/site-directory';
import { nextRunsOf, scheduleOf, spreadOffsetMs, type NextRun } from './next-runs';
import { budgetDecision } from './replay-budget';

const TICK_MS = 60_000;
/** Slots older than this are forgotten, except the newest one of each site and level (the anacron cursor). */
const SLOT_HISTORY_MS = 35 * 86_400_000;

export interface TickSummary {
  at: string;
  sites: number;
  started: Job[];
  /** (site, level) pairs seen for the first time: their current slot is recorded, not run. */
  baselined: number;
  /** Due slots a higher level due at the same time covered. */
  superseded: number;
}

interface Due {
  level: BackupLevel;
  slot: Date;
}

/**
 * Scheduled backups. Each tick, for every site with a policy, the latest slot of each level's cron (shifted by the
 * site's spread offset) is compared with the newest slot recorded for that site and level:
 * - never seen: the slot is recorded without running (a new policy starts at its next slot);
 * - newer: it is due. Several due levels make one job, of the highest level (a full covers an incremental), and
 *   however many slots were missed while the service was down only the latest runs (anacron's rule).
 * A slot row and its job are written in one transaction, keyed by (site, level, slot): a restart or a second caller
 * finds the row and makes no second job. The clock is injected; tests call `tick()` with simulated time.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SchedulerService.name);
  private timer?: NodeJS.Timeout;
  private running: Promise<TickSummary> | null = null;
  private lastCleanup = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly catalog: CatalogService,
    private readonly policies: PoliciesService,
    private readonly sites: SiteDirectory,
    private readonly backups: BackupsService,
    private readonly prune: PruneService,
    private readonly restorePoints: RestorePointsService,
    private readonly registry: ProviderRegistry,
    private readonly scopes: ScopesService,
  ) {}

  onApplicationBootstrap(): void {
    // A slot missed while the service was down runs at start: the first tick finds it.
    this.timer = setInterval(() => {
      this.tick().catch((error: unknown) => this.logger.error({ err: error }, 'scheduler tick failed'));
    }, TICK_MS);
    this.timer.unref();
    setImmediate(() => {
      this.tick().catch((error: unknown) => this.logger.error({ err: error }, 'scheduler tick failed'));
    });
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One evaluation of every site at the clock's time; concurrent callers share it. */
  tick(): Promise<TickSummary> {
    if (this.running) return this.running;
    this.running = this.evaluate(this.clock.now()).finally(() => (this.running = null));
    return this.running;
  }

  /** The next start of each scheduled level of the site. */
  nextRuns(site: string, now = this.clock.now()): NextRun[] {
    const { policy } = this.policies.effectiveForSite(site);
    return policy ? nextRunsOf(policy, site, now, this.config.scheduleSpreadMinutes) : [];
  }

  offsetMs(site: string): number {
    return spreadOffsetMs(site, this.config.scheduleSpreadMinutes);
  }

  private async evaluate(now: Date): Promise<TickSummary> {
    const summary: TickSummary = { at: now.toISOString(), sites: 0, started: [], baselined: 0, superseded: 0 };
    const sites = await this.sites.list();
    const automaticExports = await this.scopes.automaticDatabaseExports().catch(() => true);
    const cursors = this.cursors();
    const spreadMs = this.config.scheduleSpreadMinutes * 60_000;
    // The slots of each (policy, level) from now back past the spread window, computed once for all sites.
    const recent = new Map<string, Date[]>();
    const baselines: Array<{ site: string; policy: Policy; entries: Due[] }> = [];
    for (const [index, site] of sites.entries()) {
      // Let requests in between slices of a large server.
      if (index > 0 && index % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
      const { policy } = this.policies.effectiveForSite(site.id);
      if (!policy) continue;
      summary.sites += 1;
      const offset = this.offsetMs(site.id);
      const reference = now.getTime() - offset;
      const due: Due[] = [];
      const baseline: Due[] = [];
      for (const level of BACKUP_LEVELS) {
        const schedule = scheduleOf(policy, level);
        if (!schedule) continue;
        const key = `${policy.id}\u0000${policy.updatedAt}\u0000${level}`;
        let slots = recent.get(key);
        if (!slots) recent.set(key, (slots = schedule.latestSince(now, new Date(now.getTime() - spreadMs), 64)));
        const slot =
          slots.find((candidate) => candidate.getTime() <= reference) ?? schedule.latest(new Date(reference));
        if (!slot) continue;
        const last = cursors.get(`${site.id}\u0000${level}`);
        if (last === undefined) baseline.push({ level, slot });
        else if (slot.toISOString() > last) due.push({ level, slot });
      }
      if (baseline.length > 0) {
        baselines.push({ site: site.id, policy, entries: baseline });
        summary.baselined += baseline.length;
      }
      if (due.length === 0) continue;
      const job = this.start(site.id, policy, due, automaticExports, now);
      if (job) summary.started.push(job);
      summary.superseded += due.length - 1;
    }
    // First sightings in one transaction: 10,000 new sites are one commit, not 30,000.
    this.catalog.transaction(() => {
      for (const entry of baselines) this.record(entry.site, entry.policy, entry.entries, 'baseline', now);
    });
    this.forgetOldSlots(now);
    if (summary.started.length > 0) {
      this.logger.log({ started: summary.started.length, at: summary.at }, 'scheduled backups queued');
    }
    return summary;
  }

  /** Writes the slot rows and, when this caller's row is new, the backup and prune jobs, in one transaction. */
  private start(site: string, policy: Policy, due: Due[], automaticExports: boolean, now: Date): Job | null {
    const winner = due.reduce((best, entry) => (LEVEL_RANK[entry.level] > LEVEL_RANK[best.level] ? entry : best));
    const provider = this.registry.all().find((candidate) => candidate.name === policy.provider);
    if (!provider) {
      this.logger.warn({ site, provider: policy.provider }, 'policy names a provider that is not enabled');
      return null;
    }
    let level = winner.level;
    const notes: string[] = [];
    if (due.length > 1 || winner.slot.getTime() !== due[0].slot.getTime()) {
      const others = due.filter((entry) => entry !== winner).map((entry) => entry.level);
      if (others.length) notes.push(`scheduled ${winner.level} also covers the due ${others.join(', ')} slot(s)`);
    }
    if (level === 'incremental') {
      const points = this.restorePoints.cached(provider.name, site);
      const decision = budgetDecision(points, policy.budget, provider.levels);
      if (decision) {
        level = decision.level;
        notes.push(decision.note);
      }
    }
    return this.catalog.transaction(() => {
      const inserted = this.record(site, policy, [winner], 'job', now);
      if (inserted === 0) return null; // another caller (or a run before a restart) made it
      this.record(
        site,
        policy,
        due.filter((entry) => entry !== winner),
        'superseded',
        now,
      );
      const job = this.backups.enqueueScheduled(
        site,
        {
          level,
          provider: provider.name,
          exportDatabases: policy.exportDatabases ?? !automaticExports,
        },
        [`scheduled ${winner.level} slot ${winner.slot.toISOString()} (policy ${policy.name})`, ...notes],
      );
      this.catalog
        .statement('UPDATE schedule_slots SET job_id = ? WHERE site = ? AND level = ? AND slot = ?')
        .run(job.id, site, winner.level, winner.slot.toISOString());
      if (provider.prune) this.prune.enqueueScheduled(site, provider.name);
      return job;
    });
  }

  private record(site: string, policy: Policy, entries: Due[], outcome: string, now: Date): number {
    const insert = this.catalog.statement(
      `INSERT OR IGNORE INTO schedule_slots (site, level, slot, policy_id, outcome, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    let inserted = 0;
    for (const entry of entries) {
      inserted += insert.run(
        site,
        entry.level,
        entry.slot.toISOString(),
        policy.id,
        outcome,
        now.toISOString(),
      ).changes;
    }
    return inserted;
  }

  /** The newest recorded slot of every (site, level). */
  private cursors(): Map<string, string> {
    const rows = this.catalog
      .statement('SELECT site, level, MAX(slot) AS slot FROM schedule_slots GROUP BY site, level')
      .all() as Array<{ site: string; level: string; slot: string }>;
    return new Map(rows.map((row) => [`${row.site}\u0000${row.level}`, row.slot]));
  }

  private forgetOldSlots(now: Date): void {
    if (now.getTime() - this.lastCleanup < 86_400_000 && this.lastCleanup <= now.getTime()) return;
    this.lastCleanup = now.getTime();
    this.catalog
      .statement(
        `DELETE FROM schedule_slots WHERE slot < ? AND slot < (
           SELECT MAX(s.slot) FROM schedule_slots s WHERE s.site = schedule_slots.site AND s.level = schedule_slots.level)`,
      )
      .run(new Date(now.getTime() - SLOT_HISTORY_MS).toISOString());
  }
}
