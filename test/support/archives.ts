import { execFile } from 'node:child_process';
import { mkdtemp, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestApp } from './test-app';

const run = promisify(execFile);
const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8' };

export interface Download {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

/** GETs a route and keeps the whole body as bytes (tar, gzip, zstd, or a problem+json). */
export async function download(t: TestApp, path: string, role: 'monitor' | 'operator' = 'operator'): Promise<Download> {
  const res = await t
    .http()
    .get(path)
    .set(t.auth(role))
    .buffer(true)
    .parse((response, callback) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => callback(null, Buffer.concat(chunks)));
    });
  const body = res.body as Buffer;
  return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
}

/** Extracts a tar file as root, with every xattr and ACL, using GNU tar or bsdtar (libarchive). */
export async function extract(tool: 'gnu' | 'bsd', archive: string, into: string): Promise<void> {
  if (tool === 'gnu') {
    await run('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--same-owner', '-xpf', archive, '-C', into], {
      env: TOOL_ENV,
    });
  } else {
    await run(
      'bsdtar',
      ['-x', '-p', '--xattrs', '--acls', '--same-owner', '--numeric-owner', '-f', archive, '-C', into],
      {
        env: TOOL_ENV,
      },
    );
  }
}

export async function listArchive(archive: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tf', archive], { env: TOOL_ENV, maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').filter(Boolean);
}

/** Groups of paths (relative, sorted) that share an inode: the hardlinks of a tree. */
export async function hardlinkGroups(root: string): Promise<string[][]> {
  const byInode = new Map<string, string[]>();
  const walk = async (rel: string): Promise<void> => {
    const info = await lstat(join(root, rel));
    if (info.isFile() && info.nlink > 1) {
      const key = `${info.dev}:${info.ino}`;
      byInode.set(key, [...(byInode.get(key) ?? []), rel]);
    }
    if (info.isDirectory()) for (const name of await readdir(join(root, rel))) await walk(`${rel}/${name}`);
  };
  await walk('.');
  return [...byInode.values()].map((group) => group.sort()).sort();
}

/** Modification times (whole seconds) of every regular file and directory, by relative path. */
export async function mtimes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (rel: string): Promise<void> => {
    const info = await lstat(join(root, rel));
    if (info.isFile()) out.set(rel, Math.floor(info.mtimeMs / 1000));
    if (info.isDirectory()) for (const name of await readdir(join(root, rel))) await walk(`${rel}/${name}`);
  };
  await walk('.');
  return out;
}

export async function emptyDir(parent: string, prefix: string): Promise<string> {
  return mkdtemp(join(parent, prefix));
}
