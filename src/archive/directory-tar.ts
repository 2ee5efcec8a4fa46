import { Injectable } from '@nestjs/common';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ProcessRunner } from '../common/process/process-runner';
import { compressor, type Compression } from './compression';
import { PaxEntryFilter, type SkippedEntry } from './pax-filter';
import { readIdNames } from './posix-acl';

export interface DirectoryTarRequest {
  /** fd of the directory to archive, opened by the caller with O_DIRECTORY|O_NOFOLLOW; the caller closes it. */
  directoryFd: number;
  /** Member names (`./a/b`) left out, matched exactly. */
  exclude: string[];
  compression: Compression;
  out: Writable;
  signal: AbortSignal;
  log: (line: string) => void;
  onSpawn?: (pid: number) => void;
}

export interface DirectoryTarOutcome {
  /** Bytes of tar written (before compression). */
  tarBytes: number;
  skipped: SkippedEntry[];
  /** Files that changed while they were read, vanished, or could not be read (GNU tar's warnings). */
  warnings: string[];
  /** Whether the whole archive reached `out`. */
  complete: boolean;
  error?: string;
}

/** GNU tar's own words for a file it ignored because of its type. */
const IGNORED = /^tar: (.*): (socket) ignored$/;

/**
 * Streams a pax tar of an opened directory: GNU tar as a child, started in that directory (its cwd is the magic
 * link `/proc/<service pid>/fd/<fd>`, so no path is walked again), walks it itself with openat(O_NOFOLLOW) relative
 * to each parent's descriptor, stores symlinks as links, hardlinks as links, and reads xattrs with flistxattr and
 * fgetxattr on the files it opened. Its output passes through PaxEntryFilter (devices and FIFOs out, ACL text in),
 * then the compressor, into `out`, with backpressure all the way back to tar's reads.
 */
@Injectable()
export class DirectoryTar {
  constructor(private readonly runner: ProcessRunner) {}

  async stream(request: DirectoryTarRequest): Promise<DirectoryTarOutcome> {
    const skipped: SkippedEntry[] = [];
    const warnings: string[] = [];
    const filter = new PaxEntryFilter(readIdNames(), (entry) => {
      skipped.push(entry);
      request.log(`skipped ${entry.type}: ${entry.path}`);
    });
    const stop = new AbortController();
    const abort = () => stop.abort();
    request.signal.addEventListener('abort', abort, { once: true });
    const compress = compressor(request.compression);
    const delivery = (compress ? pipeline(filter, compress, request.out) : pipeline(filter, request.out)).then(
      () => undefined,
      (error: unknown) => {
        stop.abort();
        return error instanceof Error ? error.message : String(error);
      },
    );
    try {
      const result = await this.runner.run({
        command: 'tar',
        args: [
          '--create',
          '--file=-',
          '--format=pax',
          // 64 KiB records: tar's writes fill the reads this process makes (64 KiB), so a download is half as many
          // chunks through the filter and the socket as with the default 10 KiB; any tar reader takes any record size.
          '--blocking-factor=128',
          '--xattrs',
          '--xattrs-include=*',
          '--no-acls',
          '--no-selinux',
          '--anchored',
          '--no-wildcards',
          ...request.exclude.map((member) => `--exclude=${member}`),
          '.',
        ],
        cwd: `/proc/${process.pid}/fd/${request.directoryFd}`,
        stdoutTo: filter,
        signal: stop.signal,
        killGraceMs: 1000,
        interactive: true,
        onSpawn: request.onSpawn,
        onLine: (stream, line) => {
          if (stream !== 'stderr') return;
          const ignored = IGNORED.exec(line);
          if (ignored) {
            skipped.push({ path: ignored[1], type: ignored[2] });
            request.log(`skipped ${ignored[2]}: ${ignored[1]}`);
            return;
          }
          warnings.push(line);
          request.log(line);
        },
      });
      const deliveryError = await delivery;
      // GNU tar exits 2 for a file it could not open (e.g. a directory swapped for a link mid-walk) yet finishes a
      // well-formed archive: that is a warning. An archive without its end blocks failed the filter (deliveryError).
      if (result.exitCode !== 0 && !result.cancelled) warnings.push(`tar exited ${result.exitCode ?? result.signal}`);
      const error = deliveryError ?? (result.cancelled ? 'stopped before the archive was complete' : undefined);
      if (error !== undefined && !request.out.destroyed) request.out.destroy(new Error(error));
      return {
        tarBytes: filter.bytesOut,
        skipped,
        warnings,
        complete: error === undefined,
        ...(error !== undefined ? { error } : {}),
      };
    } finally {
      request.signal.removeEventListener('abort', abort);
    }
  }
}
