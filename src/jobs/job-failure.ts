/** Thrown by job handlers and providers: a failure with a stable code that the job records as its error. */
export class JobFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}
