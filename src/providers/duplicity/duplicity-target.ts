import { Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessRunner } from '../../common/process/process-runner';
import { systemPython } from '../../common/process/system-python';
import { TargetErrorCode } from '../../jobs/job-error-codes';
import { JobFailure } from '../../jobs/job-failure';
import { classifyTargetFailure } from './duplicity-errors';

/**
 * duplicity has no command that lists or edits a target's files, and collection-status fails on the very states a
 * repair must undo. This script uses duplicity's own backend layer, so every scheme duplicity supports (file, sftp,
 * s3, ...) is listed and edited the way duplicity itself reaches it, with its ssh settings and retries.
 */
const TARGET_SCRIPT = `
import json, os, shutil, sys, tempfile
import fasteners
from duplicity import backend, config, log, path
lock_path = os.environ.get('DUPLICITY_TARGET_LOCK')
if lock_path:
    os.makedirs(os.path.dirname(lock_path), mode=0o700, exist_ok=True)
    # duplicity's own archive lock: no duplicity run of this name may be writing while the target is read or changed.
    lock = fasteners.process_lock.InterProcessLock(lock_path)
    if not lock.acquire(blocking=False):
        sys.stderr.write('Another duplicity instance is already running with this archive directory\\n')
        sys.exit(23)
log.setup()
log.setverbosity(log.WARNING)
config.num_retries = int(os.environ.get('DUPLICITY_TARGET_RETRIES', '2'))
config.backend_retry_delay = int(os.environ.get('DUPLICITY_TARGET_RETRY_DELAY', '3'))
if os.environ.get('DUPLICITY_TARGET_SSH_OPTIONS'):
    config.ssh_options = os.environ['DUPLICITY_TARGET_SSH_OPTIONS']
backend.import_backends()
url, op = sys.argv[1], sys.argv[2]
b = backend.get_backend(url)
if op == 'list':
    names = [n.decode('utf-8', 'replace') if isinstance(n, bytes) else n for n in b.list()]
    print(json.dumps(names))
elif op == 'apply':
    plan = json.loads(sys.stdin.read())
    if plan['remove']:
        b.delete([n.encode() for n in plan['remove']])
    for old, new in plan['rename']:
        with tempfile.TemporaryDirectory() as tmp:
            local = path.Path(os.path.join(tmp, 'f'))
            b.get(old.encode(), local)
            b.put(local, new.encode())
        b.delete([old.encode()])
    for name in plan['clearArchive']:
        target = os.path.join(os.path.dirname(lock_path), name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)
b.close()
`;

export interface TargetAccess {
  /** The target URL (`<DUPLICITY_TARGET>/<key>`). */
  url: string;
  /** duplicity's environment (HOME, TMPDIR, ssh settings); no passphrase: names are never encrypted. */
  env: Record<string, string>;
  /** duplicity's archive lock of the name (`<archive>/<name>/lockfile`), held while the helper runs. */
  lockFile: string;
  signal?: AbortSignal;
  onSpawn?: (pid: number) => void;
}

export interface TargetChanges {
  remove: string[];
  rename: Array<[string, string]>;
  /** Entries of the archive dir of the name to delete. */
  clearArchive: string[];
}

const TARGET_TIMEOUT_MS = 120_000;

/** The directory of a `file:///absolute/path` target URL; undefined for any other scheme or form. */
export function localTargetPath(url: string): string | undefined {
  if (!url.startsWith('file:///')) return undefined;
  try {
    const path = decodeURIComponent(url.slice('file://'.length));
    return path.includes('\0') ? undefined : path;
  } catch {
    return undefined;
  }
}

/** Lists, removes and renames files of a duplicity target through duplicity's backends. */
@Injectable()
export class DuplicityTarget {
  private interpreter: string | undefined;

  constructor(private readonly runner: ProcessRunner) {}

  /**
   * The target's file names. A local (`file:///`) target is read here, without the helper: starting Python and
   * importing duplicity's backends cost about as much as the rest of a small incremental's overhead, twice per backup
   * (the repair before, the scan after). This read takes no archive lock, so a caller that will change the target
   * lists again with `list` (under the lock) before it does.
   */
  async listNames(access: TargetAccess): Promise<string[]> {
    const local = localTargetPath(access.url);
    if (local === undefined) return this.list(access);
    try {
      return (await readdir(local, { withFileTypes: true }))
        .filter((entry) => entry.isFile())
        .map((entry) => entry.name);
    } catch (error) {
      // duplicity's local backend creates a missing target on first use: nothing there yet.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new JobFailure(
        TargetErrorCode.Unreachable,
        `the target directory cannot be read: ${(error as Error).message}`,
      );
    }
  }

  /** The target's file names through duplicity's backend, under the archive lock when `access.lockFile` is set. */
  async list(access: TargetAccess): Promise<string[]> {
    const stdout = await this.run(access, 'list');
    const names = JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as unknown;
    if (!Array.isArray(names)) throw new JobFailure('duplicity-exception', 'the target listing was not a list');
    return names.filter((name): name is string => typeof name === 'string');
  }

  /**
   * Removes and renames target files and removes archive dir entries (names in `<archive>/<name>/`), all under the
   * archive lock.
   */
  async apply(access: TargetAccess, changes: TargetChanges): Promise<void> {
    await this.run(access, 'apply', JSON.stringify(changes));
  }

  private async run(access: TargetAccess, op: string, input?: string): Promise<string> {
    const result = await this.runner.run({
      command: this.python(),
      args: ['-c', TARGET_SCRIPT, access.url, op],
      env: { ...access.env, DUPLICITY_TARGET_LOCK: access.lockFile },
      input,
      captureStdout: true,
      signal: access.signal,
      timeoutMs: TARGET_TIMEOUT_MS,
      onSpawn: access.onSpawn,
    });
    if (result.cancelled) throw new JobFailure('cancelled', `the target ${op} was cancelled`);
    if (result.exitCode !== 0 || result.timedOut) {
      const failure = /Another duplicity instance is already running/.test(result.stderrTail)
        ? {
            code: 'duplicity-locked',
            message:
              'Another duplicity process is using this archive (same archive dir and name); retry when it has finished.',
          }
        : classifyTargetFailure(result.stderrTail, result.timedOut);
      throw new JobFailure(failure.code, `${failure.message} (while reading the target to check its chain)`);
    }
    return result.stdout;
  }

  /** duplicity's own interpreter (its shebang): the `duplicity` package is installed for that Python only. */
  private python(): string {
    if (this.interpreter) return this.interpreter;
    for (const dir of ['/usr/local/bin', '/usr/bin', '/bin']) {
      try {
        const first = readFileSync(join(dir, 'duplicity'), 'utf8').split('\n', 1)[0];
        const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
        if (m) return (this.interpreter = m[1].endsWith('/env') && m[2] ? m[2] : m[1]);
      } catch {
        // not installed there
      }
    }
    return (this.interpreter = systemPython());
  }
}
