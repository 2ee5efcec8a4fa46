import { Transform, type TransformCallback } from 'node:stream';
import { aclXattrToText, type IdNames } from './posix-acl';

const BLOCK = 512;
/** xattrs are at most 64 KiB each; a pax header this large is not one GNU tar wrote for a site file. */
const MAX_PAX_BYTES = 16 * 1024 * 1024;
/** Entry types left out of a download: character and block devices, FIFOs (GNU tar already ignores sockets). */
const SKIPPED_TYPES: Record<string, string> = { '3': 'character device', '4': 'block device', '6': 'FIFO' };
const ACL_RECORDS: Array<[xattr: string, acl: string]> = [
  ['SCHILY.xattr.system.posix_acl_access', 'SCHILY.acl.access'],
  ['SCHILY.xattr.system.posix_acl_default', 'SCHILY.acl.default'],
];

export interface SkippedEntry {
  path: string;
  type: string;
}

interface PaxRecord {
  key: string;
  value: Buffer;
}

/** A pax extended header awaiting its entry's header: its bytes as they came, and its records when read. */
interface PendingPax {
  /** The `x` header block and its data, as slices of the input (by reference). */
  slices: Buffer[];
  header: Buffer;
  /** The records' bytes, without padding. */
  data: Buffer;
  records: PaxRecord[] | null;
  /** The header and data to send instead, with SCHILY.acl.* added; null when the original goes as it came. */
  rebuilt: Buffer[] | null;
}

const ZERO_BLOCK = Buffer.alloc(BLOCK);
const EMPTY = Buffer.alloc(0);
const ACL_XATTR = Buffer.from('SCHILY.xattr.system.posix_acl_');
const SIZE_RECORD = Buffer.from(' size=');
const PATH_RECORD = Buffer.from(' path=');
/** Pieces of one input chunk's output beyond this many are joined into one write. */
const MAX_PIECES = 4;

/**
 * Rewrites the pax tar stream GNU tar writes (`--format=pax --xattrs --xattrs-include=*`) on its way to the client:
 * - drops devices and FIFOs (with their pax header), reporting each through `onSkipped`;
 * - adds `SCHILY.acl.access` / `SCHILY.acl.default` text records made from the binary `system.posix_acl_*` xattrs.
 *   GNU tar's own `--acls` reads ACLs again by path (`getxattr` on `/proc/self/fd/N/name`, which follows a link a
 *   tenant swapped in); the xattrs it read through the opened file's descriptor are the ones that belong to the
 *   content it archived.
 * It is on the download's hot path, so bytes it does not change are never copied: headers, pax records and file data
 * go out as slices of the chunks they came in, and adjacent slices of one chunk are joined back into one view, so an
 * unchanged chunk leaves as the very buffer it arrived in. Only a block split across two chunks is copied (to read
 * it), and pax records are parsed only when they hold an ACL, a size or a path this filter needs.
 */
export class PaxEntryFilter extends Transform {
  /** Slices of the block being gathered (a header, or a pax header's data). */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private want = BLOCK;
  private mode: 'header' | 'pax' = 'header';
  private passBytes = 0;
  private skipBytes = 0;
  private ended = false;
  private pending: PendingPax | null = null;
  /** The pending pax header's record bytes, without padding. */
  private paxSize = 0;
  /** What the current input chunk produced, in order; joined and pushed at the chunk's end. */
  private out: Buffer[] = [];

  constructor(
    private readonly names: IdNames,
    private readonly onSkipped: (entry: SkippedEntry) => void,
  ) {
    // Input arrives in chunks of up to 64 KiB: a few of them of slack is enough, and bounds what a slow client holds.
    super({ highWaterMark: 256 * 1024 });
  }

  /** Bytes passed on so far. */
  bytesOut = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      this.flushOut();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    this.flushOut();
    // No end-of-archive blocks: tar stopped early (killed, or failed), and the client must not get a tar that
    // looks whole.
    if (!this.ended) {
      callback(new Error('the tar stream ended before its end-of-archive blocks'));
      return;
    }
    callback();
  }

  /** Pushes the chunk's output: slices adjacent in memory become one view again, without a copy. */
  private flushOut(): void {
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    const pieces: Buffer[] = [];
    let current = out[0];
    for (let i = 1; i < out.length; i++) {
      const next = out[i];
      if (next.buffer === current.buffer && current.byteOffset + current.length === next.byteOffset) {
        current = Buffer.from(current.buffer, current.byteOffset, current.length + next.length);
      } else {
        pieces.push(current);
        current = next;
      }
    }
    pieces.push(current);
    if (pieces.length > MAX_PIECES) {
      const joined = Buffer.concat(pieces);
      this.bytesOut += joined.length;
      this.push(joined);
      return;
    }
    for (const piece of pieces) {
      this.bytesOut += piece.length;
      this.push(piece);
    }
  }

  private consume(chunk: Buffer): void {
    let offset = 0;
    const length = chunk.length;
    while (offset < length) {
      if (this.ended) {
        this.out.push(chunk.subarray(offset));
        return;
      }
      if (this.passBytes > 0) {
        const n = Math.min(this.passBytes, length - offset);
        this.out.push(chunk.subarray(offset, offset + n));
        offset += n;
        this.passBytes -= n;
        continue;
      }
      if (this.skipBytes > 0) {
        const n = Math.min(this.skipBytes, length - offset);
        offset += n;
        this.skipBytes -= n;
        continue;
      }
      const n = Math.min(this.want - this.partsBytes, length - offset);
      this.parts.push(chunk.subarray(offset, offset + n));
      this.partsBytes += n;
      offset += n;
      if (this.partsBytes < this.want) continue;
      this.completeBlock();
    }
  }

  /** A whole header or pax data gathered: read as one view (copied only when it was split across chunks). */
  private completeBlock(): void {
    const slices = this.parts;
    this.parts = [];
    this.partsBytes = 0;
    const whole = slices.length === 1 ? slices[0] : Buffer.concat(slices);
    if (this.mode === 'header') this.onHeader(whole, slices);
    else this.onPaxData(whole, slices);
  }

  private onHeader(block: Buffer, slices: Buffer[]): void {
    if (block.equals(ZERO_BLOCK)) {
      // End of archive: the zero blocks (and tar's record padding) go through as they are.
      this.flushPending();
      this.out.push(...slices);
      this.ended = true;
      return;
    }
    const type = String.fromCharCode(block[156] || 0x30);
    const size = headerSize(block);
    if (type === 'x') {
      if (size > MAX_PAX_BYTES) throw new Error(`a pax header of ${size} bytes`);
      this.flushPending();
      this.pending = { slices: [...slices], header: block, data: EMPTY, records: null, rebuilt: null };
      this.mode = 'pax';
      this.want = padded(size);
      this.paxSize = size;
      if (this.want === 0) this.completeBlock();
      return;
    }
    const pending = this.pending;
    this.pending = null;
    let entrySize = size;
    if (pending && pending.data.includes(SIZE_RECORD)) {
      const record = this.recordsOf(pending).find((r) => r.key === 'size');
      if (record) entrySize = Number(record.value.toString('latin1'));
    }
    if (type in SKIPPED_TYPES) {
      const record =
        pending && pending.data.includes(PATH_RECORD)
          ? this.recordsOf(pending).find((r) => r.key === 'path')
          : undefined;
      this.onSkipped({ path: record ? record.value.toString('utf8') : headerPath(block), type: SKIPPED_TYPES[type] });
      this.skipBytes = padded(entrySize);
      return;
    }
    if (pending) this.emitPending(pending);
    this.out.push(...slices);
    // Links and directories carry no data; regular files and anything else GNU tar sized carry `size` bytes.
    this.passBytes = type === '1' || type === '2' || type === '5' ? 0 : padded(entrySize);
  }

  private onPaxData(data: Buffer, slices: Buffer[]): void {
    const pending = this.pending!;
    pending.slices.push(...slices);
    pending.data = data.subarray(0, this.paxSize);
    // The binary ACL xattrs get their text twins; a header without them is never parsed.
    if (pending.data.includes(ACL_XATTR)) pending.rebuilt = this.withAclRecords(pending);
    this.mode = 'header';
    this.want = BLOCK;
  }

  private recordsOf(pending: PendingPax): PaxRecord[] {
    pending.records ??= parsePaxRecords(pending.data);
    return pending.records;
  }

  /** A pax header not followed by an entry (should not happen): pass it on as it came. */
  private flushPending(): void {
    if (this.pending) this.emitPending(this.pending);
    this.pending = null;
  }

  private emitPending(pending: PendingPax): void {
    if (pending.rebuilt) this.out.push(...pending.rebuilt);
    else this.out.push(...pending.slices);
  }

  private withAclRecords(pending: PendingPax): Buffer[] | null {
    const records = this.recordsOf(pending);
    const keys = new Set(records.map((record) => record.key));
    const added: PaxRecord[] = [];
    for (const [xattr, acl] of ACL_RECORDS) {
      const binary = records.find((record) => record.key === xattr);
      if (!binary || keys.has(acl)) continue;
      const text = aclXattrToText(binary.value, this.names);
      if (text !== undefined) added.push({ key: acl, value: Buffer.from(text, 'utf8') });
    }
    if (added.length === 0) return null;
    const { data, size } = encodePaxData([...added, ...records]);
    const rebuilt = Buffer.from(pending.header);
    writeOctal(rebuilt, 124, 12, size);
    writeChecksum(rebuilt);
    return [rebuilt, data];
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function padded(size: number): number {
  return size + padding(size);
}

/** The ustar size field: octal (read byte by byte: this runs twice per file), or GNU base-256 when its high bit is set. */
function headerSize(block: Buffer): number {
  if (block[124] & 0x80) {
    let value = 0;
    for (let i = 125; i < 136; i++) value = value * 256 + block[i];
    return value;
  }
  let value = 0;
  let i = 124;
  while (i < 136 && block[i] === 0x20) i++;
  for (; i < 136; i++) {
    const digit = block[i] - 0x30;
    if (digit < 0 || digit > 7) break;
    value = value * 8 + digit;
  }
  return value;
}

function headerPath(block: Buffer): string {
  const field = (start: number, length: number) => {
    const raw = block.subarray(start, start + length);
    const end = raw.indexOf(0);
    return raw.subarray(0, end < 0 ? length : end).toString('utf8');
  };
  const prefix = field(345, 155);
  const name = field(0, 100);
  return prefix ? `${prefix}/${name}` : name;
}

function parsePaxRecords(data: Buffer): PaxRecord[] {
  const records: PaxRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) throw new Error('a malformed pax record');
    const length = Number(data.subarray(offset, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= space - offset + 1 || offset + length > data.length) {
      throw new Error('a malformed pax record length');
    }
    const record = data.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals < 0) throw new Error('a pax record without "="');
    records.push({ key: record.subarray(0, equals).toString('utf8'), value: record.subarray(equals + 1) });
    offset += length;
  }
  return records;
}

/** Records `"<len> <key>=<value>\n"` (len counts itself), padded to whole blocks. */
function encodePaxData(records: PaxRecord[]): { data: Buffer; size: number } {
  const parts: Buffer[] = [];
  for (const { key, value } of records) {
    const body = Buffer.byteLength(key) + value.length + 3; // space, '=', newline
    let length = body + String(body).length;
    if (String(length).length !== String(body).length) length = body + String(length).length;
    parts.push(Buffer.from(`${length} ${key}=`, 'utf8'), value, Buffer.from('\n'));
  }
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  parts.push(Buffer.alloc(padding(total)));
  return { data: Buffer.concat(parts), size: total };
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, '0');
  block.write(text, offset, length - 1, 'latin1');
  block[offset + length - 1] = 0;
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
}
