import { readdir } from 'node:fs/promises';
import type { BorgArchive } from './borg-output';

/**
 * The archives of local repositories as last listed, by the repository's last committed transaction (borg writes
 * `index.N` at every commit, N rising): a listing is answered from here while the repository has not changed, instead
 * of a `borg list` (a Python start and a key derivation, 0.3-0.5 s). A backup's own archive joins the listing when
 * the repository was, as the backup began, where it was last listed: the job then lists nothing after it. A change
 * made by hand in the moment between that check and the backup's lock shows at the next listing after another change.
 */
export class BorgListingCache {
  private readonly listings = new Map<string, { transaction: number; archives: BorgArchive[] }>();

  /** The repository's last committed transaction; null when it has none or cannot be read. */
  async transactionOf(repository: string): Promise<number | null> {
    const names = await readdir(repository).catch(() => [] as string[]);
    let last: number | null = null;
    for (const name of names) {
      const match = /^index\.(\d+)$/.exec(name);
      if (match) last = Math.max(last ?? 0, Number(match[1]));
    }
    return last;
  }

  lookup(repository: string, transaction: number | null): BorgArchive[] | null {
    const listing = this.listings.get(repository);
    return transaction !== null && listing?.transaction === transaction ? listing.archives : null;
  }

  /** A listing read while the repository stayed at `transaction` (the same before and after the read). */
  remember(repository: string, transaction: number, archives: BorgArchive[]): void {
    this.listings.set(repository, { transaction, archives });
  }

  /** A backup made `archive`: the repository was at `before` when it began and is at `after` now (else forgotten). */
  added(repository: string, before: number | null, after: number | null, archive: BorgArchive): void {
    const listing = this.listings.get(repository);
    if (before !== null && after !== null && listing?.transaction === before) {
      this.listings.set(repository, { transaction: after, archives: [...listing.archives, archive] });
    } else {
      this.listings.delete(repository);
    }
  }
}
