import { ServiceError } from '../common/errors/service-error';
import type { ExportEntry, ExportErrorCode, ExportStep, ExportStepResult } from './export.model';

/** Why one export (or the listing of a server's databases) failed; a step result carries its code and message. */
export class ExportError extends ServiceError<ExportErrorCode> {
  constructor(code: ExportErrorCode, message: string) {
    super(code, message);
    this.name = 'ExportError';
  }
}

export function toExportError(error: unknown): ExportError {
  if (error instanceof ExportError) return error;
  // Anything else that escapes an exporter is the filesystem's doing (ENOSPC, EACCES, EROFS...).
  return new ExportError('write-failed', error instanceof Error ? error.message : String(error));
}

export function succeededResult(step: ExportStep, entry: ExportEntry, durationMs: number): ExportStepResult {
  return {
    site: step.site.id,
    engine: step.engine,
    database: step.database,
    status: 'succeeded',
    entry,
    error: null,
    durationMs,
  };
}

export function failedResult(step: ExportStep, error: unknown, durationMs: number): ExportStepResult {
  const failure = toExportError(error);
  return {
    site: step.site.id,
    engine: step.engine,
    database: step.database,
    status: failure.code === 'cancelled' ? 'cancelled' : 'failed',
    entry: null,
    error: { code: failure.code, message: failure.message },
    durationMs,
  };
}

export function cancelledError(what: string): ExportError {
  return new ExportError('cancelled', `${what} was cancelled`);
}
