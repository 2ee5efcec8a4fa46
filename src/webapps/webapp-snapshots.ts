import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Clock } from '../common/clock';
import { databasesWithPrefix, readDatabasePrefix } from '../exports/database-prefix';
import { JobFailure } from '../jobs/job-failure';
import type { JobContext } from '../jobs/job-context';
import type { Site } from '../sites/site';
import { SiteGit, type GitTarget } from './site-git';
import { SnapshotStore, type AppState, type SnapshotKind, type StoredSnapshot } from './snapshot-store';
import { WebappDatabases } from './webapp-databases';
import { appDirPath, type DetectedWebapp } from './webapp-detector';
import { kindOf, type DatabaseRef } from './webapp-types';

const DIFF_TIMEOUT_MS = 120_000;
const MAX_DIFF_PATHS = 1000;
const CHMOD_BATCH = 500;

export interface DiffSummary {
  snapshot: string;
  added: number;
  modified: number;
  deleted: number;
  /** The first MAX_DIFF_PATHS changed paths, sorted. */
  paths: Array<{ path: string; change: 'added' | 'modified' | 'deleted' }>;
  truncated: boolean;
}

export interface RollbackOutcome {
  snapshot: string;
  safetySnapshot: string;
  database: string | null;
}

/** `path\0path\0` → paths. */
function splitZ(text: string): string[] {
  return text.split('\0').filter((entry) => entry.length > 0);
}

/** Snapshots of one app: git for its files (run as its owner), a logical export for its database, modes on the side. */
@Injectable()
export class WebappSnapshots {
  constructor(
    private readonly git: SiteGit,
    private readonly store: SnapshotStore,
    private readonly databases: WebappDatabases,
    private readonly clock: Clock,
  ) {}

  /** Git pathspecs: the whole tree minus the type's caches (and uploads unless asked). */
  pathspecs(app: DetectedWebapp, state: Pick<AppState, 'includeUploads'>): string[] {
    return ['.', ...this.ignored(app, state).map((pattern) => `:(exclude,glob)${pattern}`)];
  }

  ignored(app: DetectedWebapp, state: Pick<AppState, 'includeUploads'>): string[] {
    const kind = kindOf(app.type);
    return [...kind.ignored, ...(state.includeUploads ? [] : kind.uploads)];
  }

  async target(site: Site, app: DetectedWebapp): Promise<GitTarget> {
    const gitDir = await this.store.gitDir(site, app.id, app.owner);
    return { gitDir, workTree: appDirPath(site, app), uid: app.owner.uid, gid: app.owner.gid };
  }

  /** Turns snapshots on: the root-only state directory, then the repository (made by its owner). */
  async enable(site: Site, app: DetectedWebapp, includeUploads: boolean): Promise<AppState> {
    if (app.owner.uid === 0) {
      throw new JobFailure('unsafe-owner', `${app.path} is owned by root: snapshots run git as the app’s owner`);
    }
    // The root-only half first: a site whose info is not root's gets nothing made, not even the repository.
    await this.store.stateDir(site, app.id);
    const target = await this.target(site, app);
    await this.git.run(target, { args: ['init', '--quiet'] });
    const state = (await this.store.read(site, app.id)) ?? {
      path: app.path,
      enabled: true,
      includeUploads,
      snapshots: [],
      pendingRollback: null,
    };
    state.enabled = true;
    state.includeUploads = includeUploads;
    await this.store.write(site, app.id, state);
    return state;
  }

  async disable(site: Site, app: DetectedWebapp): Promise<AppState | undefined> {
    const state = await this.store.read(site, app.id);
    if (!state) return undefined;
    state.enabled = false;
    await this.store.write(site, app.id, state);
    return state;
  }

  /** Commits the files, exports the database beside the commit, records both. */
  async take(
    site: Site,
    app: DetectedWebapp,
    message: string,
    kind: SnapshotKind,
    context: JobContext,
    /** The database to export with the files: the app's own unless said otherwise. */
    databaseRef: DatabaseRef | null = app.database,
  ): Promise<StoredSnapshot> {
    const state = await this.store.read(site, app.id);
    if (!state?.enabled) throw new JobFailure('snapshots-disabled', `snapshots are not enabled for ${app.id}`);
    const target = await this.target(site, app);
    const signal = context.signal;
    const pids = (pid: number) => context.trackPid(pid);
    context.progress({ phase: 'commit files' });
    await this.clearStaleLock(target, signal);
    await this.git.run(target, {
      args: ['add', '--all', '--force', '--', ...this.pathspecs(app, state)],
      signal,
      onSpawn: pids,
    });
    await this.git.run(target, {
      args: ['commit', '--quiet', '--allow-empty', '--no-verify', '--no-gpg-sign', `--message=${message || kind}`],
      signal,
      onSpawn: pids,
    });
    const commit = (
      await this.git.run(target, { args: ['rev-parse', '--verify', 'HEAD'], signal, onSpawn: pids })
    ).stdout.trim();
    if (!/^[0-9a-f]{40,64}$/.test(commit)) throw new JobFailure('git-failed', `unexpected commit id ${commit}`);
    const changed = splitZ(
      (
        await this.git.run(target, {
          args: ['diff-tree', '-r', '--root', '--no-commit-id', '--name-only', '-z', commit],
          signal,
        })
      ).stdout,
    ).length;
    context.log(`${app.id}: commit ${commit}, ${changed} files changed`);

    const dir = await this.store.stateDir(site, app.id);
    const modesFile = `${commit}.modes.json`;
    await writeFile(join(dir, modesFile), JSON.stringify(await this.trackedModes(target, signal)), {
      mode: 0o600,
    });

    let database: StoredSnapshot['database'] = null;
    if (databaseRef) {
      context.progress({ phase: `export ${databaseRef.engine} ${databaseRef.name}` });
      const file = `${commit}.${databaseRef.engine}.${this.databases.fileExtension(databaseRef)}`;
      const dump = await this.databases.dump(databaseRef, join(dir, file), signal, pids);
      database = { engine: databaseRef.engine, name: databaseRef.name, file, ...dump };
      context.log(`${app.id}: ${databaseRef.engine} ${databaseRef.name} exported, ${dump.bytes} bytes`);
    }
    const snapshot: StoredSnapshot = {
      id: commit,
      createdAt: this.clock.iso(),
      message: message || kind,
      kind,
      filesChanged: changed,
      database,
      modesFile,
    };
    await this.store.update(site, app.id, (current) => current.snapshots.push(snapshot));
    return snapshot;
  }

  async list(site: Site, app: DetectedWebapp): Promise<StoredSnapshot[]> {
    const state = await this.store.read(site, app.id);
    return [...(state?.snapshots ?? [])].reverse();
  }

  async find(site: Site, app: DetectedWebapp, id: string): Promise<StoredSnapshot | undefined> {
    return (await this.list(site, app)).find((snapshot) => snapshot.id === id);
  }

  /** What changed in the files since the snapshot: a scratch index of the tree now, compared with its commit. */
  async diff(site: Site, app: DetectedWebapp, snapshot: StoredSnapshot, signal?: AbortSignal): Promise<DiffSummary> {
    const state = (await this.store.read(site, app.id))!;
    const target = await this.target(site, app);
    // A scratch index per request: diffs may run side by side, and beside a job.
    const indexFile = join(target.gitDir, `index.diff-${randomUUID()}`);
    const run = (args: string[]) => this.git.run(target, { args, indexFile, signal, timeoutMs: DIFF_TIMEOUT_MS });
    let fields: string[];
    try {
      await run(['read-tree', snapshot.id]);
      await run(['add', '--all', '--force', '--', ...this.pathspecs(app, state)]);
      fields = splitZ((await run(['diff', '--cached', '--name-status', '--no-renames', '-z', snapshot.id])).stdout);
    } finally {
      await this.git.runAsOwner(target, 'rm', ['-f', '--', indexFile, `${indexFile}.lock`]).catch(() => undefined);
    }
    const paths: DiffSummary['paths'] = [];
    const counts = { added: 0, modified: 0, deleted: 0 };
    for (let index = 0; index + 1 < fields.length; index += 2) {
      const change = fields[index] === 'A' ? 'added' : fields[index] === 'D' ? 'deleted' : 'modified';
      counts[change]++;
      paths.push({ path: fields[index + 1], change });
    }
    paths.sort((a, b) => a.path.localeCompare(b.path));
    return {
      snapshot: snapshot.id,
      ...counts,
      paths: paths.slice(0, MAX_DIFF_PATHS),
      truncated: paths.length > MAX_DIFF_PATHS,
    };
  }

  /**
   * Puts files and database back as they were at `snapshot`, as one: a safety snapshot of both is taken first; when
   * either half fails, both are put back from it before the failure is reported.
   */
  async rollback(
    site: Site,
    app: DetectedWebapp,
    snapshot: StoredSnapshot,
    context: JobContext,
  ): Promise<RollbackOutcome> {
    const state = await this.store.read(site, app.id);
    if (!state?.enabled) throw new JobFailure('snapshots-disabled', `snapshots are not enabled for ${app.id}`);
    if (snapshot.database) {
      const prefix = await readDatabasePrefix(site.root, snapshot.database.engine);
      if (!prefix || databasesWithPrefix([snapshot.database.name], prefix).length !== 1) {
        throw new JobFailure(
          'database-not-the-sites',
          `${snapshot.database.name} does not carry ${site.id}'s database prefix (any more): not importing into it`,
        );
      }
    }
    // The safety copy holds the database the rollback replaces, even when the app's configuration no longer names it.
    const replaced = snapshot.database
      ? { engine: snapshot.database.engine, name: snapshot.database.name }
      : app.database;
    const safety = await this.take(site, app, `before rollback to ${snapshot.id}`, 'pre-rollback', context, replaced);
    await this.store.update(site, app.id, (current) => {
      current.pendingRollback = { jobId: context.jobId, safety: safety.id };
    });
    try {
      await this.restore(site, app, snapshot, context);
    } catch (error) {
      context.log(`${app.id}: rollback failed (${(error as Error).message}); putting back the state before it`);
      await this.restore(site, app, safety, context, true);
      await this.store.update(site, app.id, (current) => {
        current.pendingRollback = null;
      });
      throw error;
    }
    await this.store.update(site, app.id, (current) => {
      current.pendingRollback = null;
    });
    return { snapshot: snapshot.id, safetySnapshot: safety.id, database: snapshot.database?.name ?? null };
  }

  /** After a crash in the middle of a rollback: back to the safety snapshot it had taken. */
  async recover(site: Site, app: DetectedWebapp, context: JobContext): Promise<boolean> {
    const state = await this.store.read(site, app.id);
    const safetyId = state?.pendingRollback?.safety;
    const safety = state?.snapshots.find((snapshot) => snapshot.id === safetyId);
    if (!safety) return false;
    await this.restore(site, app, safety, context, true);
    await this.store.update(site, app.id, (current) => {
      current.pendingRollback = null;
    });
    return true;
  }

  private async restore(
    site: Site,
    app: DetectedWebapp,
    snapshot: StoredSnapshot,
    context: JobContext,
    undoing = false,
  ): Promise<void> {
    const state = (await this.store.read(site, app.id))!;
    const target = await this.target(site, app);
    // Putting the state before back must not stop half way because the job was cancelled.
    const signal = undoing ? undefined : context.signal;
    const pids = (pid: number) => context.trackPid(pid);
    context.progress({ phase: undoing ? 'put back files' : 'roll back files' });
    await this.clearStaleLock(target, signal);
    await this.git.run(target, {
      args: ['add', '--all', '--force', '--', ...this.pathspecs(app, state)],
      signal,
      onSpawn: pids,
    });
    await this.git.run(target, { args: ['read-tree', '--reset', '-u', snapshot.id], signal, onSpawn: pids });
    const keep = this.ignored(app, state).flatMap((pattern) => ['-e', `/${pattern}`]);
    await this.git.run(target, { args: ['clean', '-f', '-d', '-x', '-q', ...keep, '--', '.'], signal, onSpawn: pids });
    await this.applyModes(site, app, target, snapshot, signal);
    if (snapshot.database) {
      context.progress({
        phase: `${undoing ? 'put back' : 'import'} ${snapshot.database.engine} ${snapshot.database.name}`,
      });
      const dir = await this.store.stateDir(site, app.id);
      await this.databases.replace(
        snapshot.database,
        join(dir, snapshot.database.file),
        context.workDir,
        signal ?? new AbortController().signal,
        pids,
      );
    }
    context.log(
      `${app.id}: files${snapshot.database ? ' and database' : ''} ${undoing ? 'put back to' : 'rolled back to'} ${snapshot.id}`,
    );
  }

  /**
   * A git killed mid-run (a cancelled or interrupted job) leaves `index.lock`, and every later git run would refuse to
   * start. Jobs of one site never overlap, so a lock seen when a job starts is stale.
   */
  private async clearStaleLock(target: GitTarget, signal?: AbortSignal): Promise<void> {
    await this.git.runAsOwner(target, 'rm', ['-f', '--', join(target.gitDir, 'index.lock')], signal);
  }

  /** Modes of every tracked file and of the directories above them, as the owner's `find` sees them. */
  private async trackedModes(target: GitTarget, signal?: AbortSignal): Promise<Record<string, string>> {
    const tracked = new Set<string>();
    for (const path of splitZ((await this.git.run(target, { args: ['ls-files', '-z'], signal })).stdout)) {
      tracked.add(path);
      for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1))
        tracked.add(path.slice(0, cut));
    }
    const modes: Record<string, string> = {};
    for (const [path, mode] of await this.currentModes(target, signal)) if (tracked.has(path)) modes[path] = mode;
    return modes;
  }

  private async currentModes(target: GitTarget, signal?: AbortSignal): Promise<Map<string, string>> {
    const out = await this.git.runAsOwner(
      target,
      'find',
      ['.', '-mindepth', '1', '(', '-type', 'f', '-o', '-type', 'd', ')', '-printf', '%m %P\\0'],
      signal,
    );
    const modes = new Map<string, string>();
    for (const entry of splitZ(out.stdout)) {
      const space = entry.indexOf(' ');
      if (space > 0) modes.set(entry.slice(space + 1), entry.slice(0, space));
    }
    return modes;
  }

  private async applyModes(
    site: Site,
    app: DetectedWebapp,
    target: GitTarget,
    snapshot: StoredSnapshot,
    signal?: AbortSignal,
  ): Promise<void> {
    const dir = await this.store.stateDir(site, app.id);
    const wanted = JSON.parse(await readFile(join(dir, snapshot.modesFile), 'utf8')) as Record<string, string>;
    const current = await this.currentModes(target, signal);
    const byMode = new Map<string, string[]>();
    for (const [path, mode] of Object.entries(wanted)) {
      if (!/^[0-7]{1,4}$/.test(mode) || current.get(path) === undefined || current.get(path) === mode) continue;
      byMode.set(mode, [...(byMode.get(mode) ?? []), `./${path}`]);
    }
    for (const [mode, paths] of byMode) {
      for (let start = 0; start < paths.length; start += CHMOD_BATCH) {
        await this.git.runAsOwner(target, 'chmod', [mode, '--', ...paths.slice(start, start + CHMOD_BATCH)], signal);
      }
    }
  }
}
