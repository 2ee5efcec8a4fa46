import { statfs } from 'node:fs/promises';
import { AppError } from './errors/app-error';
import { ErrorCode } from './errors/error-code';

/** DATA_DIR_MIN_FREE as configured: a share of the filesystem, or a size. */
export type MinFree = { percent: number } | { bytes: number };

/**
 * Refuses (507, before anything starts) work that would leave less than DATA_DIR_MIN_FREE free on the filesystem of
 * `where`, counting `needed` bytes it is about to write (0 when unknown). Restores and restore-point downloads share
 * this one rule.
 */
export async function assertFreeSpace(
  where: string,
  minFree: MinFree,
  needed: number | null,
  what: string,
): Promise<void> {
  const fs = await statfs(where);
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const reserve = 'percent' in minFree ? (total * minFree.percent) / 100 : minFree.bytes;
  const bytes = needed ?? 0;
  if (free - bytes < reserve) {
    const gib = (value: number): string => `${(value / 2 ** 30).toFixed(2)} GiB`;
    throw new AppError(
      ErrorCode.InsufficientStorage,
      `${what} would leave ${gib(Math.max(0, free - bytes))} free on ${where}, under the reserve of ` +
        `${gib(reserve)} (DATA_DIR_MIN_FREE); free space or delete staging restores first.`,
      { free, needed: bytes, reserve },
    );
  }
}
