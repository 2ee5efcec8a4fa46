import { Injectable } from '@nestjs/common';
import { fchown } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { JobFailure } from '../jobs/job-failure';
import type { Site } from '../sites/site';
import { ensureOwnedDir, openDirBelow, type OpenedDir } from './tenant-files';
import type { DatabaseRef } from './webapp-types';

const fchownAsync = promisify(fchown);

export type SnapshotKind = 'manual' | 'pre-update' | 'pre-rollback';

export interface StoredSnapshot {
  /** The commit id. */
  id: string;
  createdAt: string;
  message: string;
  kind: SnapshotKind;
  filesChanged: number;
  /** File names are relative to the app's state directory. */
  database: (DatabaseRef & { file: string; bytes: number; sha256: string }) | null;
  modesFile: string;
}

export interface AppState {
  path: string;
  enabled: boolean;
  includeUploads: boolean;
  snapshots: StoredSnapshot[];
  /** Written before a rollback touches anything; cleared when it ends. A crash leaves it for recovery. */
  pendingRollback: { jobId: string; safety: string } | null;
}

/**
 * Where an app's snapshots live, all inside the site so that its own backups carry them:
 * - the snapshot list, the database exports and the file modes in `info/webapps/<app>/`: root's, mode 0700, in the
 *   root-owned `info` that the tenant cannot write and the web server never serves (a database export is imported
 *   with the database administrator's rights, so a tenant must never be able to write one);
 * - the git repository in `shadow/var/backups/webapps/<app>.git`, outside every docroot, owned by the app's owner:
 *   git runs as that owner (see SiteGit), so nothing in it ever runs as root.
 */
@Injectable()
export class SnapshotStore {
  /** The app's root-only state directory, made when missing; refuses a site whose `info` is not root's alone. */
  async stateDir(site: Site, appId: string): Promise<string> {
    const info = await openDirBelow(site.root, ['info']);
    if (!info) throw new JobFailure('site-layout', `${site.id} has no info directory`);
    try {
      if (info.stats.uid !== 0 || (info.stats.mode & 0o022) !== 0) {
        throw new JobFailure('site-layout', `${site.id}/info is not owned by root and writable by root alone`);
      }
      const webapps = await ensureOwnedDir(info.fd, 'webapps', 0o700, 0);
      try {
        await (await ensureOwnedDir(webapps.fd, appId, 0o700, 0)).close();
      } finally {
        await webapps.close();
      }
    } finally {
      await info.close();
    }
    return join(site.root, 'info', 'webapps', appId);
  }

  /**
   * Reads the state without creating anything; undefined when snapshots were never enabled. The state names the
   * database a rollback imports into with administrator rights, so it is read only when `info`, `info/webapps` and the
   * app's directory are root's and writable by root alone (checked on the opened descriptors).
   */
  async read(site: Site, appId: string): Promise<AppState | undefined> {
    const dir = await openDirBelow(site.root, ['info', 'webapps', appId]);
    if (!dir) return undefined;
    try {
      // Not root's alone: not trusted, as if snapshots were never enabled (enabling then refuses the layout).
      if (!(await this.rootOnlyChain(site, appId))) return undefined;
      const text = await readFile(`/proc/self/fd/${dir.fd}/state.json`, 'utf8').catch(() => undefined);
      return text ? (JSON.parse(text) as AppState) : undefined;
    } finally {
      await dir.close();
    }
  }

  private async rootOnlyChain(site: Site, appId: string): Promise<boolean> {
    const parts = ['info', 'webapps', appId];
    for (let depth = 1; depth <= parts.length; depth++) {
      const dir = await openDirBelow(site.root, parts.slice(0, depth));
      if (!dir) return false;
      await dir.close();
      if (dir.stats.uid !== 0 || (dir.stats.mode & 0o022) !== 0) return false;
    }
    return true;
  }

  async write(site: Site, appId: string, state: AppState): Promise<void> {
    const dir = await this.stateDir(site, appId);
    const partial = join(dir, `.state.json.${process.pid}.${Date.now()}`);
    const handle = await open(partial, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(state, null, 1));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(partial, join(dir, 'state.json'));
  }

  async update(site: Site, appId: string, change: (state: AppState) => void): Promise<AppState> {
    const state = await this.read(site, appId);
    if (!state) throw new JobFailure('snapshots-disabled', `snapshots were never enabled for ${appId}`);
    change(state);
    await this.write(site, appId, state);
    return state;
  }

  async removeFile(site: Site, appId: string, name: string): Promise<void> {
    await rm(join(site.root, 'info', 'webapps', appId, name), { force: true });
  }

  /**
   * The app's git directory, made when missing: `shadow/var/backups/webapps` (root's, 0711: the owner may pass, not
   * list or write) and in it `<app>.git`, handed to the owner by fchown on the descriptor just made. Every component
   * is opened without following links, so a tenant's planted link cannot point this anywhere else.
   */
  async gitDir(site: Site, appId: string, owner: { uid: number; gid: number }): Promise<string> {
    const shadow = await openDirBelow(site.root, ['shadow']);
    if (!shadow) throw new JobFailure('site-layout', `${site.id} has no shadow directory`);
    const opened: OpenedDir[] = [shadow];
    try {
      const varDir = await openDirBelow(`/proc/self/fd/${shadow.fd}/.`, ['var']);
      if (!varDir) throw new JobFailure('site-layout', `${site.id} has no shadow/var directory`);
      opened.push(varDir);
      const backups = await openOrMake(varDir.fd, 'backups');
      opened.push(backups);
      const webapps = await ensureOwnedDir(backups.fd, 'webapps', 0o711, 0);
      opened.push(webapps);
      const name = `${appId}.git`;
      const repo = await openDirBelow(`/proc/self/fd/${webapps.fd}/.`, [name]);
      if (repo) {
        opened.push(repo);
        if (repo.stats.uid !== owner.uid) {
          throw new JobFailure('site-layout', `${name} is owned by uid ${repo.stats.uid}, not the app’s owner`);
        }
      } else {
        const made = await ensureOwnedDir(webapps.fd, name, 0o700, 0);
        opened.push(made);
        await fchownAsync(made.fd, owner.uid, owner.gid);
      }
    } finally {
      for (const dir of opened.reverse()) await dir.close();
    }
    return join(site.root, 'shadow', 'var', 'backups', 'webapps', `${appId}.git`);
  }
}

/** A directory the tenant may own (shadow/var/backups): opened without following links, made root's when missing. */
async function openOrMake(parentFd: number, name: string): Promise<OpenedDir> {
  const existing = await openDirBelow(`/proc/self/fd/${parentFd}/.`, [name]);
  if (existing) return existing;
  return ensureOwnedDir(parentFd, name, 0o755, 0);
}
