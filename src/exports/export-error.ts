import type { ExportErrorCode } from './export.model';

/** Why one export (or the listing of a server's databases) failed; a step result carries its code and message. */
export class ExportError extends Error {
  constructor(
    readonly code: ExportErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExportError';
  }
}

export function toExportError(error: unknown): ExportError {
  if (error instanceof ExportError) return error;
  return new ExportError('write-failed', error instanceof Error ? error.message : String(error));
}
