import { posix } from 'node:path';
import { JobFailure } from '../../jobs/job-failure';
import type { BackupSubject } from '../backup-provider';

/**
 * The director resources the provider writes into BACULA_INCLUDE_DIR. Bacula bases an incremental on the last job with
 * the same Job, Client and FileSet, so every subject gets a Job and a FileSet of its own; one shared Restore job serves
 * every restore. Everything written here ends up in the director's configuration, so names and paths are checked
 * strictly before they are rendered.
 */

export const RESTORE_JOB = 'apiscp-backup-api-restore';
export const RESTORE_FILESET = 'apiscp-backup-api-restore-fs';
export const COMMON_FILE = 'apiscp-backup-api.conf';
/** Never restored into: every restore passes its own `where=`. */
const RESTORE_JOB_WHERE = '/nonexistent/apiscp-backup-api/restores';

export interface DirectorSettings {
  client: string;
  storage: string;
  pool: string;
  jobDefaults: string;
  /** `none` or a Bacula compression name (GZIP, GZIP6, LZO, …). */
  compression: string;
}

export interface SubjectResources {
  job: string;
  fileSet: string;
  /** The file name inside the include directory. */
  file: string;
}

/** What the director shows for a FileSet rendered from a subject: the `File =` and `Exclude` paths. */
export interface ExpectedFileSet {
  include: string[];
  exclude: string[];
}

const SUBJECT_KEY = /^[a-z][a-z0-9]{0,62}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** A newline or other control character would end a bconsole command or a configuration line early. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}
const GLOB = /[*?[]/;

/** `site12` → Job `apiscp-site12`, FileSet `apiscp-site12-fs`, file `apiscp-site12.conf`. */
export function resourcesFor(key: string): SubjectResources {
  if (!SUBJECT_KEY.test(key)) {
    throw new JobFailure(
      'bacula-invalid-subject',
      `${JSON.stringify(key.slice(0, 80))} cannot name Bacula resources: expected lowercase letters and digits (siteN or server).`,
    );
  }
  return { job: `apiscp-${key}`, fileSet: `apiscp-${key}-fs`, file: `apiscp-${key}.conf` };
}

/**
 * Rejects what cannot be written into a quoted Bacula string or sent as a bconsole argument: relative or unnormalised
 * paths, quotes, backslashes and control characters.
 */
export function assertConfigPath(path: string, what: string): void {
  const problem = !posix.isAbsolute(path)
    ? 'is not absolute'
    : /["\\]/.test(path) || hasControlCharacter(path)
      ? 'holds a quote, a backslash or a control character'
      : posix.normalize(path) !== path || (path.length > 1 && path.endsWith('/'))
        ? 'is not normalised'
        : null;
  if (problem) throw new JobFailure('bacula-invalid-path', `${what} ${JSON.stringify(path.slice(0, 200))} ${problem}.`);
}

function quote(value: string): string {
  return `"${value}"`;
}

/** The longest directory prefix of a glob that holds no wildcard: where the file daemon starts walking. */
export function globBase(pattern: string): string {
  const parts = pattern.split('/');
  const firstWild = parts.findIndex((part) => GLOB.test(part));
  return parts.slice(0, firstWild).join('/') || '/';
}

function optionsBlock(settings: DirectorSettings, patterns: string[] = []): string[] {
  return [
    '    Options {',
    '      signature = MD5',
    '      aclsupport = yes',
    '      xattrsupport = yes',
    ...(settings.compression === 'none' ? [] : [`      compression = ${settings.compression}`]),
    ...patterns.map((pattern) => `      wild = ${quote(pattern)}`),
    '    }',
  ];
}

function excludeOptions(kind: 'wild' | 'wildfile', patterns: string[]): string[] {
  if (patterns.length === 0) return [];
  return ['    Options {', '      exclude = yes', ...patterns.map((p) => `      ${kind} = ${quote(p)}`), '    }'];
}

/**
 * The FileSet and Job of one subject. Plain paths go into one Include with `File =` lines and an `Exclude`. A glob
 * (the server's `/var/lib/mysql/mysql-grants*`) gets an Include of its own: the walk starts at its wildcard-free base,
 * the first Options keeps what matches the glob (and what lies under a matching directory), the next leaves out the
 * rest. A glob with a wildcard only in its last part excludes everything else under the base; one with a wildcard
 * higher up has to keep walking directories, so only files are left out there.
 */
export function renderSubjectConfig(
  subject: BackupSubject,
  settings: DirectorSettings,
): { text: string; expected: ExpectedFileSet } {
  const names = resourcesFor(subject.key);
  if (subject.include.length === 0) {
    throw new JobFailure('bacula-invalid-subject', `${subject.key} has nothing to back up (no include paths).`);
  }
  subject.include.forEach((path) => assertConfigPath(path, 'Include path'));
  subject.exclude.forEach((path) => assertConfigPath(path, 'Exclude path'));
  const plainIncludes = subject.include.filter((path) => !GLOB.test(path));
  const globIncludes = subject.include.filter((path) => GLOB.test(path));
  const plainExcludes = subject.exclude.filter((path) => !GLOB.test(path));
  const globExcludes = subject.exclude.filter((path) => GLOB.test(path));

  const lines = [
    '# Written by apiscp-backup-api: rewritten before each backup of this subject, do not edit.',
    'FileSet {',
    `  Name = ${quote(names.fileSet)}`,
  ];
  if (plainIncludes.length > 0) {
    lines.push(
      '  Include {',
      ...excludeOptions('wild', globExcludes),
      ...optionsBlock(settings),
      ...plainIncludes.map((path) => `    File = ${quote(path)}`),
      '  }',
    );
  }
  for (const pattern of globIncludes) {
    const base = globBase(pattern);
    const lastPartOnly = !GLOB.test(posix.dirname(pattern));
    const under = base === '/' ? '/*' : `${base}/*`;
    lines.push(
      '  Include {',
      ...excludeOptions('wild', globExcludes),
      ...optionsBlock(settings, [pattern, `${pattern}/*`]),
      ...excludeOptions(lastPartOnly ? 'wild' : 'wildfile', [under]),
      `    File = ${quote(base)}`,
      '  }',
    );
  }
  if (plainExcludes.length > 0) {
    lines.push('  Exclude {', ...plainExcludes.map((path) => `    File = ${quote(path)}`), '  }');
  }
  lines.push(
    '}',
    '',
    'Job {',
    `  Name = ${quote(names.job)}`,
    `  JobDefs = ${quote(settings.jobDefaults)}`,
    '  Type = Backup',
    `  FileSet = ${quote(names.fileSet)}`,
    `  Client = ${quote(settings.client)}`,
    `  Storage = ${quote(settings.storage)}`,
    `  Pool = ${quote(settings.pool)}`,
    // Without it an incremental does not notice deleted files, and a restore would bring them back.
    '  Accurate = yes',
    '}',
    '',
  );
  return {
    text: lines.join('\n'),
    expected: { include: [...plainIncludes, ...globIncludes.map(globBase)], exclude: plainExcludes },
  };
}

/** The Restore job every restore runs (`restorejob=`), so an operator's own restore jobs never get in the way. */
export function renderCommonConfig(settings: DirectorSettings): string {
  return [
    '# Written by apiscp-backup-api: the Restore job its restores run. Do not edit.',
    'FileSet {',
    `  Name = ${quote(RESTORE_FILESET)}`,
    '  Include {',
    `    File = ${quote(RESTORE_JOB_WHERE)}`,
    '  }',
    '}',
    '',
    'Job {',
    `  Name = ${quote(RESTORE_JOB)}`,
    `  JobDefs = ${quote(settings.jobDefaults)}`,
    '  Type = Restore',
    `  FileSet = ${quote(RESTORE_FILESET)}`,
    `  Client = ${quote(settings.client)}`,
    `  Storage = ${quote(settings.storage)}`,
    `  Pool = ${quote(settings.pool)}`,
    `  Where = ${quote(RESTORE_JOB_WHERE)}`,
    '}',
    '',
  ].join('\n');
}

/** A bconsole argument value: double-quoted, with the backslash escapes bconsole's argument parser undoes. */
export function consoleQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * A name for the restore tree's `mark`, which matches with fnmatch after bconsole's own unescaping: wildcards and
 * backslashes are escaped for fnmatch first, then quoted for bconsole.
 */
export function markPattern(name: string): string {
  return consoleQuote(name.replace(/[\\*?[]/g, (char) => `\\${char}`));
}
