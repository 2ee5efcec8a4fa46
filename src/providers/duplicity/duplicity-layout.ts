import { join, relative } from 'node:path';
import type { BackupSubject } from '../backup-provider';

export const ATTRIBUTES_FILE = 'attributes.dump';

/**
 * The root-owned directory inside a site (`siteN/.apiscp-backup-api`, beside `shadow` and `info`, never inside the
 * tenant's `shadow`) that holds the attribute manifest its duplicity backups carry.
 */
export const SITE_MANIFEST_DIR = '.apiscp-backup-api';

/**
 * Where a subject's files and its attribute manifest sit inside a duplicity backup.
 *
 * - `site`: a site's backups since this layout, made from the site's own directory. duplicity matches every path
 *   against each selection function; from `/` that cost 5–10 % more CPU on a 100,000-file site than the same
 *   selection from the site's directory, which is what an operator runs by hand.
 * - `root`: the server's backups (its locations are spread over `/`), and sites' backups made before: the source
 *   was `/`, and the manifest was under DATA_DIR.
 */
export interface DuplicityLayout {
  kind: 'site' | 'root';
  /** duplicity's source directory. */
  source: string;
  /** The subject's root inside the backup ('' when it is the source). */
  rootInArchive: string;
  /** The attribute manifest inside the backup. */
  manifestInArchive: string;
}

/** The layout a subject's backups are made in now: a site's own directory, or `/` for the server. */
export function currentLayout(subject: BackupSubject, dataManifestDir: string): DuplicityLayout {
  return subject.root === '/'
    ? rootLayout(subject, dataManifestDir)
    : {
        kind: 'site',
        source: subject.root,
        rootInArchive: '',
        manifestInArchive: `${SITE_MANIFEST_DIR}/${ATTRIBUTES_FILE}`,
      };
}

/** Every layout a subject's points may have, the current one first (a restore tries them in this order). */
export function layoutsOf(subject: BackupSubject, dataManifestDir: string): DuplicityLayout[] {
  const current = currentLayout(subject, dataManifestDir);
  return current.kind === 'root' ? [current] : [current, rootLayout(subject, dataManifestDir)];
}

function rootLayout(subject: BackupSubject, dataManifestDir: string): DuplicityLayout {
  return {
    kind: 'root',
    source: '/',
    rootInArchive: relative('/', subject.root),
    manifestInArchive: relative('/', join(dataManifestDir, ATTRIBUTES_FILE)),
  };
}

/**
 * Which of `layouts` (the current one first) a point was made in, given whether the point holds a path: a point made
 * from `/` holds the directories above the site; one made from the site's own directory never does.
 */
export function layoutOfPoint(layouts: DuplicityLayout[], holds: (path: string) => boolean): DuplicityLayout {
  const [current, ...older] = layouts;
  return older.find((layout) => layout.rootInArchive !== '' && holds(layout.rootInArchive)) ?? current;
}

/** The absolute path of the manifest a backup in `layout` reads. */
export function manifestSourcePath(layout: DuplicityLayout): string {
  return join(layout.source, layout.manifestInArchive);
}

/**
 * A path listed by `list-current-files` of a point, relative to the subject's root; undefined when it is outside
 * the subject (directories above it in the `root` layout) or the service's own manifest.
 */
export function subjectPathOf(listed: string, layout: DuplicityLayout): string | undefined {
  if (layout.kind === 'site') {
    if (listed === '.' || listed === SITE_MANIFEST_DIR || listed.startsWith(`${SITE_MANIFEST_DIR}/`)) return undefined;
    return listed;
  }
  const prefix = layout.rootInArchive ? `${layout.rootInArchive}/` : '';
  return listed.startsWith(prefix) && listed !== '.' ? listed.slice(prefix.length) : undefined;
}
