import { ErrorCode } from './error-code';
import { ServiceError } from './service-error';

export interface FieldError {
  field: string;
  messages: string[];
}

/** The error services throw to answer a request; the problem filter turns it into problem+json. */
export class AppError extends ServiceError<ErrorCode> {
  constructor(
    code: ErrorCode,
    readonly detail: string,
    readonly extras: { errors?: FieldError[]; headers?: Record<string, string>; [key: string]: unknown } = {},
  ) {
    super(code, detail);
    this.name = 'AppError';
  }
}
