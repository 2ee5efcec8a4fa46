import { Injectable } from '@nestjs/common';
import { JobLogStore, type JobLogWriter } from '../jobs/job-log.store';
import { JobRepository } from '../jobs/job.repository';
import type { Job } from '../jobs/job';

export interface ArchiveJob {
  readonly job: Job;
  log: (line: string) => void;
  trackPid: (pid: number) => void;
  finish(
    outcome: { ok: true; result: Record<string, unknown> } | { ok: false; cancelled: boolean; message: string },
  ): Promise<void>;
}

/**
 * A download is recorded as an `archive` job (so what it skipped or flagged is in a job log an operator can read),
 * but it runs in the request, at once: it reads a site and changes nothing, so it neither waits behind the site's
 * running backup nor holds the site's lock. The row goes straight from queued to running in one synchronous step,
 * before the engine's pump can see it; a restart marks it interrupted like any job it finds running.
 */
@Injectable()
export class ArchiveJobs {
  constructor(
    private readonly repository: JobRepository,
    private readonly logs: JobLogStore,
  ) {}

  start(
    site: string,
    params: Record<string, unknown>,
    requestedBy: string,
    provider: string | null = null,
  ): ArchiveJob {
    const inserted = this.repository.insert({ kind: 'archive', site, provider, level: null, params, requestedBy });
    this.repository.transition(inserted.id, ['queued'], 'running');
    const job = this.repository.get(inserted.id) ?? inserted;
    const writer: JobLogWriter = this.logs.open(job.id);
    writer.write(`job ${job.id} (archive of ${site}) started`);
    let finished = false;
    return {
      job,
      log: (line) => writer.write(line),
      trackPid: (pid) => this.repository.savePid(job.id, pid),
      finish: async (outcome) => {
        if (finished) return;
        finished = true;
        if (outcome.ok) {
          this.repository.transition(job.id, ['running'], 'succeeded', { result: outcome.result });
          writer.write('job succeeded');
        } else {
          const status = outcome.cancelled ? 'cancelled' : 'failed';
          const code = outcome.cancelled ? 'cancelled' : 'archive-failed';
          this.repository.transition(job.id, ['running'], status, { error: { code, message: outcome.message } });
          writer.write(`job ${status}: [${code}] ${outcome.message}`);
        }
        await writer.close();
      },
    };
  }
}
