import { Inject, Injectable } from '@nestjs/common';
import type { JobContext } from '../jobs/job-context';
import type { Site } from '../sites/site';
import { DATABASE_EXPORTER, type DatabaseExporter } from './database-exporter';
import { DatabaseServers, planDatabases } from './database-servers';
import { cancelledError, ExportError } from './export-error';
import { ExportStore } from './export-store';
import {
  type ExportEntry,
  type ExportPlan,
  type ExportRunResult,
  type ExportStep,
  type ExportStepResult,
  type ExporterKind,
} from './export.model';

/** Database exports of sites: what to export, doing it, and what exists. Runs inside jobs; never sees HTTP. */
@Injectable()
export class ExportsService {
  constructor(
    @Inject(DATABASE_EXPORTER) private readonly exporter: DatabaseExporter,
    private readonly servers: DatabaseServers,
    private readonly store: ExportStore,
  ) {}

  get exporterKind(): ExporterKind {
    return this.exporter.kind;
  }

  /** One step per database of each site (planDatabases in database-servers.ts: the same plan a site's page shows). */
  planExport(sites: readonly Site[]): Promise<ExportPlan> {
    return planDatabases(sites, (engine) => this.servers.listDatabases(engine));
  }

  /** Exports one database; throws an ExportError (code `cancelled` when the job was cancelled). */
  async exportDatabase(step: ExportStep, context: JobContext): Promise<ExportEntry> {
    const [result] = await this.exporter.exportSteps([step], context);
    if (result.status !== 'succeeded' || !result.entry) {
      throw new ExportError(result.error?.code ?? 'dump-failed', result.error?.message ?? 'the export failed');
    }
    return result.entry;
  }

  /** Plans and exports every database of `sites`; a failing database never stops the others. */
  async runExport(sites: readonly Site[], context: JobContext): Promise<ExportRunResult> {
    context.progress({ phase: 'planning', percent: 0 });
    const plan = await this.planExport(sites);
    const results: ExportStepResult[] = plan.unlisted.flatMap((problem) => {
      context.log(`${problem.engine}: ${problem.error.message}`);
      return problem.sites.map((site) => ({
        site,
        engine: problem.engine,
        database: null,
        status: 'failed' as const,
        entry: null,
        error: problem.error,
        durationMs: 0,
      }));
    });
    context.log(
      `exporting ${plan.steps.length} database(s) of ${sites.length} site(s) with the ${this.exporter.kind} exporter`,
    );
    if (context.signal.aborted) {
      const error = cancelledError('the export');
      results.push(
        ...plan.steps.map((step) => ({
          site: step.site.id,
          engine: step.engine,
          database: step.database,
          status: 'cancelled' as const,
          entry: null,
          error: { code: error.code, message: error.message },
          durationMs: 0,
        })),
      );
    } else {
      results.push(...(await this.exporter.exportSteps(plan.steps, context)));
    }
    return {
      results,
      failed: results.some((result) => result.status === 'failed'),
      cancelled: results.some((result) => result.status === 'cancelled'),
    };
  }

  /** The site's export files that exist, newest first. */
  listExports(site: Site): Promise<ExportEntry[]> {
    return this.store.list(site);
  }

  /** Removes `.partial` files an interrupted export left behind (call at start-up); returns their paths. */
  removeLeftovers(site: Site): Promise<string[]> {
    return this.store.removeLeftovers(site);
  }
}
