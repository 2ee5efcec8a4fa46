import { readdir } from 'node:fs/promises';
import type { ResticSnapshot } from './restic-output';

const SNAPSHOT_NAME = /^[0-9a-f]{64}$/;

/**
 * What restic said of each snapshot of a local repository, by the name of its file in `snapshots/` (the full id).
 * Every restic command pays the repository key's derivation (scrypt, about 0.5 s here), so a listing after each
 * backup cost a tenth of a 100,000-file site's backup time. A local repository's `snapshots/` directory names every
 * snapshot there is: while each name in it is known, the listing is answered from here; a name nobody told us of
 * (a snapshot made or changed by hand, by another server) sends the next listing to restic again, and a name gone
 * (forget, prune) is dropped.
 */
export class ResticSnapshotCache {
  private readonly known = new Map<string, ResticSnapshot>();

  constructor(private readonly snapshotsDir: string) {}

  /** The snapshots of `host` carrying `tag`, when every snapshot in the repository is known; otherwise null. */
  async lookup(host: string, tag: string): Promise<ResticSnapshot[] | null> {
    const names = await this.names();
    if (names === null || names.some((name) => !this.known.has(name))) return null;
    const present = new Set(names);
    for (const name of [...this.known.keys()]) if (!present.has(name)) this.known.delete(name);
    return names
      .map((name) => this.known.get(name)!)
      .filter((snapshot) => snapshot.hostname === host && snapshot.tags.includes(tag));
  }

  /** A listing of every snapshot (all hosts), as `restic snapshots --json` printed it. */
  remember(snapshots: ResticSnapshot[]): void {
    for (const snapshot of snapshots) if (SNAPSHOT_NAME.test(snapshot.id)) this.known.set(snapshot.id, snapshot);
  }

  /**
   * The snapshot a backup just made, known by the short id restic printed: the one file of the repository whose
   * name starts with it. Returns its full id, or null when that is not exactly one file (then it stays unknown).
   */
  async rememberMade(shortId: string, made: Omit<ResticSnapshot, 'id'>): Promise<string | null> {
    if (!/^[0-9a-f]{8,64}$/.test(shortId)) return null;
    const matching = (await this.names())?.filter((name) => name.startsWith(shortId)) ?? [];
    if (matching.length !== 1) return null;
    this.known.set(matching[0], { ...made, id: matching[0] });
    return matching[0];
  }

  private async names(): Promise<string[] | null> {
    try {
      return (await readdir(this.snapshotsDir)).filter((name) => SNAPSHOT_NAME.test(name)).sort();
    } catch {
      return null;
    }
  }
}
