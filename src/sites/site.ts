import type { BackupSubject } from '../providers/backup-provider';

/** A hosted account as discovered under VIRTUAL_ROOT. */
export interface Site {
  /** `siteN`. */
  id: string;
  /** N, for ordering. */
  number: number;
  /** Absolute path of `VIRTUAL_ROOT/siteN`. */
  root: string;
  /** The primary domain: the one recorded in `info/current/siteinfo`, else the first symlink's. */
  domain: string | null;
  /** Every domain that names the site, primary first. */
  domains: string[];
}

/** What a site's backup holds: absolute paths, included and excluded. */
export interface SiteBackupPaths {
  root: string;
  include: string[];
  exclude: string[];
}

export function backupPathsOf(site: Site): SiteBackupPaths {
  return {
    root: site.root,
    include: [`${site.root}/shadow`, `${site.root}/info`],
    exclude: [`${site.root}/shadow/var/lib`],
  };
}

/** The backup subject of a site: its key, root and what its backups hold. */
export function subjectOf(site: Site): BackupSubject {
  const paths = backupPathsOf(site);
  return { key: site.id, root: site.root, include: paths.include, exclude: paths.exclude };
}
