import { posix } from 'node:path';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * The text format of `getfattr --dump` (what `setfattr --restore` reads back): one block per file that has attributes,
 *
 *     # file: shadow/var/www/html/wp-config.php
 *     system.posix_acl_access=0sAgAAAAEABgD/////...
 *     user.fortify=0sAP8K
 *     <blank line>
 *
 * getfattr 2.5.1 escapes only `\n`, `\r` and `\` in file names, as three octal digits (`\012`, `\015`, `\134`), and
 * also `=` in attribute names (`\075`); every other byte, UTF-8 or not, is printed raw. With `--encoding=base64` every
 * value is `0s…`, so no line of a dump holds a raw newline or carriage return.
 */
export const FILE_HEADER = '# file: ';

export interface DumpBlock {
  /** The `# file:` line exactly as getfattr printed it, kept verbatim so setfattr reads back the very same path. */
  header: string;
  /** The file's path as on disk (unescaped), relative to the directory getfattr ran in, without a leading `./`. */
  path: string;
  /** The `name=value` lines, verbatim. */
  attributes: string[];
}

/**
 * Splits a dump fed one line at a time into blocks. It holds one block at most, never the dump: a site can have
 * millions of files.
 */
export class DumpBlockReader {
  private current: DumpBlock | undefined;
  /** Lines outside any block (a truncated or hand-edited manifest); getfattr itself never prints them. */
  strayLines = 0;

  /** Feeds one line (without its newline); returns the block this line completed, if any. */
  push(line: string): DumpBlock | undefined {
    if (line.startsWith(FILE_HEADER)) {
      const done = this.end();
      this.current = { header: line, path: dumpPathOf(line), attributes: [] };
      return done;
    }
    if (line === '') return this.end();
    if (this.current) this.current.attributes.push(line);
    else this.strayLines++;
    return undefined;
  }

  /** Returns the block still open at the end of the input, if any. */
  end(): DumpBlock | undefined {
    const done = this.current;
    this.current = undefined;
    return done;
  }
}

/**
 * Splits a dump written to it as raw bytes into whole blocks (the header, the attribute lines and the blank line
 * after them), each handed to `onBlock` as text: one call per block, where reading lines cost one per line (a 100,000-
 * file site's manifest is 60,000 lines, and reading them one by one took longer than the walk that printed them).
 */
export class DumpBlockSplitter extends Writable {
  private readonly decoder = new StringDecoder('utf8');
  private carry = '';

  constructor(private readonly onBlock: (block: string) => void) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    try {
      const text = this.carry + this.decoder.write(chunk);
      let start = 0;
      for (let end = text.indexOf('\n\n', start); end !== -1; end = text.indexOf('\n\n', start)) {
        this.onBlock(text.slice(start, end + 2));
        start = end + 2;
      }
      this.carry = text.slice(start);
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  /** A last block without its blank line (output cut short) still counts, completed. */
  override _final(done: (error?: Error | null) => void): void {
    try {
      const rest = this.carry + this.decoder.end();
      this.carry = '';
      if (rest.trim()) this.onBlock(rest.endsWith('\n') ? `${rest}\n` : `${rest}\n\n`);
      done();
    } catch (error) {
      done(error as Error);
    }
  }
}

/** The path a block's `# file:` header names, as `DumpBlock.path`. */
export function blockPath(block: string): string | undefined {
  if (!block.startsWith(FILE_HEADER)) return undefined;
  const end = block.indexOf('\n');
  return dumpPathOf(end < 0 ? block : block.slice(0, end));
}

/** A whole block as `formatBlock` writes it: empty values as bare names (see `restorableAttribute`). */
export function restorableBlock(block: string): string {
  // `=` never ends a base64 value and is escaped in names: `=0s` before a newline is always an empty value.
  return block.replace(/=0s\n/g, '\n');
}

/** Writes a block back in dump format, newline-terminated lines, ending with the blank separator line. */
export function formatBlock(block: DumpBlock): string {
  return `${block.header}\n${block.attributes.map((line) => `${restorableAttribute(line)}\n`).join('')}\n`;
}

/**
 * setfattr 2.5.1 silently skips an attribute whose base64 value is empty (`user.flag=0s`: exit 0, nothing set), while
 * a bare name (`user.flag`) sets the empty value: so an empty value is written as a bare name.
 */
export function restorableAttribute(line: string): string {
  return line.endsWith('=0s') ? line.slice(0, -'=0s'.length) : line;
}

function dumpPathOf(header: string): string {
  return stripDotSlash(unescapeDumpPath(header.slice(FILE_HEADER.length)));
}

/**
 * Undoes getfattr's quoting the way setfattr does (attr's `unquote`): a backslash followed by three octal digits is
 * that byte; any other backslash is literal.
 */
export function unescapeDumpPath(escaped: string): string {
  if (!escaped.includes('\\')) return escaped;
  const parts: Buffer[] = [];
  let literalStart = 0;
  for (let i = 0; i < escaped.length; i++) {
    if (escaped[i] === '\\' && /^[0-7]{3}$/.test(escaped.slice(i + 1, i + 4))) {
      parts.push(
        Buffer.from(escaped.slice(literalStart, i), 'utf8'),
        Buffer.from([parseInt(escaped.slice(i + 1, i + 4), 8)]),
      );
      i += 3;
      literalStart = i + 1;
    }
  }
  parts.push(Buffer.from(escaped.slice(literalStart), 'utf8'));
  return Buffer.concat(parts).toString('utf8');
}

/** getfattr's quoting of a file name: the inverse of `unescapeDumpPath` for the names getfattr prints. */
export function escapeDumpPath(path: string): string {
  return path.replace(/[\\\n\r]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * True when a name could not be decoded as UTF-8: the process runner hands lines over as UTF-8 text, so a file name in
 * another encoding (Latin-1 from an old FTP client) arrives with U+FFFD in place of its bytes and cannot be found again.
 */
export function isMangledName(path: string): boolean {
  return path.includes('\uFFFD');
}

/**
 * Checks a path meant to be relative to a root and returns it in one canonical spelling (no `./`, no doubled or
 * trailing slash); `.` stands for the root itself. Returns undefined for an absolute path, a `..` step, a NUL byte or
 * an empty string: such a path could reach outside the root.
 */
export function canonicalRelativePath(path: string): string | undefined {
  if (path === '' || path.includes('\0') || path.startsWith('/')) return undefined;
  if (path.split('/').includes('..')) return undefined;
  const normal = posix.normalize(path).replace(/\/+$/, '');
  return normal === '' ? '.' : normal;
}

/** True when `path` is `prefix` or lies under it; `.` holds everything. Both canonical (see `canonicalRelativePath`). */
export function isWithin(path: string, prefix: string): boolean {
  return prefix === '.' || path === prefix || path.startsWith(`${prefix}/`);
}

export function isWithinAny(path: string, prefixes: readonly string[]): boolean {
  return prefixes.some((prefix) => isWithin(path, prefix));
}

function stripDotSlash(path: string): string {
  let stripped = path;
  while (stripped.startsWith('./')) stripped = stripped.slice(2);
  return stripped === '' ? '.' : stripped;
}

/**
 * Warnings a job can show: the first `limit` kept word for word, the rest only counted, so a tree where a million
 * files vanished cannot fill memory or the job record.
 */
export class WarningList {
  private readonly kept: string[] = [];
  private dropped = 0;

  constructor(private readonly limit = 100) {}

  add(warning: string): void {
    if (this.kept.length < this.limit) this.kept.push(warning);
    else this.dropped++;
  }

  get size(): number {
    return this.kept.length + this.dropped;
  }

  toArray(): string[] {
    return this.dropped === 0 ? [...this.kept] : [...this.kept, `… and ${this.dropped} more warnings like these`];
  }
}
