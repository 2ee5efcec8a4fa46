import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseEngine } from '../../src/exports/export.model';
import type { Site } from '../../src/sites/site';

/** Creates bare `siteN` directories with a recorded domain and domain symlinks, as ApisCP lays them out. */
export function makeSites(virtualRoot: string, sites: Array<{ n: number; domain?: string; aliases?: string[] }>): void {
  for (const { n, domain, aliases = [] } of sites) {
    const root = join(virtualRoot, `site${n}`);
    mkdirSync(join(root, 'shadow'), { recursive: true });
    mkdirSync(join(root, 'info', 'current'), { recursive: true });
    if (domain) {
      writeFileSync(join(root, 'info', 'current', 'siteinfo'), `domain = ${domain}\nadmin_user = admin${n}\n`);
      symlinkSync(`site${n}`, join(virtualRoot, domain));
    }
    symlinkSync(`site${n}`, join(virtualRoot, `admin${n}`));
    for (const alias of aliases) symlinkSync(join(virtualRoot, `site${n}`), join(virtualRoot, alias));
  }
}

/**
 * A bare site `siteN` under `root` whose `info/current/<engine>` names each engine's database prefix, as the unit tests
 * of the export planning need it (no shadow tree, no domains).
 */
export function siteWithPrefixes(root: string, n: number, prefixes: Partial<Record<DatabaseEngine, string>>): Site {
  const siteRoot = join(root, `site${n}`);
  mkdirSync(join(siteRoot, 'info', 'current'), { recursive: true });
  for (const [engine, prefix] of Object.entries(prefixes)) {
    writeFileSync(join(siteRoot, 'info', 'current', engine), `dbaseprefix = ${prefix}\n`);
  }
  return { id: `site${n}`, number: n, root: siteRoot, domain: null, domains: [] };
}
