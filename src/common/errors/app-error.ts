import { ErrorCode } from './error-code';

export interface FieldError {
  field: string;
  messages: string[];
}

/** The one error type services throw; the problem filter turns it into problem+json. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extras: { errors?: FieldError[]; headers?: Record<string, string>; [key: string]: unknown } = {},
  ) {
    super(detail);
    this.name = 'AppError';
  }
}
