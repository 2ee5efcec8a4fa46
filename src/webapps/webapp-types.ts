import type { DatabaseEngine } from '../exports/export.model';

export const WEBAPP_TYPES = ['wordpress', 'drupal', 'joomla', 'nextcloud', 'laravel'] as const;
export type WebappType = (typeof WEBAPP_TYPES)[number];

/** The files of an app the detector may read, bounded: `read(relative)` is undefined unless a small regular file. */
export interface AppFiles {
  read(relative: string): Promise<string | undefined>;
  isFile(relative: string): Promise<boolean>;
}

export interface DatabaseRef {
  engine: DatabaseEngine;
  name: string;
}

/** What each kind of app looks like, where its version and database are written, and what its snapshots leave out. */
export interface WebappKind {
  type: WebappType;
  /** Files whose presence says "this is one". */
  markers: string[];
  version(files: AppFiles): Promise<string | null>;
  database(files: AppFiles): Promise<DatabaseRef | null>;
  /** Paths relative to the app left out of snapshots (git pathspec globs): caches, sessions, logs. */
  ignored: string[];
  /** Uploaded media, left out unless a snapshot is asked to include uploads. */
  uploads: string[];
}

/** `'value'` or `"value"` after `key` in PHP source, e.g. `$wp_version = '6.4.2';`. */
function phpString(text: string | undefined, pattern: RegExp): string | null {
  const match = text ? pattern.exec(text) : null;
  return match ? (match[2] ?? match[1] ?? null) : null;
}

const QUOTED = `(?:'([^'\\n]{1,128})'|"([^"\\n]{1,128})")`;

function engineOf(driver: string | null | undefined): DatabaseEngine | null {
  if (!driver) return null;
  const value = driver.toLowerCase();
  if (['mysql', 'mysqli', 'pdo_mysql', 'mariadb'].includes(value)) return 'mysql';
  if (['pgsql', 'postgres', 'postgresql', 'pdo_pgsql'].includes(value)) return 'pgsql';
  return null;
}

/** `KEY=value` lines of a dotenv file (quotes stripped). */
export function parseDotenv(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) values[match[1]] = match[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return values;
}

export const WEBAPP_KINDS: readonly WebappKind[] = [
  {
    type: 'wordpress',
    markers: ['wp-includes/version.php', 'wp-config.php'],
    version: async (files) =>
      phpString(await files.read('wp-includes/version.php'), new RegExp(`\\$wp_version\\s*=\\s*${QUOTED}`)),
    database: async (files) => {
      const name = phpString(
        await files.read('wp-config.php'),
        new RegExp(`define\\s*\\(\\s*['"]DB_NAME['"]\\s*,\\s*${QUOTED}`),
      );
      return name ? { engine: 'mysql', name } : null;
    },
    ignored: ['wp-content/cache/**', 'wp-content/upgrade/**', 'wp-content/debug.log'],
    uploads: ['wp-content/uploads/**'],
  },
  {
    type: 'nextcloud',
    markers: ['version.php', 'occ', 'config/config.php'],
    version: async (files) =>
      phpString(await files.read('version.php'), new RegExp(`\\$OC_VersionString\\s*=\\s*${QUOTED}`)),
    database: async (files) => {
      const config = await files.read('config/config.php');
      const name = phpString(config, new RegExp(`['"]dbname['"]\\s*=>\\s*${QUOTED}`));
      const engine = engineOf(phpString(config, new RegExp(`['"]dbtype['"]\\s*=>\\s*${QUOTED}`)));
      return name && engine ? { engine, name } : null;
    },
    ignored: ['data/*/cache/**', 'data/nextcloud.log', 'data/updater-*/**'],
    uploads: ['data/**'],
  },
  {
    type: 'drupal',
    markers: ['core/lib/Drupal.php'],
    version: async (files) =>
      phpString(await files.read('core/lib/Drupal.php'), new RegExp(`const\\s+VERSION\\s*=\\s*${QUOTED}`)),
    database: async (files) => {
      const settings = await files.read('sites/default/settings.php');
      const name = phpString(settings, new RegExp(`['"]database['"]\\s*=>\\s*${QUOTED}`));
      const engine = engineOf(phpString(settings, new RegExp(`['"]driver['"]\\s*=>\\s*${QUOTED}`)));
      return name && engine ? { engine, name } : null;
    },
    ignored: ['sites/*/files/css/**', 'sites/*/files/js/**', 'sites/*/files/php/**'],
    uploads: ['sites/*/files/**'],
  },
  {
    type: 'joomla',
    markers: ['libraries/src/Version.php', 'configuration.php'],
    version: async (files) => {
      const text = await files.read('libraries/src/Version.php');
      const part = (name: string) => (text ? new RegExp(`const\\s+${name}\\s*=\\s*(\\d+)`).exec(text)?.[1] : null);
      const [major, minor, patch] = [part('MAJOR_VERSION'), part('MINOR_VERSION'), part('PATCH_VERSION')];
      return major && minor && patch ? `${major}.${minor}.${patch}` : null;
    },
    database: async (files) => {
      const config = await files.read('configuration.php');
      const name = phpString(config, new RegExp(`\\$db\\s*=\\s*${QUOTED}`));
      const engine = engineOf(phpString(config, new RegExp(`\\$dbtype\\s*=\\s*${QUOTED}`)));
      return name && engine ? { engine, name } : null;
    },
    ignored: ['cache/**', 'administrator/cache/**', 'tmp/**', 'administrator/logs/**'],
    uploads: ['images/**'],
  },
  {
    type: 'laravel',
    markers: ['artisan', 'composer.lock'],
    version: async (files) => {
      const lock = await files.read('composer.lock');
      if (!lock) return null;
      try {
        const parsed = JSON.parse(lock) as { packages?: Array<{ name?: unknown; version?: unknown }> };
        const framework = parsed.packages?.find((entry) => entry.name === 'laravel/framework');
        return typeof framework?.version === 'string' ? framework.version.replace(/^v/, '').slice(0, 64) : null;
      } catch {
        return null;
      }
    },
    database: async (files) => {
      const text = await files.read('.env');
      if (!text) return null;
      const env = parseDotenv(text);
      const engine = engineOf(env.DB_CONNECTION);
      return engine && env.DB_DATABASE ? { engine, name: env.DB_DATABASE } : null;
    },
    ignored: [
      'storage/framework/cache/**',
      'storage/framework/sessions/**',
      'storage/framework/views/**',
      'storage/logs/**',
      'bootstrap/cache/**',
    ],
    uploads: ['storage/app/public/**'],
  },
];

export function kindOf(type: WebappType): WebappKind {
  return WEBAPP_KINDS.find((kind) => kind.type === type)!;
}
