import { Injectable, Logger } from '@nestjs/common';
import { posix } from 'node:path';
import { OpenedDir, SafeFsError, withDir, writeFileAtomic } from '../common/safe-fs';
import { AppConfig } from '../config/app-config';
import type { Site } from '../sites/site';
import {
  asExportError,
  fileToken,
  isPartialName,
  openPrivateDir,
  parseExportFileName,
  partialNameOf,
} from './export-files';
import { DATABASE_ENGINES, type DatabaseEngine, type ExportEntry } from './export.model';

export const MANIFEST_NAME = 'manifest.json';
/** A manifest larger than this is not read (a thousand exports take about 300 KiB). */
export const MANIFEST_MAX_BYTES = 16 * 1024 * 1024;
const MANIFEST_READ_TIMEOUT_MS = 5_000;

interface ManifestFile {
  version: 1;
  engine: DatabaseEngine;
  exports: ExportEntry[];
}

/**
 * A site's export files and their manifests: `<site>/<EXPORT_DIR>/<engine>/manifest.json` lists every export file of
 * that engine with its size and SHA-256. Manifest updates are serialised per file within this process.
 *
 * Everything here works from descriptors (see common/safe-fs): the engine directory is opened component by component
 * without following links, must be root-owned 0700 (or is created so), and files are created with O_EXCL. Reads of a
 * manifest refuse anything but a regular, singly-linked file of bounded size in such a directory.
 */
@Injectable()
export class ExportStore {
  private readonly logger = new Logger(ExportStore.name);
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Partial files being written right now (`partialKey`): never leftovers, whoever asks. */
  private readonly active = new Set<string>();

  constructor(private readonly config: AppConfig) {}

  /** The engine's export directory relative to the site root (`shadow/var/backups/databases/mysql`). */
  engineDirOf(engine: DatabaseEngine): string {
    return posix.join(this.config.exports.dir, engine);
  }

  /** Opens the engine's export directory (creating it and EXPORT_DIR root-owned 0700); the caller closes it. */
  openEngineDir(site: Site, engine: DatabaseEngine): Promise<OpenedDir> {
    return openPrivateDir(site.root, this.engineDirOf(engine), 2);
  }

  partialKey(site: Site, engine: DatabaseEngine, partialName: string): string {
    return `${site.id}/${engine}/${partialName}`;
  }

  trackPartial(key: string): void {
    this.active.add(key);
  }

  untrackPartial(key: string): void {
    this.active.delete(key);
  }

  /** Adds an entry to the engine's manifest, dropping entries whose files are gone. */
  async record(site: Site, entry: ExportEntry): Promise<void> {
    await this.updateManifest(site, entry.engine, async (entries) => [
      ...(await existing(
        site,
        entries.filter((e) => e.file !== entry.file),
      )),
      entry,
    ]);
  }

  /**
   * Keeps the newest `keep` native exports of one database (by the stamp in their names, so files a crash left out of
   * the manifest are counted too) and deletes the rest. Call it only after the newest is in place.
   */
  async applyRetention(site: Site, engine: DatabaseEngine, database: string, keep: number): Promise<string[]> {
    const token = fileToken(database);
    const removed: string[] = [];
    await this.updateManifest(site, engine, async (entries, dir) => {
      const own = (await dir.names())
        .map((name) => ({ name, parsed: parseExportFileName(name) }))
        .filter(({ parsed }) => parsed?.token === token)
        .sort((a, b) => (a.parsed!.stamp < b.parsed!.stamp ? 1 : -1));
      for (const { name } of own.slice(keep)) {
        await dir.removeTree(name);
        removed.push(posix.join(this.engineDirOf(engine), name));
      }
      if (removed.length > 0) await dir.sync();
      return existing(site, entries);
    });
    return removed;
  }

  /** Every export the manifests list whose file exists, newest first. */
  async list(site: Site): Promise<ExportEntry[]> {
    const all: ExportEntry[] = [];
    for (const engine of DATABASE_ENGINES) {
      const dir = await this.openExistingEngineDir(site, engine);
      if (!dir) continue;
      try {
        all.push(...(await this.readManifest(dir)));
      } finally {
        await dir.close();
      }
    }
    const present = await existing(site, all);
    return present.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  /** Deletes the `.partial` files an interrupted export left (none that this process is writing); returns them. */
  async removeLeftovers(site: Site): Promise<string[]> {
    const removed: string[] = [];
    for (const engine of DATABASE_ENGINES) {
      // Under the manifest's lock, so a manifest being rewritten is not taken for a leftover.
      await this.serialised(`${site.id}/${engine}`, async () => {
        const dir = await this.openExistingEngineDir(site, engine);
        if (!dir) return;
        try {
          const leftovers = (await dir.names()).filter(isPartialName);
          for (const name of leftovers.filter((n) => !this.active.has(this.partialKey(site, engine, n)))) {
            await dir.removeTree(name);
            removed.push(posix.join(this.engineDirOf(engine), name));
          }
          if (leftovers.length > 0) await dir.sync();
        } finally {
          await dir.close();
        }
      });
    }
    return removed;
  }

  /**
   * The engine directory if it exists and is private (root-owned, writable by nobody else); anything else (a link on
   * the way, a directory the site owner made) is ignored with a warning: what it holds is not the service's.
   */
  private async openExistingEngineDir(site: Site, engine: DatabaseEngine): Promise<OpenedDir | undefined> {
    const relative = this.engineDirOf(engine);
    let dir: OpenedDir | undefined;
    try {
      dir = await withDir(OpenedDir.openTrusted(site.root), (root) => root.tryOpenDir(relative));
    } catch (error) {
      if (!(error instanceof SafeFsError)) throw error;
      this.logger.warn(`${site.id}: ignoring ${relative}: ${error.message}`);
      return undefined;
    }
    if (!dir) return undefined;
    const stats = await dir.stat();
    if (stats.uid !== process.geteuid!() || (stats.mode & 0o022) !== 0) {
      this.logger.warn(`${site.id}: ignoring ${relative}: not a private directory of the service`);
      await dir.close();
      return undefined;
    }
    return dir;
  }

  private async readManifest(dir: OpenedDir): Promise<ExportEntry[]> {
    let text: string;
    try {
      text = (
        await dir.readRegularFile(MANIFEST_NAME, { maxBytes: MANIFEST_MAX_BYTES, timeoutMs: MANIFEST_READ_TIMEOUT_MS })
      ).toString('utf8');
    } catch (error) {
      if (error instanceof SafeFsError) this.logger.warn(`ignoring ${dir.label}/${MANIFEST_NAME}: ${error.message}`);
      return [];
    }
    try {
      const parsed = JSON.parse(text) as Partial<ManifestFile>;
      return Array.isArray(parsed.exports) ? parsed.exports.filter(isEntry) : [];
    } catch {
      // The next update rewrites it; retention still finds the files by name.
      this.logger.warn(`${dir.label}/${MANIFEST_NAME} is not valid JSON: ignoring it`);
      return [];
    }
  }

  private async updateManifest(
    site: Site,
    engine: DatabaseEngine,
    mutate: (entries: ExportEntry[], dir: OpenedDir) => Promise<ExportEntry[]>,
  ): Promise<void> {
    await this.serialised(`${site.id}/${engine}`, async () => {
      const dir = await this.openEngineDir(site, engine);
      try {
        const entries = await mutate(await this.readManifest(dir), dir);
        const manifest: ManifestFile = { version: 1, engine, exports: entries };
        await writeFileAtomic(
          dir,
          MANIFEST_NAME,
          `${JSON.stringify(manifest, null, 2)}\n`,
          partialNameOf(MANIFEST_NAME),
        );
      } catch (error) {
        throw asExportError(error);
      } finally {
        await dir.close();
      }
    });
  }

  private async serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.locks.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}

/** The entries whose file is a regular file (lstat through descriptors opened without following links). */
async function existing(site: Site, entries: ExportEntry[]): Promise<ExportEntry[]> {
  if (entries.length === 0) return [];
  const kept: ExportEntry[] = [];
  const dirs = new Map<string, OpenedDir | undefined>();
  const root = await OpenedDir.openTrusted(site.root);
  try {
    for (const entry of entries) {
      const parent = posix.dirname(entry.file);
      if (!dirs.has(parent)) dirs.set(parent, await root.tryOpenDir(parent).catch(() => undefined));
      const stats = await dirs.get(parent)?.lstat(posix.basename(entry.file));
      // Gone (removed by retention, by ApisCP's own rotation, or by hand) or replaced by something else.
      if (stats?.isFile()) kept.push(entry);
    }
  } finally {
    for (const dir of dirs.values()) await dir?.close();
    await root.close();
  }
  return kept;
}

function isEntry(value: unknown): value is ExportEntry {
  const entry = value as Partial<ExportEntry> | null;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.file === 'string' &&
    typeof entry.database === 'string' &&
    typeof entry.sha256 === 'string' &&
    typeof entry.createdAt === 'string' &&
    !entry.file.startsWith('/') &&
    !entry.file.split('/').includes('..')
  );
}
