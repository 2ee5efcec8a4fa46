import { posix } from 'node:path';
import { JobFailure } from '../../jobs/job-failure';
import type { BackupSubject, PointFile, PointFileType, RestorePoint } from '../backup-provider';
import { consoleQuote } from './bacula-resources';
import { jobIdOf } from './bacula-restore-points';
import type { BconsoleClient } from './bconsole-client';
import { splitReplies } from './bconsole-output';

/** bvfs answers at most `limit` rows per call (1000 by default). */
const BVFS_LIMIT = 1_000_000;
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const S_IFMT = 0o170000;
const TYPES: Record<number, PointFileType> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink' };

/**
 * One directory at a point from Bacula's own index (bvfs over the catalog): `.bvfs_update` builds the cache for
 * the point's chain once, `.bvfs_lsdirs` and `.bvfs_lsfiles` answer per directory with each entry's LStat (mode,
 * owner, size, mtime). bvfs does not keep symlink targets: they stay null.
 */
export async function listBaculaPointDirectory(
  bconsole: BconsoleClient,
  subject: BackupSubject,
  point: RestorePoint,
  dir: string,
  signal?: AbortSignal,
): Promise<PointFile[] | null> {
  const jobIds = point.chain.map((id) => {
    const jobId = jobIdOf(id);
    if (jobId === null) throw new JobFailure('bacula-invalid-restore-point', `${id} is not a Bacula restore point.`);
    return jobId;
  });
  const path = `${dir ? posix.join(subject.root, dir) : subject.root}/`;
  const ids = jobIds.join(',');
  const commands = [
    `.bvfs_update jobid=${ids}`,
    `.bvfs_lsdirs jobid=${ids} path=${consoleQuote(path)} limit=${BVFS_LIMIT}`,
    `.bvfs_lsfiles jobid=${ids} path=${consoleQuote(path)} limit=${BVFS_LIMIT}`,
  ];
  // .bvfs_update of a big chain takes a while once; later calls find its cache.
  const text = await bconsole.command(commands, { signal, timeoutMs: 600_000 });
  const [, dirs, files] = splitReplies(text, commands);
  const dirRows = parseBvfsRows(dirs);
  // bvfs lists `.` for a directory the point holds; nothing at all for one it does not.
  if (!dirRows.some((row) => row.name === '.')) return null;
  const entries: PointFile[] = [];
  for (const row of [...dirRows, ...parseBvfsRows(files)]) {
    if (row.name === '.' || row.name === '..') continue;
    const stat = decodeLStat(row.lstat);
    entries.push({
      dir,
      name: row.name.replace(/\/$/, ''),
      type: row.name.endsWith('/') ? 'dir' : (TYPES[(stat?.mode ?? 0) & S_IFMT] ?? 'other'),
      size: stat && (stat.mode & S_IFMT) === 0o100000 ? stat.size : null,
      mode: stat ? stat.mode & 0o7777 : null,
      uid: stat?.uid ?? null,
      gid: stat?.gid ?? null,
      mtime: stat && stat.mtime > 0 ? new Date(stat.mtime * 1000).toISOString() : null,
      target: null,
    });
  }
  return entries;
}

interface BvfsRow {
  lstat: string;
  name: string;
}

/** `PathId\tFilenameId\tFileId\tJobId\tLStat\tName` rows. */
export function parseBvfsRows(reply: string): BvfsRow[] {
  const rows: BvfsRow[] = [];
  for (const line of reply.split('\n')) {
    const fields = line.split('\t');
    if (fields.length < 6 || !/^\d+$/.test(fields[0])) continue;
    rows.push({ lstat: fields[4], name: fields.slice(5).join('\t') });
  }
  return rows;
}

/** Bacula's LStat: space-separated fields in its own base64 (dev ino mode nlink uid gid rdev size … atime mtime …). */
export function decodeLStat(
  lstat: string,
): { mode: number; uid: number; gid: number; size: number; mtime: number } | null {
  const fields = lstat.trim().split(/\s+/).map(fromBase64);
  if (fields.length < 12 || fields.some((value) => value === null)) return null;
  const [, , mode, , uid, gid, , size, , , , mtime] = fields as number[];
  return { mode, uid, gid, size, mtime };
}

function fromBase64(text: string): number | null {
  let value = 0;
  const negative = text.startsWith('-');
  for (const char of negative ? text.slice(1) : text) {
    const digit = B64.indexOf(char);
    if (digit < 0) return null;
    value = value * 64 + digit;
  }
  return negative ? -value : value;
}
