import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';

/** The seed's recommended server-wide locations: logical grant exports and mailbox maps, never raw database files. */
export const SEED_SERVER_LOCATIONS = [
  '/var/log/mailer_table*',
  '/var/lib/mysql/mysql-grants*',
  '/var/lib/pgsql/*/backups',
];

/** The server backup's patterns: the seed's under SERVER_BACKUP_ROOT, then the configured extra ones. */
export function serverPatterns(config: AppConfig): string[] {
  const root = config.serverBackup.root === '/' ? '' : config.serverBackup.root;
  return [...SEED_SERVER_LOCATIONS.map((pattern) => `${root}${pattern}`), ...config.serverBackup.extraPaths];
}

/** Expands `*` and `?` within path segments (no `**`), returning existing absolute paths, sorted. */
export async function expandPattern(pattern: string): Promise<string[]> {
  const segments = pattern.split('/').filter(Boolean);
  let matches = ['/'];
  for (const segment of segments) {
    const next: string[] = [];
    for (const base of matches) {
      if (!/[*?]/.test(segment)) {
        const entries = await readdir(base).catch(() => [] as string[]);
        if (entries.includes(segment)) next.push(join(base, segment));
        continue;
      }
      const regex = new RegExp(
        `^${segment
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')}$`,
      );
      for (const entry of await readdir(base).catch(() => [] as string[])) {
        if (regex.test(entry)) next.push(join(base, entry));
      }
    }
    matches = next;
  }
  return matches.sort();
}
