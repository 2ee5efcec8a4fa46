import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { databasesWithPrefix, readDatabasePrefix } from '../exports/database-prefix';
import type { Site } from '../sites/site';
import { existsBelow, isPlainName, readTenantFile, subdirectories, withDirBelow, type OpenedDir } from './tenant-files';
import { WEBAPP_KINDS, type AppFiles, type DatabaseRef, type WebappType } from './webapp-types';

/** version.php, wp-config.php, .env: small. composer.lock of a large app is a few hundred KiB. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** How many docroots and sub-directories of each a scan looks at, so a tenant's huge tree cannot slow a listing. */
const MAX_DOCROOTS = 64;
const MAX_SUBDIRS = 64;
const PRIMARY_DOCROOT = 'var/www/html';

/** An app found in a site's docroots. */
export interface DetectedWebapp {
  /** Stable, URL-safe: derived from the path. */
  id: string;
  /** Relative to the site's `shadow`, e.g. `var/www/html`. */
  path: string;
  type: WebappType;
  version: string | null;
  /** Its database when its configuration names one that belongs to the site (its prefix); null otherwise. */
  database: DatabaseRef | null;
  /** The database its configuration names, even a foreign one (kept to say why `database` is null). */
  configuredDatabase: DatabaseRef | null;
  /** Owner of the app's directory: git and file changes run as this uid/gid. */
  owner: { uid: number; gid: number };
  /** The host name the app answers for and the URL path it lives under, for Update Assurance. */
  host: string | null;
  urlPath: string;
}

/** `var/www/html` → `html`, `var/www/html/blog` → `html-blog`, plus a short hash when the slug alone is ambiguous. */
export function webappIdOf(path: string): string {
  const slug = path
    .replace(/^var\/www\//, '')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 48);
  const hash = createHash('sha256').update(path).digest('hex').slice(0, 6);
  return `${slug || 'app'}-${hash}`;
}

interface Docroot {
  path: string;
  host: string | null;
  urlPath: string;
}

/**
 * Finds web apps in a site's docroots: the primary `shadow/var/www/html`, the docroots ApisCP's `info/domain_map`
 * names, and every `shadow/var/www/*`; in each, the docroot itself and its direct sub-directories. Every tenant file
 * is read through descriptors opened without following links, bounded in size, regular files only.
 */
@Injectable()
export class WebappDetector {
  async detect(site: Site): Promise<DetectedWebapp[]> {
    const prefixes = {
      mysql: await readDatabasePrefix(site.root, 'mysql'),
      pgsql: await readDatabasePrefix(site.root, 'pgsql'),
    };
    const found = new Map<string, DetectedWebapp>();
    for (const docroot of await this.docroots(site)) {
      const candidates = [{ path: docroot.path, urlPath: docroot.urlPath }];
      const below = await withDirBelow(join(site.root, 'shadow'), docroot.path.split('/'), (dir) =>
        subdirectories(dir.fd, MAX_SUBDIRS),
      );
      for (const name of below ?? []) {
        candidates.push({ path: `${docroot.path}/${name}`, urlPath: `${docroot.urlPath}${name}/` });
      }
      for (const candidate of candidates) {
        if (found.has(candidate.path)) continue;
        const app = await withDirBelow(join(site.root, 'shadow'), candidate.path.split('/'), (dir) =>
          this.identify(dir, candidate.path, prefixes, { ...docroot, urlPath: candidate.urlPath }),
        );
        if (app) found.set(candidate.path, app);
      }
    }
    return [...found.values()].sort((a, b) => a.path.localeCompare(b.path));
  }

  async find(site: Site, id: string): Promise<DetectedWebapp | undefined> {
    return (await this.detect(site)).find((app) => app.id === id);
  }

  private async docroots(site: Site): Promise<Docroot[]> {
    const docroots: Docroot[] = [{ path: PRIMARY_DOCROOT, host: site.domain, urlPath: '/' }];
    const mapped = await withDirBelow(site.root, ['info'], (info) => readTenantFile(info.fd, 'domain_map', 64 * 1024));
    for (const line of (mapped ?? '').split('\n')) {
      // `blog.example.com /var/www/blog` (or `=`, or a tab): a domain and its docroot as the account sees it.
      const match = /^\s*([a-z0-9.-]+)\s*[=\s]\s*(\/var\/www\/[^\s]+?)\/?\s*$/i.exec(line);
      if (!match) continue;
      const path = match[2].slice(1);
      if (path.split('/').every(isPlainName) && !docroots.some((root) => root.path === path)) {
        docroots.push({ path, host: match[1].toLowerCase(), urlPath: '/' });
      }
    }
    const www = await withDirBelow(join(site.root, 'shadow'), ['var', 'www'], (dir) =>
      subdirectories(dir.fd, MAX_DOCROOTS),
    );
    for (const name of www ?? []) {
      const path = `var/www/${name}`;
      if (name.startsWith('.') || docroots.some((root) => root.path === path)) continue;
      docroots.push({ path, host: /\./.test(name) ? name.toLowerCase() : site.domain, urlPath: '/' });
    }
    return docroots.slice(0, MAX_DOCROOTS);
  }

  private async identify(
    dir: OpenedDir,
    path: string,
    prefixes: { mysql?: string; pgsql?: string },
    docroot: Docroot,
  ): Promise<DetectedWebapp | undefined> {
    if (!dir.stats.isDirectory()) return undefined;
    const files: AppFiles = {
      read: (relative) => readTenantFile(dir.fd, relative, MAX_CONFIG_BYTES),
      isFile: (relative) => existsBelow(dir.fd, relative, 'file'),
    };
    for (const kind of WEBAPP_KINDS) {
      let all = true;
      for (const marker of kind.markers) {
        if (!(await files.isFile(marker))) {
          all = false;
          break;
        }
      }
      if (!all) continue;
      const configured = await kind.database(files);
      const prefix = configured ? prefixes[configured.engine] : undefined;
      const owns = configured && prefix ? databasesWithPrefix([configured.name], prefix).length === 1 : false;
      return {
        id: webappIdOf(path),
        path,
        type: kind.type,
        version: await kind.version(files),
        database: owns ? configured : null,
        configuredDatabase: configured,
        owner: { uid: dir.stats.uid, gid: dir.stats.gid },
        host: docroot.host,
        urlPath: docroot.urlPath,
      };
    }
    return undefined;
  }
}

/** For callers that hold an opened app directory and want a path to give a child process as its cwd. */
export function appDirPath(site: Site, app: DetectedWebapp): string {
  return join(site.root, 'shadow', app.path);
}
