/** sysexits.h: EX_TEMPFAIL (retry later) for a catalog another process holds, EX_IOERR for one that cannot be used. */
const EXIT_LOCKED = 75;
const EXIT_UNUSABLE = 74;

/** The catalog cannot be opened, locked or migrated at start-up; the start ends with this message, not a stack trace. */
export class CatalogUnavailableError extends Error {
  constructor(
    readonly file: string,
    readonly locked: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'CatalogUnavailableError';
  }

  get exitCode(): number {
    return this.locked ? EXIT_LOCKED : EXIT_UNUSABLE;
  }
}
