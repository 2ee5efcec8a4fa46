import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { constants as zlibConstants, createGzip } from 'node:zlib';

export const COMPRESSIONS = ['none', 'gzip', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const COMPRESSION_MEDIA: Record<Compression, { type: string; extension: string }> = {
  none: { type: 'application/x-tar', extension: '.tar' },
  gzip: { type: 'application/gzip', extension: '.tar.gz' },
  zstd: { type: 'application/zstd', extension: '.tar.zst' },
};

/**
 * The compressing stage of a download (none: the tar goes to the client as it is). gzip is Node's zlib (off the event loop, in the thread pool); Node 20 has no
 * zstd, so it is the `zstd` binary on a pipe (no file, no shell, nothing tenant-controlled in its argv).
 */
export function compressor(compression: Compression): Duplex | null {
  switch (compression) {
    case 'none':
      return null;
    case 'gzip':
      return createGzip({ level: 6, chunkSize: 64 * 1024, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
    case 'zstd': {
      const child = spawn('zstd', ['-q', '-c', '-3', '-T1'], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { PATH: '/usr/bin:/bin' },
      });
      const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
      // A download that breaks must not leave zstd waiting on a pipe.
      duplex.once('close', () => child.kill('SIGKILL'));
      child.once('error', (error) => duplex.destroy(error));
      return duplex;
    }
  }
}
