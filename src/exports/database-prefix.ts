import { readServiceConfig } from '../sites/site-metadata';
import type { DatabaseEngine } from './export.model';

/**
 * ApisCP gives each site a database name prefix per engine (`dbaseprefix = shop1_` in `info/current/mysql` and
 * `info/current/pgsql`); the site's databases are those whose names start with it. No file or no prefix: none.
 */
export async function readDatabasePrefix(siteRoot: string, engine: DatabaseEngine): Promise<string | undefined> {
  const prefix = (await readServiceConfig(siteRoot, engine))?.dbaseprefix?.trim();
  return prefix ? prefix : undefined;
}

/**
 * The names that start with `prefix`, compared as plain strings: never through SQL LIKE, where the `_` every ApisCP
 * prefix ends with would match any character (`shop1_` would claim `shop1x`).
 */
export function databasesWithPrefix(names: readonly string[], prefix: string): string[] {
  return names.filter((name) => name.length > prefix.length && name.startsWith(prefix)).sort();
}
