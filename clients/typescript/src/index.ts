/**
 * A typed client of apiscp-backup-api: the request and response types are generated from `openapi/openapi.json`
 * (`schema.ts`, by openapi-typescript: `npm run client`), the calls are openapi-fetch's.
 *
 *   const api = createBackupApiClient({ baseUrl: 'http://hosting-node-1:8080', token });
 *   const { data, error } = await api.POST('/v1/sites/{site}/backups', { params: { path: { site: 'site12' } }, body: { level: 'full' } });
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

export type { components, paths };
export type Schemas = components['schemas'];
export type Job = Schemas['JobModel'];
export type BackupJob = Schemas['BackupJobModel'];
export type RestoreJob = Schemas['RestoreJobModel'];
export type ExportJob = Schemas['ExportJobModel'];
export type RestorePoint = Schemas['RestorePointModel'];
export type Problem = Schemas['ProblemModel'];
export type ErrorCode = Schemas['ErrorCode'];
export type BackupApiClient = Client<paths>;

export interface BackupApiClientOptions {
  /** The service's address, e.g. `http://hosting-node-1:8080`. */
  baseUrl: string;
  /** An API token (see API_TOKENS_FILE); sent as `Authorization: Bearer`. */
  token: string;
  /** Another fetch (a proxy, a test harness); the global one by default. */
  fetch?: (input: Request) => Promise<Response>;
}

export function createBackupApiClient(options: BackupApiClientOptions): BackupApiClient {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { Authorization: `Bearer ${options.token}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

const FINISHED: ReadonlyArray<Job['status']> = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/**
 * Waits until a job ends (any of `succeeded`, `failed`, `cancelled`, `interrupted`) and returns it: each request is
 * held by the service until the job ends or `waitSeconds` pass, so a long job costs one request a minute, not a poll
 * loop.
 */
export async function followJob(
  api: BackupApiClient,
  id: string,
  { waitSeconds = 60, signal }: { waitSeconds?: number; signal?: AbortSignal } = {},
): Promise<Job> {
  for (;;) {
    const { data, error } = await api.GET('/v1/jobs/{id}', {
      params: { path: { id }, query: { waitSeconds } },
      signal,
    });
    if (error) throw new Error(`GET /v1/jobs/${id}: ${error.code}: ${error.detail}`);
    if (FINISHED.includes(data.status)) return data;
    signal?.throwIfAborted();
  }
}

/** Every item of a list route, page after page, following `nextCursor` until it is null. */
export async function* allPages<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const { items, nextCursor } = await page(cursor);
    yield* items;
    cursor = nextCursor ?? undefined;
  } while (cursor !== undefined);
}
