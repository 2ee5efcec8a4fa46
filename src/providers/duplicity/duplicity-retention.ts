import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunResult } from '../../common/process/process-runner';
import { JobFailure } from '../../jobs/job-failure';
import type { PruneOutcome, PruneRequest, SetSize } from '../backup-provider';
import type { JobContext } from '../../jobs/job-context';
import { parseDuplicityFileName } from './duplicity-names';
import { duplicityErrorFor } from './duplicity-errors';
import { duplicityRestorePointId } from './duplicity-collection-status';

/** Runs one duplicity action on the subject's target: `[action, ...args]`, the provider adds its common options. */
export type DuplicityAction = (action: string, args: string[]) => Promise<RunResult>;

/**
 * Retention for duplicity, which deletes whole chains only: `remove-older-than T --force` with T the time of the
 * oldest kept chain's full removes exactly the chains that end before it (the plan made them a prefix), then
 * `cleanup --force` removes what killed runs left. A prune killed midway leaves at worst a part of a removed chain,
 * which the next scan lists as orphaned and the next cleanup removes; kept chains are never touched.
 */
export async function pruneDuplicity(
  request: PruneRequest,
  targetUrl: string,
  context: JobContext,
  run: DuplicityAction,
): Promise<PruneOutcome> {
  const notes: string[] = [];
  if (request.remove.length === 0) {
    if (!request.leftovers?.length) return { bytesFreed: 0, notes: ['nothing to remove'] };
    // Only what killed runs left (a half-removed chain, a half-written set): cleanup takes it.
    const before = await targetBytes(targetUrl);
    assertOk(await run('cleanup', ['--force']), 'cleanup');
    const after = await targetBytes(targetUrl);
    return {
      bytesFreed: before !== null && after !== null ? Math.max(0, before - after) : null,
      notes: [`cleaned up ${request.leftovers.length} incomplete or orphaned set(s)`],
    };
  }
  if (request.keep.length === 0) throw new JobFailure('prune-refused', 'refusing to remove every restore point');
  const oldestKept = Math.min(...request.keep.map((point) => Date.parse(pointTimeOfHead(point, request))));
  const newestRemoved = Math.max(...request.remove.map((point) => Date.parse(point.time)));
  if (newestRemoved >= oldestKept) {
    throw new JobFailure(
      'prune-refused',
      'duplicity removes whole chains oldest first; the points to remove are not all older than the kept ones',
    );
  }
  const before = await targetBytes(targetUrl);
  const cutoff = String(Math.floor(oldestKept / 1000));
  context.log(`removing the chains that end before ${new Date(oldestKept).toISOString()}`);
  assertOk(await run('remove-older-than', [cutoff, '--force']), 'remove-older-than');
  assertOk(await run('cleanup', ['--force']), 'cleanup');
  const after = await targetBytes(targetUrl);
  if (before === null) notes.push('the target is not a local directory: bytes freed are not measured');
  return { bytesFreed: before !== null && after !== null ? Math.max(0, before - after) : null, notes };
}

/** The time of the full that starts the chain of `point` (its own time when the chain is unknown). */
function pointTimeOfHead(point: { chain: string[]; time: string }, request: PruneRequest): string {
  const head = point.chain[0];
  return request.keep.find((candidate) => candidate.id === head)?.time ?? point.time;
}

/** Per restore point: the volumes and bytes (manifest and volumes) its set holds at a `file://` target. */
export async function measureDuplicitySets(targetUrl: string): Promise<Map<string, SetSize>> {
  const sizes = new Map<string, SetSize>();
  const dir = localDirectory(targetUrl);
  if (!dir) return sizes;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return sizes;
  }
  for (const name of names) {
    const parsed = parseDuplicityFileName(name);
    if (!parsed || parsed.partial || parsed.content === 'signatures') continue;
    const stat = await lstat(join(dir, name)).catch(() => null);
    if (!stat?.isFile()) continue;
    const id = duplicityRestorePointId(parsed.set.time);
    const size = sizes.get(id) ?? { volumes: 0, bytes: 0 };
    size.bytes += stat.size;
    if (parsed.content === 'volume') size.volumes += 1;
    sizes.set(id, size);
  }
  return sizes;
}

async function targetBytes(targetUrl: string): Promise<number | null> {
  const dir = localDirectory(targetUrl);
  if (!dir) return null;
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const stat = await lstat(join(dir, name)).catch(() => null);
    if (stat?.isFile()) total += stat.size;
  }
  return total;
}

function localDirectory(targetUrl: string): string | null {
  if (!targetUrl.startsWith('file://')) return null;
  try {
    return fileURLToPath(targetUrl);
  } catch {
    return null;
  }
}

function assertOk(result: RunResult, what: string): void {
  if (result.cancelled) throw new JobFailure('cancelled', `duplicity ${what} was cancelled`);
  if (result.timedOut) throw new JobFailure('duplicity-timeout', `duplicity ${what} timed out`);
  if (result.exitCode !== 0) {
    const error = duplicityErrorFor(result.exitCode, result.stderrTail);
    throw new JobFailure(error.code, `duplicity ${what}: ${error.message}`);
  }
}
