import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * ApisCP keeps a site's configuration as one file per service under `info/current/` (`info/cur/` on older layouts),
 * each of `key = value` lines, e.g. `info/current/siteinfo` holds `domain = example.com`.
 */
export async function readServiceConfig(
  siteRoot: string,
  service: string,
): Promise<Record<string, string> | undefined> {
  for (const dir of ['current', 'cur']) {
    try {
      return parseServiceConfig(await readFile(join(siteRoot, 'info', dir, service), 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && (error as NodeJS.ErrnoException).code !== 'ENOTDIR') {
        return undefined;
      }
    }
  }
  return undefined;
}

export function parseServiceConfig(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith(';') || line.trimStart().startsWith('#')) continue;
    values[match[1]] = match[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return values;
}
