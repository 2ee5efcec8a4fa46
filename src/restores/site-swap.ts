import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Directories no restore replaces: raw database files live there and are never in a backup. */
export const PRESERVED = ['shadow/var/lib'];

/** Where the previous copy goes once every path is in place: renaming the aside directory there commits the swap. */
function discardedOf(asideDir: string): string {
  return `${asideDir}.discarded`;
}

/**
 * Moves each restored path from `restored` into `siteRoot`, keeping the live copy aside until every path is in place,
 * so a failure part-way puts the old data back instead of leaving a half-restored site. A process killed part-way
 * leaves `asideDir` behind, and `recoverInterruptedSwap` puts the old data back from it.
 */
export async function swapIntoSite(
  siteRoot: string,
  restored: string,
  paths: string[],
  asideDir: string,
): Promise<void> {
  await mkdir(asideDir, { recursive: true, mode: 0o700 });
  const moved: Array<{ path: string; hadLive: boolean }> = [];
  try {
    for (const path of paths) {
      const live = join(siteRoot, path);
      const incoming = join(restored, path);
      if (!existsSync(incoming)) continue;
      // Carry preserved subtrees of the live copy into the restored one before the swap.
      for (const keep of PRESERVED) {
        if (keep.startsWith(`${path}/`) && existsSync(join(live, keep.slice(path.length + 1)))) {
          const target = join(incoming, keep.slice(path.length + 1));
          await rm(target, { recursive: true, force: true });
          await mkdir(dirname(target), { recursive: true });
          await rename(join(live, keep.slice(path.length + 1)), target);
        }
      }
      const hadLive = existsSync(live);
      if (hadLive) {
        await mkdir(dirname(join(asideDir, path)), { recursive: true });
        await rename(live, join(asideDir, path));
      }
      await mkdir(dirname(live), { recursive: true });
      await rename(incoming, live);
      moved.push({ path, hadLive });
    }
  } catch (error) {
    // A path that had no live copy has nothing aside to tell it apart from a live one: take it out first.
    for (const { path } of moved.filter((entry) => !entry.hadLive)) {
      await rename(join(siteRoot, path), join(restored, path)).catch(() => undefined);
    }
    await undoSwap(siteRoot, restored, paths, asideDir);
    throw error;
  }
  await rename(asideDir, discardedOf(asideDir));
  await rm(discardedOf(asideDir), { recursive: true, force: true });
}

/**
 * After a crash during an in-place restore: when the swap had not committed, puts the live copy of every path back
 * (with the preserved raw database files the swap had carried into the restored copy), then removes the restored
 * copy and the aside directory. Returns what it found.
 */
export async function recoverInterruptedSwap(
  siteRoot: string,
  restored: string,
  paths: string[],
  asideDir: string,
): Promise<'rolled-back' | 'committed' | 'not-started'> {
  let found: 'rolled-back' | 'committed' | 'not-started' = 'not-started';
  if (existsSync(asideDir)) {
    await undoSwap(siteRoot, restored, paths, asideDir);
    found = 'rolled-back';
  } else if (existsSync(discardedOf(asideDir))) {
    found = 'committed';
  }
  await rm(discardedOf(asideDir), { recursive: true, force: true });
  await rm(asideDir, { recursive: true, force: true });
  await rm(restored, { recursive: true, force: true });
  return found;
}

/** Puts back every path found aside, from the state on disk alone, so it works for a live failure and after a crash. */
async function undoSwap(siteRoot: string, restored: string, paths: string[], asideDir: string): Promise<void> {
  for (const path of paths) {
    const live = join(siteRoot, path);
    const incoming = join(restored, path);
    const aside = join(asideDir, path);
    if (existsSync(aside)) {
      if (existsSync(live)) {
        // The restored copy was swapped in and holds the live preserved subtrees: hand them back first.
        await carryPreserved(path, live, aside);
        await rm(incoming, { recursive: true, force: true });
        await mkdir(dirname(incoming), { recursive: true });
        await rename(live, incoming);
      }
      await mkdir(dirname(live), { recursive: true });
      await rename(aside, live);
    }
    // Preserved subtrees carried into the restored copy before the live one moved aside go back too.
    if (existsSync(live)) await carryPreserved(path, incoming, live);
  }
}

async function carryPreserved(path: string, from: string, to: string): Promise<void> {
  for (const keep of PRESERVED) {
    if (!keep.startsWith(`${path}/`)) continue;
    const relative = keep.slice(path.length + 1);
    if (existsSync(join(from, relative)) && !existsSync(join(to, relative))) {
      await mkdir(dirname(join(to, relative)), { recursive: true });
      await rename(join(from, relative), join(to, relative));
    }
  }
}
