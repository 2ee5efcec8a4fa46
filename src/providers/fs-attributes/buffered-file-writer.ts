import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

/**
 * Appends text to a new file in chunks, synchronously. Lines arrive from a child's stdout through a synchronous
 * callback that cannot wait for an asynchronous write; writing each chunk before taking the next keeps memory bounded
 * to one chunk however fast the child prints.
 */
export class BufferedFileWriter {
  private readonly fd: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private closed = false;
  bytesWritten = 0;

  /** Creates the file (it must not exist yet), readable by its owner only: it describes who may read what. */
  constructor(
    readonly path: string,
    private readonly chunkBytes = 256 * 1024,
  ) {
    this.fd = openSync(path, 'wx', 0o600);
  }

  write(text: string): void {
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (this.pendingBytes >= this.chunkBytes) this.flush();
  }

  /** Flushes, syncs to disk (the file is renamed into place next) and closes. */
  close(): void {
    if (this.closed) return;
    this.flush();
    fsyncSync(this.fd);
    this.closed = true;
    closeSync(this.fd);
  }

  /** Closes without caring about what was not written yet; for error paths. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {
      // Already unusable: nothing more to release.
    }
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const chunk = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    this.pendingBytes = 0;
    let offset = 0;
    while (offset < chunk.length) offset += writeSync(this.fd, chunk, offset);
    this.bytesWritten += chunk.length;
  }
}
