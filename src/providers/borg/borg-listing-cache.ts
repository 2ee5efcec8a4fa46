import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BorgArchive } from './borg-output';

/** A commit is a segment of its own: the magic, then one entry (crc32, size 9, tag COMMIT = 2). */
const COMMIT_SEGMENT = Buffer.concat([Buffer.from('BORG_SEG'), Buffer.alloc(4), Buffer.from([9, 0, 0, 0, 2])]);
/** Past this many new segments the backup is not checked commit by commit: the repository is listed instead. */
const MAX_SEGMENTS_CHECKED = 10_000;

/**
 * The archives of local repositories as last listed, by the repository's last committed transaction (borg names it by
 * the segment that holds its commit, `index.N`): a listing is answered from here while the repository has not changed,
 * instead of a `borg list` (a Python start and a key derivation, 0.3-0.5 s). A backup's own archive joins the listing
 * when its commit is the only one since the listing: every transaction (a `borg delete` or `prune` by hand, a
 * compaction) writes a commit segment, so one that slipped in before the backup took the lock is seen, and the
 * repository is listed again.
 */
export class BorgListingCache {
  private readonly listings = new Map<string, { transaction: string; archives: BorgArchive[] }>();

  /**
   * The repository's last committed transaction, with the repository's id (a repository made again at the same path,
   * a disk swapped, counts its transactions from 1 again); null when it has none or cannot be read.
   */
  async transactionOf(repository: string): Promise<string | null> {
    const id = await configValue(repository, 'id');
    const names = await readdir(repository).catch(() => [] as string[]);
    let last: number | null = null;
    for (const name of names) {
      const match = /^index\.(\d+)$/.exec(name);
      if (match) last = Math.max(last ?? 0, Number(match[1]));
    }
    return id === null || last === null ? null : `${id}/${last}`;
  }

  lookup(repository: string, transaction: string | null): BorgArchive[] | null {
    const listing = this.listings.get(repository);
    return transaction !== null && listing?.transaction === transaction ? listing.archives : null;
  }

  /** A listing read while the repository stayed at `transaction` (the same before and after the read). */
  remember(repository: string, transaction: string, archives: BorgArchive[]): void {
    this.listings.set(repository, { transaction, archives });
  }

  /**
   * A backup made `archive`: the repository was at `before` when it began and is at `after` now. The listing gains it
   * when the backup's commit is the only one in between; otherwise it is forgotten.
   */
  async added(repository: string, before: string | null, after: string | null, archive: BorgArchive): Promise<void> {
    const listing = this.listings.get(repository);
    this.listings.delete(repository);
    if (before === null || after === null || listing?.transaction !== before) return;
    const [beforeId, beforeN] = before.split('/');
    const [afterId, afterN] = after.split('/');
    if (beforeId !== afterId || (await commitsBetween(repository, Number(beforeN), Number(afterN))) !== 1) return;
    this.listings.set(repository, { transaction: after, archives: [...listing.archives, archive] });
  }
}

/** How many commits borg wrote in segments `before + 1 … after`; null when that cannot be told. */
export async function commitsBetween(repository: string, before: number, after: number): Promise<number | null> {
  if (after <= before || after - before > MAX_SEGMENTS_CHECKED) return null;
  const perDir = await segmentsPerDir(repository);
  if (perDir === null) return null;
  let commits = 0;
  for (let segment = before + 1; segment <= after; segment++) {
    if (await isCommitSegment(join(repository, 'data', String(Math.floor(segment / perDir)), String(segment)))) {
      commits++;
    }
  }
  return commits;
}

async function segmentsPerDir(repository: string): Promise<number | null> {
  const value = await configValue(repository, 'segments_per_dir');
  return value !== null && /^\d+$/.test(value) ? Number(value) : null;
}

/** A value of the repository's `config` (an INI file borg writes in the clear). */
async function configValue(repository: string, key: string): Promise<string | null> {
  const config = await readFile(join(repository, 'config'), 'utf8').catch(() => null);
  const match = config === null ? null : new RegExp(`^${key}\\s*=\\s*(\\S+)\\s*$`, 'm').exec(config);
  return match ? match[1] : null;
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
