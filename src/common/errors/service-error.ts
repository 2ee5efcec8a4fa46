/**
 * The root of the service's own errors: a stable `code` and a message fit to show. Each kind is answered in one place:
 * AppError as problem+json (problem.filter.ts), JobFailure as a job's error (JobFailure.from in jobs/job-failure.ts),
 * ExportError as an export step's error (toExportError in exports/export-error.ts). Anything else is unexpected and is
 * answered as `internal`.
 */
export abstract class ServiceError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}
