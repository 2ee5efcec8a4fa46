/**
 * duplicity's own vocabulary, as 0.8.22 writes it: its compact UTC times (`20261126T212109Z`), the quoted and escaped
 * paths of `--log-fd` control lines, and the names of the files it leaves in a target or archive dir.
 */

const DUPLICITY_TIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export function isDuplicityTime(value: string): boolean {
  return DUPLICITY_TIME.test(value);
}

/** `20261126T212109Z` → `2026-11-26T21:21:09.000Z`; throws on anything else. */
export function duplicityTimeToIso(time: string): string {
  const m = DUPLICITY_TIME.exec(time);
  if (!m) throw new Error(`not a duplicity time: ${JSON.stringify(time)}`);
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC silently rolls 20261332T... over into a later date: refuse it instead.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || date.getUTCHours() !== hour) {
    throw new Error(`not a duplicity time: ${JSON.stringify(time)}`);
  }
  return date.toISOString();
}

/** An ISO 8601 time (or Date) → the form `--time` accepts and collection-status prints (whole seconds, UTC). */
export function toDuplicityTime(time: string | Date): string {
  const date = typeof time === 'string' ? new Date(time) : time;
  if (Number.isNaN(date.getTime())) throw new Error(`not a time: ${String(time)}`);
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/**
 * Decodes a path as duplicity's `util.escape` writes it in control lines: single-quoted, Python `unicode-escape`
 * (`\\`, `\n`, `\t`, `\r`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`) with `'` written as `\x27`. Returns null when the text is
 * not such a string (for example a line cut short by a killed process).
 */
export function unescapeDuplicityPath(quoted: string): string | null {
  if (quoted.length < 2 || !quoted.startsWith("'") || !quoted.endsWith("'")) return null;
  const body = quoted.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "'") return null;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const kind = body[i + 1];
    const simple = SIMPLE_ESCAPES[kind];
    if (simple !== undefined) {
      out += simple;
      i += 1;
      continue;
    }
    const width = kind === 'x' ? 2 : kind === 'u' ? 4 : kind === 'U' ? 8 : 0;
    const hex = body.slice(i + 2, i + 2 + width);
    if (width === 0 || !new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex)) return null;
    const codePoint = parseInt(hex, 16);
    if (codePoint > 0x10ffff) return null;
    out += String.fromCodePoint(codePoint);
    i += 1 + width;
  }
  return out;
}

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', n: '\n', t: '\t', r: '\r', "'": "'" };

/** One quoted path at the start of `text`, and what follows it (after one space). */
export function splitQuotedPath(text: string): { path: string; rest: string } | null {
  const m = /^('(?:[^'\\]|\\.)*')(?: (.*))?$/s.exec(text);
  if (!m) return null;
  const path = unescapeDuplicityPath(m[1]);
  return path === null ? null : { path, rest: m[2] ?? '' };
}

export type DuplicitySetType = 'full' | 'inc';

/** A backup set named by its time (an incremental's end time; `startTime` is the set it builds on). */
export interface DuplicitySetRef {
  type: DuplicitySetType;
  /** duplicity form, e.g. `20261126T212109Z`. */
  time: string;
  /** The same instant, ISO 8601 UTC. */
  iso: string;
  startTime?: string;
}

export interface DuplicityFileName {
  set: DuplicitySetRef;
  /** What the file holds: the set's manifest, one of its volumes, or its signatures. */
  content: 'manifest' | 'volume' | 'signatures';
  volume: number | null;
  /** `.gpg` (encrypted) rather than `.gz` or plain. */
  encrypted: boolean;
  /** A `.part` file: duplicity was interrupted while writing this set (only ever in the archive dir). */
  partial: boolean;
}

const FILE_NAME =
  /^duplicity-(full|inc|full-signatures|new-signatures)\.(\d{8}T\d{6}Z)(?:\.to\.(\d{8}T\d{6}Z))?\.(manifest|vol(\d+)\.difftar|sigtar)(\.gz|\.gpg|\.z)?(\.part)?$/;

/** Parses a file name duplicity writes (long names, no --file-prefix); null for anything else (`lockfile`, temp dirs). */
export function parseDuplicityFileName(name: string): DuplicityFileName | null {
  const m = FILE_NAME.exec(name);
  if (!m) return null;
  const [, kind, first, second, what, volume, suffix, part] = m;
  const incremental = kind === 'inc' || kind === 'new-signatures';
  // A full set has one time; an incremental one has "start.to.end"; anything else is not a duplicity name.
  if (incremental !== (second !== undefined)) return null;
  const time = second ?? first;
  const set: DuplicitySetRef = { type: incremental ? 'inc' : 'full', time, iso: duplicityTimeToIso(time) };
  if (incremental) set.startTime = first;
  const content = what === 'manifest' ? 'manifest' : what === 'sigtar' ? 'signatures' : 'volume';
  if ((content === 'signatures') !== kind.endsWith('signatures')) return null;
  return {
    set,
    content,
    volume: volume === undefined ? null : Number(volume),
    encrypted: suffix === '.gpg',
    partial: part !== undefined,
  };
}

/**
 * The sets an interrupted run left half-written: those with a `*.manifest.part` in the archive dir
 * (`<archive-dir>/<name>/`). collection-status counts such a set as complete (duplicity keeps it to resume), so
 * this listing is the only way to know it cannot be restored from.
 */
export function partialSetsIn(archiveFileNames: Iterable<string>): DuplicitySetRef[] {
  const sets: DuplicitySetRef[] = [];
  for (const name of archiveFileNames) {
    const parsed = parseDuplicityFileName(name);
    if (parsed?.partial && parsed.content === 'manifest') sets.push(parsed.set);
  }
  return sets.sort((a, b) => a.time.localeCompare(b.time));
}
