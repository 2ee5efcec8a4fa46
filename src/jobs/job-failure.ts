import { AppError } from '../common/errors/app-error';
import { ServiceError } from '../common/errors/service-error';

/** Thrown by job handlers and providers: a failure with a stable code that the job records as its error. */
export class JobFailure extends ServiceError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'JobFailure';
  }

  /**
   * What a job records for whatever ended it: a JobFailure as it is, an AppError (a site gone, a provider down) with
   * its code, anything else as `internal` with its message.
   */
  static from(error: unknown): JobFailure {
    if (error instanceof JobFailure) return error;
    if (error instanceof AppError) return new JobFailure(error.code, error.detail);
    return new JobFailure('internal', error instanceof Error ? error.message : String(error));
  }
}
