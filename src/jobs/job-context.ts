export interface JobProgressUpdate {
  phase?: string;
  percent?: number | null;
  bytes?: number | null;
}

/** What a provider may do to the job it runs in. It never sees HTTP or the catalog. */
export interface JobContext {
  readonly jobId: string;
  readonly signal: AbortSignal;
  log(line: string): void;
  progress(update: JobProgressUpdate): void;
  /** The job's own scratch directory, removed when it ends. */
  readonly workDir: string;
  /** Records the pid of a child process so a restarted service can find and stop it. */
  trackPid(pid: number): void;
}
