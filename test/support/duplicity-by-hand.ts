import { join } from 'node:path';

/**
 * The selection an operator gives duplicity by hand to back up one site (what the provider's backups of it hold):
 * `shadow` without `shadow/var/lib`, and `info`. `extraIncludes` go before the final exclusion (the attribute
 * manifest of the provider's older, `/`-rooted backups).
 */
export function siteSelectionByHand(site: string, extraIncludes: string[] = []): string[] {
  return [
    '--exclude',
    join(site, 'shadow/var/lib'),
    '--include',
    join(site, 'shadow'),
    '--include',
    join(site, 'info'),
    ...extraIncludes.flatMap((path) => ['--include', path]),
    '--exclude',
    '**',
  ];
}
