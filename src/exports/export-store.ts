import { Injectable, Logger } from '@nestjs/common';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import type { Site } from '../sites/site';
import {
  ensurePrivateDir,
  fileToken,
  fsyncDir,
  isPartialName,
  parseExportFileName,
  relativeTo,
  writeFileAtomic,
} from './export-files';
import { DATABASE_ENGINES, type DatabaseEngine, type ExportEntry } from './export.model';

export const MANIFEST_NAME = 'manifest.json';

interface ManifestFile {
  version: 1;
  engine: DatabaseEngine;
  exports: ExportEntry[];
}

/**
 * A site's export files and their manifests: `<site>/<EXPORT_DIR>/<engine>/manifest.json` lists every export file of
 * that engine with its size and SHA-256. Manifest updates are serialised per file within this process.
 */
@Injectable()
export class ExportStore {
  private readonly logger = new Logger(ExportStore.name);
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Partial files being written right now: never leftovers, whoever asks. */
  private readonly active = new Set<string>();

  constructor(private readonly config: AppConfig) {}

  engineDir(site: Site, engine: DatabaseEngine): string {
    return join(site.root, this.config.exports.dir, engine);
  }

  /** Creates the engine's export directory (it and EXPORT_DIR 0700) and returns its absolute path. */
  prepareDir(site: Site, engine: DatabaseEngine): Promise<string> {
    return ensurePrivateDir(site.root, `${this.config.exports.dir}/${engine}`, 2);
  }

  trackPartial(path: string): void {
    this.active.add(path);
  }

  untrackPartial(path: string): void {
    this.active.delete(path);
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
    const dir = this.engineDir(site, engine);
    const token = fileToken(database);
    const removed: string[] = [];
    await this.updateManifest(site, engine, async (entries) => {
      const own = (await readdir(dir))
        .map((name) => ({ name, parsed: parseExportFileName(name) }))
        .filter(({ parsed }) => parsed?.token === token)
        .sort((a, b) => (a.parsed!.stamp < b.parsed!.stamp ? 1 : -1));
      for (const { name } of own.slice(keep)) {
        await rm(join(dir, name), { force: true });
        removed.push(relativeTo(site.root, join(dir, name)));
      }
      if (removed.length > 0) await fsyncDir(dir);
      return existing(site, entries);
    });
    return removed;
  }

  /** Every export the manifests list whose file exists, newest first. */
  async list(site: Site): Promise<ExportEntry[]> {
    const all: ExportEntry[] = [];
    for (const engine of DATABASE_ENGINES) all.push(...(await this.readManifest(site, engine)));
    const present = await existing(site, all);
    return present.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  /** Deletes the `.partial` files an interrupted export left (none that this process is writing); returns them. */
  async removeLeftovers(site: Site): Promise<string[]> {
    const removed: string[] = [];
    for (const engine of DATABASE_ENGINES) {
      const dir = this.engineDir(site, engine);
      // Under the manifest's lock, so a manifest being rewritten is not taken for a leftover.
      await this.serialised(dir, async () => {
        let names: string[];
        try {
          names = await readdir(dir);
        } catch {
          return;
        }
        const leftovers = names.filter(isPartialName).map((name) => join(dir, name));
        for (const path of leftovers.filter((p) => !this.active.has(p))) {
          await rm(path, { force: true });
          removed.push(relativeTo(site.root, path));
        }
        if (leftovers.length > 0) await fsyncDir(dir);
      });
    }
    return removed;
  }

  private async readManifest(site: Site, engine: DatabaseEngine): Promise<ExportEntry[]> {
    const path = join(this.engineDir(site, engine), MANIFEST_NAME);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return [];
    }
    try {
      const parsed = JSON.parse(text) as Partial<ManifestFile>;
      return Array.isArray(parsed.exports) ? parsed.exports.filter(isEntry) : [];
    } catch {
      // The next update rewrites it; retention still finds the files by name.
      this.logger.warn(`${path} is not valid JSON: ignoring it`);
      return [];
    }
  }

  private async updateManifest(
    site: Site,
    engine: DatabaseEngine,
    mutate: (entries: ExportEntry[]) => Promise<ExportEntry[]>,
  ): Promise<void> {
    const dir = this.engineDir(site, engine);
    await this.serialised(dir, async () => {
      await this.prepareDir(site, engine);
      const entries = await mutate(await this.readManifest(site, engine));
      const manifest: ManifestFile = { version: 1, engine, exports: entries };
      await writeFileAtomic(dir, MANIFEST_NAME, `${JSON.stringify(manifest, null, 2)}\n`);
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

async function existing(site: Site, entries: ExportEntry[]): Promise<ExportEntry[]> {
  const kept: ExportEntry[] = [];
  for (const entry of entries) {
    try {
      if ((await stat(join(site.root, entry.file))).isFile()) kept.push(entry);
    } catch {
      // Gone: removed by retention, by ApisCP's own rotation, or by hand.
    }
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
    !entry.file.split('/').includes('..')
  );
}
