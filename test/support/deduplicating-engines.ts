import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/**
 * Helpers for the restic and borg integration tests: repositories' locks held by real processes (a live one on
 * "another host" through a UTS namespace, or one whose process was killed), and a file big enough to cancel a
 * backup in the middle of it.
 */

const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface HeldLock {
  pid: number;
  /** Lets the holder exit normally (its stdin closes), which releases the lock; resolves when it has exited. */
  release(): Promise<void>;
  /** SIGKILLs the holder (by its pid), so its lock stays behind, stale; resolves when it has exited. */
  kill(): Promise<void>;
}

/** Runs `command` (as `sh -c`), in a UTS namespace named `host` when given, with stdin a pipe held open. */
function holdOpen(script: string, env: Record<string, string>, host?: string): ChildProcess {
  const args = host ? ['-u', 'sh', '-c', `hostname ${host} && exec ${script}`] : ['sh', '-c', `exec ${script}`];
  return spawn(host ? 'unshare' : args[0], host ? args : args.slice(1), {
    env: { PATH: TOOL_PATH, LANG: 'C.UTF-8', ...env },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
}

async function waitFor(condition: () => boolean, what: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (child.exitCode !== null) throw new Error(`${what}: the lock holder exited (${child.exitCode}) first`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function held(child: ChildProcess): HeldLock {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    pid: child.pid!,
    release: async () => {
      child.stdin?.end();
      await exited;
    },
    kill: async () => {
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
  };
}

/** An exclusive restic lock: `restic key passwd` takes one, then waits for the new password on stdin. */
export async function holdResticLock(
  repository: string,
  passwordFile: string,
  cacheDir: string,
  host?: string,
): Promise<HeldLock> {
  const locks = join(repository, 'locks');
  const before = new Set(readdirSync(locks));
  const child = holdOpen(
    'restic key passwd',
    { HOME: cacheDir, RESTIC_CACHE_DIR: cacheDir, RESTIC_REPOSITORY: repository, RESTIC_PASSWORD_FILE: passwordFile },
    host,
  );
  await waitFor(() => readdirSync(locks).some((name) => !before.has(name)), 'restic lock', child);
  return held(child);
}

/** An exclusive borg lock: `borg with-lock REPO cat` holds it until cat's stdin closes. */
export async function holdBorgLock(
  repository: string,
  passphraseFile: string,
  baseDir: string,
  host?: string,
): Promise<HeldLock> {
  const child = holdOpen(
    `borg with-lock ${repository} cat`,
    { BORG_BASE_DIR: baseDir, BORG_PASSCOMMAND: `cat ${passphraseFile}` },
    host,
  );
  await waitFor(() => existsSync(join(repository, 'lock.exclusive')), 'borg lock', child);
  return held(child);
}

/** Writes `bytes` of random data (incompressible, never deduplicated) in 1 MiB chunks. */
export async function writeRandomBytes(path: string, bytes: number): Promise<void> {
  await writeFile(path, '');
  for (let written = 0; written < bytes; written += 1024 * 1024) {
    await appendFile(path, randomBytes(Math.min(1024 * 1024, bytes - written)));
  }
}

/** Asserts no line of `texts` holds `secret`. */
export function assertNoSecret(secret: string, texts: string[], where: string): void {
  for (const text of texts) assert.ok(!text.includes(secret), `${where} holds the secret: ${text.slice(0, 200)}`);
}

export function writeSecretFile(path: string, secret: string): string {
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return path;
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
