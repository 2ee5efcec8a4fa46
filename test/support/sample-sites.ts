import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
