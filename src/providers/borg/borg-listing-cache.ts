import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BorgArchive } from './borg-output';

/** A commit is a segment of its own: the magic, then one entry (crc32, size 9, tag COMMIT = 2). */
const COMMIT_SEGMENT = Buffer.concat([Buffer.from('BORG_SEG'), Buffer.alloc(4), Buffer.from([9, 0, 0, 0, 2])]);
/** Past this many new segments the backup is not checked commit by commit: the repository is listed instead. */
const MAX_SEGMENTS_CHECKED = 10_000;

/**
 * Where a repository stood: its id (a repository made again at the same path, a disk swapped, counts from 1 again),
 * its last committed transaction, and how its segments are filed (read from its `config` with the id).
 */
export interface BorgTransaction {
  repositoryId: string;
  number: number;
  segmentsPerDir: number;
}

/**
 * The archives of local repositories as last listed, by the repository's last committed transaction (borg names it by
 * the segment that holds its commit, `index.N`): a listing is answered from here while the repository has not changed,
 * instead of a `borg list` (a Python start and a key derivation, 0.3-0.5 s). A backup's own archive joins the listing
 * when its commit is the only one since the listing: every transaction (a `borg delete` or `prune` by hand, a
 * compaction) writes a commit segment, so one that slipped in before the backup took the lock is seen, and the
 * repository is listed again.
 */
export class BorgListingCache {
  private readonly listings = new Map<string, { transaction: BorgTransaction; archives: BorgArchive[] }>();

  /** Where the repository stands now; null when that cannot be read. */
  async transactionOf(repository: string): Promise<BorgTransaction | null> {
    const config = await readFile(join(repository, 'config'), 'utf8').catch(() => null);
    const repositoryId = config === null ? null : configValue(config, 'id');
    const segmentsPerDir = config === null ? null : configValue(config, 'segments_per_dir');
    const names = await readdir(repository).catch(() => [] as string[]);
    let number: number | null = null;
    for (const name of names) {
      const match = /^index\.(\d+)$/.exec(name);
      if (match) number = Math.max(number ?? 0, Number(match[1]));
    }
    if (repositoryId === null || number === null || segmentsPerDir === null || !/^\d+$/.test(segmentsPerDir))
      return null;
    return { repositoryId, number, segmentsPerDir: Number(segmentsPerDir) };
  }

  lookup(repository: string, transaction: BorgTransaction | null): BorgArchive[] | null {
    const listing = this.listings.get(repository);
    return listing && sameTransaction(listing.transaction, transaction) ? listing.archives : null;
  }

  /** A listing read while the repository stayed at `transaction` (the same before and after the read). */
  remember(repository: string, transaction: BorgTransaction, archives: BorgArchive[]): void {
    this.listings.set(repository, { transaction, archives });
  }

  /**
   * A backup made `archive`: the repository was at `before` when it began and is at `after` now. The listing gains it
   * when the backup's commit is the only one in between; otherwise it is forgotten.
   */
  async added(
    repository: string,
    before: BorgTransaction | null,
    after: BorgTransaction | null,
    archive: BorgArchive,
  ): Promise<void> {
    const listing = this.listings.get(repository);
    this.listings.delete(repository);
    if (!listing || !before || !after || !sameTransaction(listing.transaction, before)) return;
    if (before.repositoryId !== after.repositoryId || (await commitsBetween(repository, before, after)) !== 1) return;
    this.listings.set(repository, { transaction: after, archives: [...listing.archives, archive] });
  }
}

export function sameTransaction(a: BorgTransaction | null, b: BorgTransaction | null): boolean {
  return a !== null && b !== null && a.repositoryId === b.repositoryId && a.number === b.number;
}

/** How many commits borg wrote in segments after `before` up to `after`; null when that cannot be told. */
export async function commitsBetween(
  repository: string,
  before: BorgTransaction,
  after: BorgTransaction,
): Promise<number | null> {
  if (after.number <= before.number || after.number - before.number > MAX_SEGMENTS_CHECKED) return null;
  let commits = 0;
  for (let segment = before.number + 1; segment <= after.number; segment++) {
    const dir = String(Math.floor(segment / after.segmentsPerDir));
    if (await isCommitSegment(join(repository, 'data', dir, String(segment)))) commits++;
  }
  return commits;
}

/** A value of a repository's `config` (an INI file borg writes in the clear). */
function configValue(config: string, key: string): string | null {
  return new RegExp(`^${key}\\s*=\\s*(\\S+)\\s*$`, 'm').exec(config)?.[1] ?? null;
}

/** Read through a descriptor, at most the commit's 17 bytes: a segment compacted away meanwhile is simply no commit. */
async function isCommitSegment(path: string): Promise<boolean> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return false;
  try {
    const { size } = await handle.stat();
    if (size !== COMMIT_SEGMENT.length) return false;
    const bytes = Buffer.alloc(COMMIT_SEGMENT.length);
    await handle.read(bytes, 0, bytes.length, 0);
    // The crc32 (bytes 8-11) is the same for every commit entry; compare the rest.
    return (
      bytes.subarray(0, 8).equals(COMMIT_SEGMENT.subarray(0, 8)) &&
      bytes.subarray(12).equals(COMMIT_SEGMENT.subarray(12))
    );
  } finally {
    await handle.close();
  }
}
