import { OpenedDir, removeServiceTree, SafeFsError, withDir } from '../../common/safe-fs';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import {
  copyFile,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
import { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import { TargetGate } from '../../jobs/target-gate';
import {
  BackupOutcome,
  BackupProvider,
  BackupRequest,
  BackupSubject,
  PointFile,
  ProviderStatus,
  PruneOutcome,
  PruneRequest,
  SetSize,
  RestoreOutcome,
  RestorePoint,
  RestoreRequest,
  restoreWorkArea,
} from '../backup-provider';
import { type BackupLevel } from '../../jobs/backup-level';
import { JobContext } from '../../jobs/job-context';
import { FsAttributesService } from '../fs-attributes/fs-attributes.service';
import { ManifestFence } from '../fs-attributes/manifest-fence';
import { msUntilAfter, planRepair, sleepUntilAfter, type RepairPlan } from './duplicity-chain-repair';
import { collectionFromNames, hasCompleteFull } from './duplicity-chains';
import { listDuplicityPointFiles, signalContext } from './duplicity-files';
import { parseDuplicityFileName, partialSetsIn } from './duplicity-names';
import { measureDuplicitySets, pruneDuplicity } from './duplicity-retention';
import { DuplicityTarget, type TargetAccess } from './duplicity-target';
import { duplicityErrorFor, findFatalError } from './duplicity-errors';
import { toRestorePoints } from './duplicity-collection-status';
import { interpretRecord } from './duplicity-events';
import { LogFdParser, type DuplicityRecord } from './duplicity-log-fd';
import {
  ATTRIBUTES_FILE,
  currentLayout,
  layoutOfPoint,
  layoutsOf,
  manifestSourcePath,
  SITE_MANIFEST_DIR,
  type DuplicityLayout,
} from './duplicity-layout';
/** Local copies of recent points' attribute manifests, for path restores. */
const MANIFEST_COPIES = 8;
/** The newest set may end up to this far ahead of our clock (another host's, or a clock stepped back) before we refuse. */
const MAX_SAME_SECOND_WAIT_MS = 10_000;
/** What a restore of a path that a point does not hold ends with. */
const NOT_IN_POINT = new Set(['duplicity-path-not-in-backup', 'duplicity-restore-empty']);
/** Listing every file of a point (browsing) reads the whole chain's signatures. */
const LIST_TIMEOUT_MS = 3_600_000;

/**
 * Duplicity backups of a subject's paths, one chain per subject at `<DUPLICITY_TARGET>/<key>`. Duplicity drops xattrs
 * and ACLs, so each backup also carries a manifest of them that a restore re-applies.
 */
@Injectable()
export class DuplicityProvider implements BackupProvider, OnApplicationShutdown {
  readonly name = 'duplicity' as const;
  readonly levels: readonly BackupLevel[] = ['full', 'incremental'];
  readonly pruneUnit = 'chain' as const;
  private readonly logger = new Logger(DuplicityProvider.name);

  constructor(
    private readonly runner: ProcessRunner,
    private readonly config: AppConfig,
    private readonly attributes: FsAttributesService,
    private readonly target: DuplicityTarget,
    private readonly gate: TargetGate,
    private readonly fence: ManifestFence,
  ) {}

  refuseLevel(level: BackupLevel): string | undefined {
    return level === 'differential'
      ? 'duplicity has no differential level: it makes full and incremental backups only (use the bacula provider for differentials).'
      : undefined;
  }

  async status(): Promise<ProviderStatus> {
    const result = await this.runner.run({
      command: 'duplicity',
      args: ['--version'],
      captureStdout: true,
      timeoutMs: 15_000,
    });
    const warnings = this.config.duplicity.passphraseFile
      ? []
      : ['DUPLICITY_PASSPHRASE_FILE is not set: backups are stored unencrypted (--no-encryption).'];
    if (result.exitCode !== 0) {
      return {
        available: false,
        version: null,
        reason: `duplicity --version failed: ${result.stderrTail || `exit ${result.exitCode}`}`,
        warnings,
      };
    }
    return { available: true, version: /(\d+\.\d+[\w.]*)/.exec(result.stdout)?.[1] ?? result.stdout.trim(), warnings };
  }

  /** A backup, tried again (chain repaired first) while the target is unreachable: see TargetGate. */
  backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome> {
    const realStart = Date.now();
    // `request.time` is the service clock at this call; shifted by the real time since, it stays right across the
    // chain check, the attribute capture, a same-second wait and the gate's retries.
    const clockAt = (): number => (request.time ? request.time.getTime() + (Date.now() - realStart) : Date.now());
    return this.gate.run(this.name, () => this.backupOnce(request, context, clockAt), context);
  }

  restore(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome> {
    return this.gate.run(this.name, () => this.restoreOnce(request, context), context);
  }

  private async backupOnce(request: BackupRequest, context: JobContext, clockAt: () => number): Promise<BackupOutcome> {
    const { subject } = request;
    const layout = currentLayout(subject, this.manifestDir(subject));
    const notes: string[] = [];
    // The chain check reads only the target and the archive dir (over ssh for a remote target, seconds) and then
    // perhaps waits for the next second; the attribute capture reads only the site. They run side by side, and
    // duplicity starts once the chain is checked, beside the capture: the fence (ManifestFence) holds it at the
    // manifest's directory until the manifest is complete.
    context.progress({ phase: 'capture-attributes', percent: null, bytes: null });
    const repairing = this.repairChain(subject, context).then(async (repair) => {
      await this.startAfterNewestSet(repair.newestTime, context, clockAt);
      return repair;
    });
    // Its failure is read where duplicity would start (after the capture, when there is no fence).
    repairing.catch(() => undefined);
    let level = request.level;
    let statistics: Record<string, string | number> = {};
    const errors: DuplicityRecord[] = [];
    const backUp = async (signal: AbortSignal): Promise<RunResult> => {
      const repair = await repairing;
      notes.push(...repair.notes);
      if (level === 'incremental') {
        // The names the repair just listed say whether a finished full exists: no second look at the target.
        if (!hasCompleteFull(repair.targetNames)) {
          level = 'full';
          notes.push('no full backup existed for this site, so this backup is a full one');
          context.log('no complete chain at the target: making a full backup instead of an incremental');
        } else if (!(await this.chainIsIn(subject, layout))) {
          // An incremental from another source directory would hold every path anew, under other names.
          level = 'full';
          notes.push(
            "this site's chain was made from /: backups are now made from the site's own directory, so this one starts a new chain",
          );
          context.log(
            'the chain at the target was made from /: starting a new chain from the site directory with a full backup',
          );
        }
      }
      // duplicity tries each path against these in order until one matches: the subject's own includes first, so a
      // site's millions of paths never test the manifest's pattern (which only the manifest itself matches).
      const selection = [
        ...subject.exclude.flatMap((path) => ['--exclude', path]),
        ...subject.include.flatMap((path) => ['--include', path]),
        '--include',
        manifestSourcePath(layout),
        '--exclude',
        '**',
      ];
      context.progress({ phase: 'backup' });
      // `--verbosity notice`: info would make duplicity format a record per file (and this service parse it), which
      // doubled the time of a 50,000-file restore; notice still carries errors, warnings and the closing statistics.
      return this.duplicity(
        [
          level,
          '--verbosity',
          'notice',
          // The service's clock names the set (a scheduled slot; simulated time in tests).
          ...(request.time ? ['--current-time', String(Math.floor(clockAt() / 1000))] : []),
          ...(await this.common(subject)),
          ...selection,
          layout.source,
          this.targetOf(subject),
        ],
        context,
        (record) => {
          const event = interpretRecord(record);
          if (event.kind === 'statistics') statistics = event.values;
          if (event.kind === 'error') errors.push(record);
        },
        undefined,
        signal,
      );
    };
    const { captured, engine: result } = await this.captureBeside(subject, layout, context, backUp);
    this.assertSucceeded(result, 'backup', errors);
    // An incremental only ever continues a chain already recorded in this layout (chainIsIn): a full starts one.
    if (level === 'full') await this.recordLayout(subject, layout);
    await this.keepManifestCopy(subject);
    const sourceSize = numberOr(statistics.SourceFileSize);
    context.progress({ percent: 100, bytes: sourceSize });
    return {
      level,
      restorePointId: null,
      bytes: numberOr(statistics.TotalDestinationSizeChange ?? statistics.RawDeltaSize),
      files: numberOr(statistics.SourceFiles),
      warnings: captured.warnings,
      notes,
    };
  }

  /**
   * Writes the subject's attribute manifest, which the backup then holds beside the subject's files, while `engine`
   * (duplicity) starts. In a site it goes into SITE_MANIFEST_DIR, opened by descriptor below the site root and refused
   * unless it is root's own 0700 directory, so nothing planted there can redirect the write; the fence is set on that
   * very directory (through the descriptor), whatever a tenant renames meanwhile.
   */
  private async captureBeside<E>(
    subject: BackupSubject,
    layout: DuplicityLayout,
    context: JobContext,
    engine: (signal: AbortSignal) => Promise<E>,
  ): Promise<{ captured: { warnings: string[] }; engine: E }> {
    const capturedCopy = this.capturedCopy(subject);
    await mkdir(dirname(capturedCopy), { recursive: true, mode: 0o700 });
    const beside = (directory: string, capture: () => Promise<{ warnings: string[] }>) =>
      this.fence.besideEngine({
        directory,
        capture,
        engine,
        engineName: 'duplicity',
        signal: context.signal,
        log: (line) => context.log(line),
        trackPid: (pid) => context.trackPid(pid),
      });
    if (layout.kind === 'root') {
      const manifestDir = this.manifestDir(subject);
      await mkdir(manifestDir, { recursive: true, mode: 0o700 });
      const manifestFile = join(manifestDir, ATTRIBUTES_FILE);
      return beside(manifestDir, async () => {
        const captured = await this.captureInto(manifestFile, subject, context);
        await copyFile(manifestFile, capturedCopy);
        return captured;
      });
    }
    // The copy is taken from the directory just written, while it is still held open: after the backup, the name
    // SITE_MANIFEST_DIR may be another directory (a tenant can rename entries of the site root at any moment). The
    // manifest is opened as a regular file (no link, FIFO or second hard link) and copied from that descriptor.
    return this.inSiteManifestDir(subject, (dir) =>
      beside(`/proc/${process.pid}/fd/${dir.fd}`, async () => {
        const captured = await this.captureInto(dir.entryPath(ATTRIBUTES_FILE), subject, context);
        const { handle } = await dir.openRegularFile(ATTRIBUTES_FILE, { maxBytes: Number.MAX_SAFE_INTEGER });
        try {
          await copyFile(`/proc/self/fd/${handle.fd}`, capturedCopy);
        } finally {
          await handle.close();
        }
        return captured;
      }),
    );
  }

  /** The manifest this backup captured, kept under DATA_DIR until the set's time names it (keepManifestCopy). */
  private capturedCopy(subject: BackupSubject): string {
    return this.config.dataPath('duplicity', 'attribute-captures', `${subject.key}.dump`);
  }

  /** Runs `work` on the site's SITE_MANIFEST_DIR, created if missing, refused unless it is root's own 0700 directory. */
  private async inSiteManifestDir<T>(subject: BackupSubject, work: (dir: OpenedDir) => Promise<T>): Promise<T> {
    try {
      return await withDir(OpenedDir.openTrusted(subject.root), (root) =>
        withDir(root.ensurePrivateDir(SITE_MANIFEST_DIR), work),
      );
    } catch (error) {
      if (error instanceof SafeFsError) {
        throw new JobFailure('unsafe-path', `refusing to use the attribute manifest's directory: ${error.message}`);
      }
      throw error;
    }
  }

  private async captureInto(
    manifestFile: string,
    subject: BackupSubject,
    context: JobContext,
  ): Promise<{ warnings: string[] }> {
    const previousMtime = await stat(manifestFile).then(
      (stats) => Math.floor(stats.mtimeMs / 1000),
      () => null,
    );
    const captured = await this.attributes.capture({
      root: subject.root,
      paths: subject.include.map((path) => relative(subject.root, path)),
      exclude: subject.exclude.map((path) => relative(subject.root, path)),
      manifestFile,
      signal: context.signal,
    });
    // duplicity sees a change only in a file's whole-second mtime (or its size): a manifest rewritten in the second
    // the previous one was written, at the same size, would not be backed up again, and a restore would re-apply
    // the older attributes. Move its mtime past the previous one's.
    const mtime = Math.floor((await stat(manifestFile)).mtimeMs / 1000);
    if (previousMtime !== null && mtime <= previousMtime)
      await utimes(manifestFile, previousMtime + 1, previousMtime + 1);
    context.log(`captured extended attributes and ACLs of ${captured.entries} file(s)`);
    captured.warnings.forEach((warning) => context.log(`warning: ${warning}`));
    return { warnings: captured.warnings };
  }

  /**
   * Reads the chains from the target's file names (see collectionFromNames: collection-status would first copy every
   * manifest and signature into a scratch archive dir). The listing takes no archive lock, so a scan never fails
   * because a backup of the site is running. Sets a killed run left half-written have no manifest on the target, or
   * a `.part` manifest in the real archive dir; either way they are not complete points.
   */
  async scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]> {
    const names = await this.target.listNames({ ...(await this.targetAccess(subject, context)), lockFile: '' });
    const archive = await readdir(join(this.archiveDir(), subject.key)).catch(() => [] as string[]);
    return toRestorePoints(collectionFromNames(names), this.name, { partialSets: partialSetsIn(archive) });
  }

  private async restoreOnce(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome> {
    const { subject, point, paths, destination } = request;
    const repair = await this.repairChain(subject, context);
    const time = point.id.replace(/^duplicity-/, '');
    // duplicity writes beside the destination, on its filesystem, so the moves below are renames, never copies.
    const workArea = restoreWorkArea(destination);
    await removeServiceTree(workArea);
    await mkdir(workArea, { recursive: true, mode: 0o700 });
    const scratch = join(workArea, 'tree');
    // A default ACL above the restore would be inherited by every restored file; start from clean directories.
    await this.attributes.prepareRestoreDestination(destination, context.signal);
    await this.attributes.prepareRestoreDestination(workArea, context.signal);
    // A path restore needs the point's attribute manifest too: a local copy (kept at backup time) saves a second
    // duplicity run that would read the chain again just for it.
    const manifestCopy = paths.length ? this.manifestCopyOf(subject, time) : null;
    context.progress({ phase: 'restore', percent: null });
    const layout = paths.length
      ? await this.restorePaths(subject, time, [...paths, ...(manifestCopy ? [] : [null])], scratch, context)
      : await this.restoreWhole(subject, time, scratch, context);

    // Take the manifest out of the restored tree first: for a subject rooted at `/` (the server) its directory is
    // part of what would be moved into the destination.
    const restoredManifest = join(scratch, layout.manifestInArchive);
    const manifest = manifestCopy ?? join(workArea, ATTRIBUTES_FILE);
    if (!manifestCopy && existsSync(restoredManifest)) await rename(restoredManifest, manifest);
    if (layout.kind === 'site') await removeServiceTree(join(scratch, SITE_MANIFEST_DIR));
    else await removeEmptyParents(dirname(restoredManifest), scratch);

    const restoredRoot = join(scratch, layout.rootInArchive);
    const moved = paths.length ? paths : await readdir(restoredRoot);
    for (const path of moved) {
      if (!existsSync(join(restoredRoot, path))) continue;
      await mkdir(dirname(join(destination, path)), { recursive: true });
      await rename(join(restoredRoot, path), join(destination, path));
    }

    context.progress({ phase: 'reapply-attributes' });
    const warnings: string[] = [];
    if (existsSync(manifest)) {
      const applied = await this.attributes.apply({
        root: destination,
        manifestFile: manifest,
        onlyPaths: paths.length ? paths : undefined,
        workDir: context.workDir,
        signal: context.signal,
      });
      context.log(`re-applied extended attributes and ACLs to ${applied.applied} file(s)`);
      warnings.push(...applied.warnings);
    } else {
      warnings.push('the backup holds no attribute manifest: extended attributes and ACLs were not restored');
    }
    await removeServiceTree(workArea);
    context.progress({ percent: 100 });
    return {
      files: null,
      bytes: null,
      warnings: [...repair.notes.map((note) => `chain repaired: ${note}`), ...warnings],
    };
  }

  /** Restores the whole point into `scratch`; returns the layout it turned out to have. */
  private async restoreWhole(
    subject: BackupSubject,
    time: string,
    scratch: string,
    context: JobContext,
  ): Promise<DuplicityLayout> {
    await this.restoreFromArchive(time, '', scratch, subject, context);
    context.progress({ percent: 90 });
    return layoutOfPoint(layoutsOf(subject, this.manifestDir(subject)), (path) => existsSync(join(scratch, path)));
  }

  /**
   * Restores each path (relative to the subject's root; null for the manifest) into `scratch`, one duplicity run
   * each. The first one tells the point's layout: tried in the current layout, then in the older ones when duplicity
   * finds no such path.
   */
  private async restorePaths(
    subject: BackupSubject,
    time: string,
    wanted: (string | null)[],
    scratch: string,
    context: JobContext,
  ): Promise<DuplicityLayout> {
    let candidates = layoutsOf(subject, this.manifestDir(subject));
    for (const [index, path] of wanted.entries()) {
      let firstError: unknown;
      let found: DuplicityLayout | undefined;
      for (const layout of candidates) {
        const inArchive = path === null ? layout.manifestInArchive : join(layout.rootInArchive, path);
        try {
          await this.restoreFromArchive(time, inArchive, join(scratch, inArchive), subject, context);
          found = layout;
          break;
        } catch (error) {
          if (!(error instanceof JobFailure) || !NOT_IN_POINT.has(error.code)) throw error;
          firstError ??= error;
        }
      }
      if (!found) throw firstError;
      candidates = [found];
      context.progress({ percent: Math.round(((index + 1) / wanted.length) * 90) });
    }
    return candidates[0];
  }

  /** One `duplicity restore` of `inArchive` ('' for everything) at `time` into `dest`. */
  private async restoreFromArchive(
    time: string,
    inArchive: string,
    dest: string,
    subject: BackupSubject,
    context: JobContext,
  ): Promise<void> {
    await mkdir(dirname(dest), { recursive: true });
    const args = [
      'restore',
      '--time',
      time,
      ...(inArchive ? ['--file-to-restore', inArchive] : []),
      ...(await this.common(subject)),
      this.targetOf(subject),
      dest,
    ];
    const errors: DuplicityRecord[] = [];
    // Notice, not info: see backupOnce (no record per restored file).
    const result = await this.duplicity(['--verbosity', 'notice', ...args], context, (record) => {
      if (interpretRecord(record).kind === 'error') errors.push(record);
    });
    this.assertSucceeded(result, 'restore', errors);
    // duplicity can exit 0 having restored nothing (a missing parent directory); check instead of trusting it.
    if (!existsSync(dest))
      throw new JobFailure('duplicity-restore-empty', `duplicity restored nothing for ${inArchive || 'the backup'}`);
  }

  /**
   * gpg daemonises an agent that holds the passphrase in its environment, in its own session beyond our process
   * groups: stop it with the service.
   */
  async onApplicationShutdown(): Promise<void> {
    if (!this.config.duplicity.passphraseFile) return;
    await this.runner.run({
      command: 'gpgconf',
      args: ['--homedir', this.config.dataPath('duplicity', 'gnupg'), '--kill', 'gpg-agent'],
      timeoutMs: 5000,
    });
  }

  /** Retention (duplicity-retention.ts): whole chains, oldest first. */
  prune(request: PruneRequest, context: JobContext): Promise<PruneOutcome> {
    return pruneDuplicity(request, this.targetOf(request.subject), context, async (action, args) =>
      this.duplicity(
        [action, ...args, ...(await this.common(request.subject)), this.targetOf(request.subject)],
        context,
        () => undefined,
      ),
    );
  }

  measureSets(subject: BackupSubject): Promise<Map<string, SetSize>> {
    return measureDuplicitySets(this.targetOf(subject));
  }

  /** Browsing a point: see duplicity-files.ts. */
  listPointFiles(subject: BackupSubject, point: RestorePoint, signal?: AbortSignal): Promise<PointFile[]> {
    return listDuplicityPointFiles(subject, point, {
      scratchParent: () => this.ensureDir('scans'),
      common: (archiveDir) => this.common(subject, archiveDir),
      target: this.targetOf(subject),
      layouts: layoutsOf(subject, this.manifestDir(subject)),
      run: (args, onRecord) => this.duplicity(args, signal && signalContext(signal), onRecord, LIST_TIMEOUT_MS),
    });
  }

  /** Removes the archive lock a killed run left; called only when no run of ours can be alive. */
  async recover(subject: BackupSubject): Promise<void> {
    const lock = join(this.archiveDir(), subject.key, 'lockfile');
    await unlink(lock).then(
      () => this.logger.warn(`removed stale duplicity lock ${lock}`),
      () => undefined,
    );
  }

  /**
   * Puts the chain in a state duplicity can continue from (see duplicity-chain-repair.ts): removes what killed runs
   * left on the target and in the archive dir, renames a set that shares its second with the one before. Runs only in
   * a job of the subject, so no other run of this name is writing.
   */
  async repairChain(subject: BackupSubject, context: JobContext): Promise<RepairPlan & { targetNames: string[] }> {
    const access = await this.targetAccess(subject, context);
    const archive = join(this.archiveDir(), subject.key);
    let listedNames = await this.target.listNames(access);
    const archiveNames = await readdir(archive).catch(() => [] as string[]);
    let plan = planRepair(listedNames, archiveNames);
    if (plan.remove.length > 0 || plan.rename.length > 0 || plan.clearArchive || plan.unsafe) {
      // A change is planned from what the target holds under duplicity's archive lock, never from an unlocked read.
      listedNames = await this.target.list(access);
      plan = planRepair(listedNames, archiveNames);
    }
    if (plan.unsafe) {
      throw new JobFailure('duplicity-chain-unrepairable', `${plan.unsafe} (target ${this.targetOf(subject)})`);
    }
    if (plan.remove.length > 0 || plan.rename.length > 0 || plan.clearArchive) {
      // The archive dir is a cache of the target's manifests and signatures: duplicity fetches again what it needs.
      const clearArchive = plan.clearArchive ? archiveNames.filter((name) => name !== 'lockfile') : [];
      await this.target.apply(access, { remove: plan.remove, rename: plan.rename, clearArchive });
      // Copies are keyed by set time, which a repair may have changed: path restores read the target's again.
      await rm(this.manifestCopyDir(subject), { recursive: true, force: true });
    }
    for (const note of plan.notes) context.log(`chain repair: ${note}`);
    if (plan.notes.length > 0)
      this.logger.warn(`${subject.key}: repaired the duplicity chain: ${plan.notes.join('; ')}`);
    const renamed = new Map(plan.rename);
    const removed = new Set(plan.remove);
    const targetNames = listedNames.filter((name) => !removed.has(name)).map((name) => renamed.get(name) ?? name);
    return { ...plan, targetNames };
  }

  /**
   * duplicity names a set by the second it started in. A set started in the second the newest set ended in makes two
   * chains end at the same time, and duplicity then fails with AssertionError on every run of the name.
   */
  private async startAfterNewestSet(
    newestTime: string | null,
    context: JobContext,
    clockAt: () => number,
  ): Promise<void> {
    const wait = msUntilAfter(newestTime, clockAt());
    if (wait === 0) return;
    if (wait > MAX_SAME_SECOND_WAIT_MS) {
      throw new JobFailure(
        'local-problem',
        `the newest backup set at the target (${newestTime}) is ${Math.round(wait / 1000)} s ahead of this server's clock; fix the clock (NTP) before backing up`,
      );
    }
    context.log(
      `waiting ${wait} ms so that this set does not start in the second the newest set (${newestTime}) ended`,
    );
    await sleepUntilAfter(newestTime, clockAt, context.signal);
  }

  private async targetAccess(subject: BackupSubject, context?: JobContext): Promise<TargetAccess> {
    return {
      url: this.targetOf(subject),
      lockFile: join(this.archiveDir(), subject.key, 'lockfile'),
      env: await this.environment(context),
      signal: context?.signal,
      onSpawn: (pid) => context?.trackPid(pid),
    };
  }

  /** Where the copy of a point's attribute manifest is kept (beside, not inside, the backed-up manifest dir). */
  private manifestCopyDir(subject: BackupSubject): string {
    return this.config.dataPath('duplicity', 'attribute-copies', subject.key);
  }

  /**
   * Which layout the subject's chain was made in, recorded after each full backup: an incremental continues a chain only
   * from the same source directory. Nothing recorded (a site backed up before the `site` layout, or a lost
   * DATA_DIR) means a new chain.
   */
  private async chainIsIn(subject: BackupSubject, layout: DuplicityLayout): Promise<boolean> {
    if (layout.kind === 'root') return true;
    const recorded = await readFile(this.layoutRecord(subject), 'utf8').catch(() => '');
    return recorded.trim() === layout.kind;
  }

  private async recordLayout(subject: BackupSubject, layout: DuplicityLayout): Promise<void> {
    if (layout.kind === 'root') return;
    await mkdir(dirname(this.layoutRecord(subject)), { recursive: true, mode: 0o700 });
    await writeFile(this.layoutRecord(subject), `${layout.kind}\n`, { mode: 0o600 });
    // The manifest the site's backups from `/` carried under DATA_DIR: no backup reads it any more.
    await rm(this.manifestDir(subject), { recursive: true, force: true });
  }

  private layoutRecord(subject: BackupSubject): string {
    return this.config.dataPath('duplicity', 'layouts', subject.key);
  }

  /** Keeps the manifest this backup captured under the new set's time; keeps the newest MANIFEST_COPIES. */
  private async keepManifestCopy(subject: BackupSubject): Promise<void> {
    const archive = await readdir(join(this.archiveDir(), subject.key)).catch(() => [] as string[]);
    const newest = archive
      .map((name) => parseDuplicityFileName(name))
      .filter((parsed) => parsed?.content === 'manifest' && !parsed.partial)
      .map((parsed) => parsed!.set.time)
      .sort()
      .at(-1);
    if (!newest) return;
    const dir = this.manifestCopyDir(subject);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await rename(this.capturedCopy(subject), join(dir, `${newest}.dump`));
    const copies = (await readdir(dir)).filter((name) => name.endsWith('.dump')).sort();
    for (const old of copies.slice(0, Math.max(0, copies.length - MANIFEST_COPIES))) {
      await rm(join(dir, old), { force: true });
    }
  }

  private manifestCopyOf(subject: BackupSubject, time: string): string | null {
    const file = join(this.manifestCopyDir(subject), `${time}.dump`);
    return existsSync(file) ? file : null;
  }

  private targetOf(subject: BackupSubject): string {
    return `${this.config.duplicity.target}/${subject.key}`;
  }

  private archiveDir(): string {
    return this.config.dataPath('duplicity', 'archive');
  }

  private manifestDir(subject: BackupSubject): string {
    return this.config.dataPath('duplicity', 'attributes', subject.key);
  }

  private async ensureDir(name: string): Promise<string> {
    const dir = this.config.dataPath('duplicity', name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private async common(subject: BackupSubject, archiveDir = this.archiveDir()): Promise<string[]> {
    await mkdir(archiveDir, { recursive: true, mode: 0o700 });
    return [
      '--archive-dir',
      archiveDir,
      '--name',
      subject.key,
      '--log-fd',
      '3',
      // Fail within seconds on a dead target, not after duplicity's default 5 × 30 s of retries.
      '--num-retries',
      '2',
      '--backend-retry-delay',
      '3',
      ...(this.config.duplicity.passphraseFile ? [] : ['--no-encryption']),
      ...(this.sshOptions() ? [`--ssh-options=${this.sshOptions()}`] : []),
    ];
  }

  private async duplicity(
    args: string[],
    context: JobContext | undefined,
    onRecord: (record: DuplicityRecord) => void,
    timeoutMs?: number,
    /** Stops this run alone (a backup whose capture failed); the job's signal otherwise. */
    signal?: AbortSignal,
  ): Promise<RunResult> {
    const passphrase = this.config.duplicity.passphraseFile
      ? readFileSync(this.config.duplicity.passphraseFile, 'utf8').trim()
      : undefined;
    const parser = new LogFdParser();
    // The target's password travels in duplicity's environment (its FTP_PASSWORD), never in the URL or argv.
    const targetPassword = this.config.duplicity.targetPasswordFile
      ? readFileSync(this.config.duplicity.targetPasswordFile, 'utf8').trim()
      : undefined;
    const secrets = [...(passphrase ? [passphrase] : []), ...(targetPassword ? [targetPassword] : [])];
    context?.log(`$ ${this.runner.describe('duplicity', args, secrets)}`);
    return this.runner.run({
      command: 'duplicity',
      args,
      env: { ...(await this.environment(context)), ...(passphrase ? { PASSPHRASE: passphrase } : {}) },
      logFd: true,
      secrets,
      signal: signal ?? context?.signal,
      timeoutMs,
      onSpawn: (pid) => context?.trackPid(pid),
      onLine: (stream, line) => {
        if (stream === 'log') {
          for (const record of parser.push(line)) {
            onRecord(record);
            const event = interpretRecord(record);
            if (event.kind === 'error' || event.kind === 'warning') context?.log(`${event.kind}: ${event.message}`);
          }
        } else if (stream === 'stderr' && line.trim()) {
          context?.log(line);
        }
      },
    });
  }

  /**
   * duplicity runs with HOME under DATA_DIR, so root's ~/.ssh is not read: the key and the known host keys come from
   * DUPLICITY_SSH_KEY_FILE and DUPLICITY_SSH_KNOWN_HOSTS, as options its paramiko backend reads.
   */
  private sshOptions(): string {
    const { sshKeyFile, sshKnownHosts } = this.config.duplicity;
    const quote = (path: string) => (/\s/.test(path) ? `'${path}'` : path);
    return [
      ...(sshKeyFile ? [`-oIdentityFile=${quote(sshKeyFile)}`] : []),
      ...(sshKnownHosts ? [`-oUserKnownHostsFile=${quote(sshKnownHosts)}`] : []),
    ].join(' ');
  }

  /** duplicity's environment without the passphrase. */
  private async environment(context: JobContext | undefined): Promise<Record<string, string>> {
    const gnupgHome = this.config.dataPath('duplicity', 'gnupg');
    await mkdir(gnupgHome, { recursive: true, mode: 0o700 });
    return {
      HOME: this.config.dataPath('duplicity'),
      GNUPGHOME: gnupgHome,
      TMPDIR: context?.workDir ?? this.config.dataPath('duplicity'),
      ...(this.sshOptions() ? { DUPLICITY_TARGET_SSH_OPTIONS: this.sshOptions() } : {}),
      // The target's password (sftp, ftp, webdav...): duplicity's backends read it from here, never from the URL.
      ...(this.config.duplicity.targetPasswordFile
        ? { FTP_PASSWORD: readFileSync(this.config.duplicity.targetPasswordFile, 'utf8').trim() }
        : {}),
    };
  }

  private assertSucceeded(result: RunResult, what: string, errors: DuplicityRecord[]): void {
    if (result.cancelled) throw new JobFailure('cancelled', `duplicity ${what} was cancelled`);
    if (result.timedOut) throw new JobFailure('duplicity-timeout', `duplicity ${what} timed out`);
    if (result.exitCode !== 0) {
      const error = duplicityErrorFor(result.exitCode, result.stderrTail, findFatalError(errors, result.exitCode));
      throw new JobFailure(error.code, error.message);
    }
  }
}

function numberOr(value: string | number | undefined): number | null {
  const number = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(number) ? number : null;
}

/** Removes `dir` and its parents up to (not including) `stop` while they are empty. */
async function removeEmptyParents(dir: string, stop: string): Promise<void> {
  for (let current = dir; current.startsWith(`${stop}/`); current = dirname(current)) {
    try {
      await rmdir(current);
    } catch {
      return;
    }
  }
}
