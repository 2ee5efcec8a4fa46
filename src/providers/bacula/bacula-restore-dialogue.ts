import { posix } from 'node:path';
import type { JobContext } from '../../jobs/job-context';
import { JobFailure } from '../../jobs/job-failure';
import type { RestorePoint } from '../backup-provider';
import { consoleQuote, hasControlCharacter, markPattern, RESTORE_JOB } from './bacula-resources';
import type { BconsoleClient, BconsoleOptions } from './bconsole-client';
import { markedCount, parseQueuedJobId, parseRestoreSelection } from './bconsole-output';

/** Walking a big site (`estimate`) or building a restore tree from the catalog can take minutes. */
export const LONG_COMMAND_MS = 30 * 60_000;

export interface RestoreSelection {
  point: RestorePoint;
  /** As the request gave them, relative to the subject's root; empty means everything. */
  paths: string[];
  /** The same paths made absolute (absolutePathOf). */
  absolute: string[];
  /** The chain's Bacula JobIds, oldest first. */
  jobIds: number[];
  /** Where the director's file daemon writes the restored files. */
  staging: string;
  client: string;
}

/**
 * The `restore` dialogue with the director: the chain's jobs, the paths marked in its file tree, and the Restore job
 * queued into `staging`. Returns the queued JobId and how many files were selected. `withdraw` cancels a queued job
 * and resolves once the director has ended it.
 */
export async function queueRestore(
  bconsole: BconsoleClient,
  request: RestoreSelection,
  commandOptions: BconsoleOptions,
  context: JobContext,
  withdraw: (jobId: number) => Promise<void>,
): Promise<{ jobId: number; expectedFiles: number | null; byName?: boolean }> {
  const { point, paths, absolute, jobIds, staging, client } = request;
  const base =
    `restore jobid=${jobIds.join(',')} client=${client} restoreclient=${client} ` +
    `where=${consoleQuote(staging)} restorejob=${RESTORE_JOB}`;
  const selection = absolute.flatMap((path) => [
    'cd /',
    `cd ${consoleQuote(posix.dirname(path))}`,
    `mark ${markPattern(posix.basename(path))}`,
  ]);
  const options = { ...commandOptions, timeoutMs: LONG_COMMAND_MS };

  context.progress({ phase: 'select' });
  if (absolute.length === 1) {
    const single = await queueOneFile(
      bconsole,
      `${base} file=${consoleQuote(absolute[0])}`,
      point,
      commandOptions,
      context,
    );
    if (single) return single;
  }
  const lines = absolute.length > 0 ? [`${base} yes`, ...selection, 'done'] : [`${base} all done yes`];
  context.log(`bconsole: ${lines[0]}${absolute.length ? ` (+ ${absolute.length} path(s) marked)` : ''}`);
  // One dialogue: each one builds the director's file tree of the whole chain (seconds for a big site). bconsole
  // feeds its lines without waiting for the replies, so the dialogue cannot branch on them, and a `cd` that fails
  // leaves `/` current, where `mark` could pick another entry of that name: the transcript is checked afterwards,
  // and a restore queued from a selection that went wrong is cancelled before anything is moved out of staging.
  const chosen = parseRestoreSelection(await bconsole.command(lines, options));
  const missing = paths.filter((_path, index) => {
    const [, cd, mark] = chosen.steps.slice(index * 3, index * 3 + 3);
    const dir = posix.dirname(absolute[index]);
    return !cd?.reply.includes(`cwd is: ${dir === '/' ? '/' : `${dir}/`}`) || markedCount(mark?.reply ?? '') === 0;
  });
  const refused = chosen.steps.length < selection.length;
  if ((refused || missing.length > 0) && chosen.jobId !== null) {
    context.log(`cancelling Bacula JobId ${chosen.jobId}: its file selection did not go as asked`);
    await withdraw(chosen.jobId);
  }
  if (refused) {
    throw new JobFailure('bacula-restore-refused', `The director did not open the file selection for ${point.id}.`);
  }
  if (missing.length > 0) {
    throw new JobFailure(
      'bacula-restore-path-not-found',
      `Not in restore point ${point.id}: ${missing.map((path) => JSON.stringify(path)).join(', ')}.`,
    );
  }
  const expectedFiles = chosen.selectedFiles;
  if (chosen.jobId === null) {
    throw new JobFailure(
      'bacula-restore-refused',
      `The director did not queue the restore of ${point.id} (${expectedFiles ?? 'no'} file(s) selected).`,
    );
  }
  context.log(
    `Bacula JobId ${chosen.jobId} queued: restore of ${point.id} (chain ${point.chain.join(', ')}), ${expectedFiles ?? '?'} file(s)`,
  );
  return { jobId: chosen.jobId, expectedFiles };
}

/**
 * One file by its path (`file=`): the director looks it up in the catalog, newest version in the chain first, where
 * marking it in the restore tree has the director build the tree of the whole chain first (on a site of a million
 * files, most of a one-file restore's time). Directories, and paths the catalog does not hold as a file, go through
 * the tree (null here). The answer to the director's "OK to run?" depends on what it selected, so this runs in a
 * session.
 */
async function queueOneFile(
  bconsole: BconsoleClient,
  line: string,
  point: RestorePoint,
  commandOptions: BconsoleOptions,
  context: JobContext,
): Promise<{ jobId: number; expectedFiles: number; byName: true } | null> {
  const session = await bconsole.open(commandOptions);
  try {
    const reply = await session.send([line], { timeoutMs: LONG_COMMAND_MS });
    if (!/OK to run\?/.test(reply)) {
      await session.close();
      return null;
    }
    if (parseRestoreSelection(reply).selectedFiles !== 1) {
      await session.send(['no']);
      await session.close();
      return null;
    }
    context.log(`bconsole: ${line} (one file, looked up in the catalog)`);
    const queued = await session.send(['yes']);
    await session.close();
    const jobId = parseQueuedJobId(queued);
    if (jobId === null) {
      throw new JobFailure('bacula-restore-refused', `The director did not queue the restore: ${queued.trim()}`);
    }
    context.log(`Bacula JobId ${jobId} queued: restore of one file of ${point.id} (chain ${point.chain.join(', ')})`);
    return { jobId, expectedFiles: 1, byName: true };
  } catch (error) {
    await session.abandon();
    throw error;
  }
}

/** `shadow/var/www` under the subject's root, refusing what could escape it or break a bconsole line. */
export function absolutePathOf(root: string, path: string): string {
  const normalised = posix.normalize(path).replace(/\/+$/, '');
  if (
    !path ||
    posix.isAbsolute(path) ||
    normalised === '.' ||
    normalised.startsWith('..') ||
    hasControlCharacter(path)
  ) {
    throw new JobFailure(
      'bacula-invalid-path',
      `Restore path ${JSON.stringify(path.slice(0, 200))} must be relative to the site and stay inside it.`,
    );
  }
  return posix.join(root, normalised);
}
