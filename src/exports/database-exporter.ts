import type { JobContext } from '../jobs/job-context';
import type { ExportStep, ExportStepResult, ExporterKind } from './export.model';

/**
 * Makes logical exports of databases. Implementations record every file they make in the site's export manifest
 * (ExportStore), so listing works the same whoever made the files.
 */
export interface DatabaseExporter {
  readonly kind: ExporterKind;
  /**
   * Exports the steps' databases; one result per step, in step order. A step's failure (server down, dump error,
   * cancellation) is reported in its result, never thrown, and never stops the other steps (cancellation does).
   */
  exportSteps(steps: readonly ExportStep[], context: JobContext): Promise<ExportStepResult[]>;
}

/** The injection token of the exporter this server uses (`apiscp` on an ApisCP server, `native` elsewhere). */
export const DATABASE_EXPORTER = Symbol('DATABASE_EXPORTER');
