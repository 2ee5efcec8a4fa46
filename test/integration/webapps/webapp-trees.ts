import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';

/** A uid/gid no account on this machine has: the synthetic site owner. */
export function tenantId(): number {
  return 41_000 + Math.floor(Math.random() * 20_000);
}

function put(root: string, relative: string, content: string, mode = 0o644): void {
  const file = join(root, relative);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode });
  execFileSync('chmod', [mode.toString(8), file]);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><title>${title}</title></head><body>${body}${'<p>content</p>'.repeat(50)}</body></html>\n`;
}

/** A WordPress-shaped tree: version.php, wp-config.php (0600), a theme, uploads and a cache, an executable script. */
export function wordpressTree(dir: string, database: string, version = '6.4.2'): void {
  put(dir, 'wp-includes/version.php', `<?php\n$wp_version = '${version}';\n$wp_db_version = 56657;\n`);
  put(
    dir,
    'wp-config.php',
    `<?php\ndefine( 'DB_NAME', '${database}' );\ndefine( 'DB_USER', 'wp' );\n$table_prefix = 'wp_';\n`,
    0o600,
  );
  put(dir, 'index.php', page('My Blog', '<h1>Hello world</h1>'));
  put(dir, 'wp-content/themes/plain/style.css', 'body { color: black; }\n');
  put(dir, 'wp-content/plugins/hello/hello.php', '<?php // hello dolly\n');
  put(dir, 'wp-content/uploads/2026/11/photo.jpg', 'JPEG-BYTES-1');
  put(dir, 'wp-content/cache/page.html', 'cached');
  put(dir, 'bin/cron.sh', '#!/bin/sh\necho cron\n', 0o750);
}

export function nextcloudTree(dir: string, database: string, version = '27.1.3'): void {
  put(dir, 'version.php', `<?php\n$OC_Version = array(27,1,3,1);\n$OC_VersionString = '${version}';\n`);
  put(dir, 'occ', '#!/usr/bin/env php\n<?php // occ\n', 0o755);
  put(
    dir,
    'config/config.php',
    `<?php\n$CONFIG = array (\n  'dbtype' => 'pgsql',\n  'dbname' => '${database}',\n  'dbhost' => 'localhost',\n);\n`,
    0o640,
  );
  put(dir, 'index.php', page('Files - Nextcloud', '<div id="app">files</div>'));
  put(dir, 'apps/files/appinfo/info.xml', '<info><id>files</id></info>\n');
  put(dir, 'data/admin/files/report.txt', 'user data');
}

export function laravelTree(dir: string, database: string, version = 'v10.48.4'): void {
  put(dir, 'artisan', '#!/usr/bin/env php\n<?php // artisan\n', 0o755);
  put(
    dir,
    'composer.lock',
    JSON.stringify({
      packages: [
        { name: 'laravel/framework', version },
        { name: 'monolog/monolog', version: '3.5.0' },
      ],
    }),
  );
  put(dir, '.env', `APP_NAME=Shop\nDB_CONNECTION=mysql\nDB_DATABASE=${database}\nDB_PASSWORD="s3cret"\n`, 0o600);
  put(dir, '.gitignore', '/vendor\n.env\n');
  put(dir, 'vendor/laravel/framework/src/Application.php', '<?php // framework v10\n');
  put(dir, 'index.php', page('Shop', '<h1>Products</h1>'));
  put(dir, 'storage/logs/laravel.log', 'log line\n');
}

/** One entry of a tree as compared: type, mode, owner, and content digest or link target. */
export type TreeFingerprint = Record<string, string>;

/** Every entry below `dir` (as root, on the test's own tree) except those `skip` says, with mode, owner and content. */
export function fingerprintTree(dir: string, skip: (relative: string) => boolean = () => false): TreeFingerprint {
  const out: TreeFingerprint = {};
  const walk = (relative: string): void => {
    for (const name of readdirSync(join(dir, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      if (skip(path)) continue;
      const full = join(dir, path);
      const stats = lstatSync(full);
      const meta = `${(stats.mode & 0o7777).toString(8)} ${stats.uid}:${stats.gid}`;
      if (stats.isSymbolicLink()) out[path] = `link ${meta} -> ${readlinkSync(full)}`;
      else if (stats.isDirectory()) {
        out[path] = `dir ${meta}`;
        walk(path);
      } else out[path] = `file ${meta} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
    }
  };
  walk('');
  return out;
}

/**
 * A web server on 127.0.0.1 standing in for the site's: `Host` picks a docroot, the page is the docroot's index.php
 * as written; a page holding `HTTP-500` answers 500 (an update that breaks PHP).
 */
export class SiteWebServer {
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(docroots: Map<string, string>): Promise<SiteWebServer> {
    const server = createServer((req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const root = docroots.get(host);
      if (!root) return res.writeHead(404).end('no such host');
      const path = (req.url ?? '/').split('?')[0];
      let body: string;
      try {
        body = readFileSync(join(root, path.endsWith('/') ? `${path}index.php` : path), 'utf8');
      } catch {
        return res.writeHead(404, { 'content-type': 'text/html' }).end('<title>Not found</title>');
      }
      res.writeHead(body.includes('HTTP-500') ? 500 : 200, { 'content-type': 'text/html' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new SiteWebServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
