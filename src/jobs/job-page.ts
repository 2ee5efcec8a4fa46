import { decodeCursor, encodeCursor, type Page } from '../common/pagination/page';
import type { JobFilter, JobRepository } from './job.repository';
import { toJobModel, type JobModel } from './job.model';
import { DEFAULT_JOB_PAGE_LIMIT } from './job-query.model';

/** Newest-first job pages with a cursor on the insertion sequence: stable while new jobs arrive. */
export function pageJobs(
  repository: JobRepository,
  filter: Omit<JobFilter, 'limit' | 'beforeSeq'>,
  query: { cursor?: string; limit?: number },
): Page<JobModel> {
  const limit = query.limit ?? DEFAULT_JOB_PAGE_LIMIT;
  const beforeSeq = query.cursor
    ? decodeCursor(query.cursor, (value): value is number => Number.isInteger(value))
    : undefined;
  const jobs = repository.list({ ...filter, beforeSeq, limit: limit + 1 });
  const page = jobs.slice(0, limit);
  return {
    items: page.map(toJobModel),
    nextCursor: jobs.length > limit && page.length > 0 ? encodeCursor(page.at(-1)!.seq) : null,
  };
}
