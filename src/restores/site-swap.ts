import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Directories no restore replaces: raw database files live there and are never in a backup. */
export const PRESERVED = ['shadow/var/lib'];

/**
 * Moves each restored path from `restored` into `siteRoot`, keeping the live copy aside until every path is in place,
 * so a failure part-way puts the old data back instead of leaving a half-restored site.
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
    for (const { path, hadLive } of moved.reverse()) {
      await rename(join(siteRoot, path), join(restored, path)).catch(() => undefined);
      if (hadLive) await rename(join(asideDir, path), join(siteRoot, path)).catch(() => undefined);
    }
    throw error;
  }
  await rm(asideDir, { recursive: true, force: true });
}
