import { readFileSync } from 'node:fs';
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
  for (const path of serviceConfigPaths(siteRoot, service)) {
    try {
      return parseServiceConfig(await readFile(path, 'utf8'));
    } catch (error) {
      if (!isMissing(error)) return undefined;
    }
  }
  return undefined;
}

/** readServiceConfig for the site scan, which reads thousands of these tiny files in slices without awaiting each. */
export function readServiceConfigSync(siteRoot: string, service: string): Record<string, string> | undefined {
  for (const path of serviceConfigPaths(siteRoot, service)) {
    try {
      return parseServiceConfig(readFileSync(path, 'utf8'));
    } catch (error) {
      if (!isMissing(error)) return undefined;
    }
  }
  return undefined;
}

function serviceConfigPaths(siteRoot: string, service: string): string[] {
  return [join(siteRoot, 'info', 'current', service), join(siteRoot, 'info', 'cur', service)];
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
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
