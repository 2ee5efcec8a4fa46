import { Injectable, Logger } from '@nestjs/common';
import { PassThrough } from 'node:stream';
import { JobFailure } from '../../jobs/job-failure';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
import { systemPython } from '../../common/process/system-python';

/**
 * Holds every open of one directory (the attribute manifest's) until told to let go, with a fanotify permission mark
 * (`FAN_OPEN_PERM | FAN_ONDIR` on that directory's inode, no child events). An engine lists a directory before it
 * can read anything in it, so an engine started beside the attribute capture waits at the manifest's directory until
 * the capture has renamed the complete manifest into it, and never stores a half-written or the previous one.
 *
 * Input on stdin: one JSON line `{"directory": ..., "allow_pids": [...]}` (the directory is opened as given: the
 * service passes its own held descriptor as `/proc/<pid>/fd/<n>`, so the mark lands on the inode it verified, whatever
 * a tenant renames meanwhile), then `release` when the manifest is in place. Output lines: `unavailable <why>` (no
 * fanotify here: the caller captures first and starts the engine after), `armed`, `held <pid>` (a process waits),
 * `released`. Opens by the allowed pids (the service's own) pass at once. If stdin closes before `release` (the
 * service died), the helper keeps holding until it is killed, as a restarted service kills a dead job's processes:
 * an engine of a dead job never gets past the fence to store whatever the directory held. If the helper itself dies,
 * the kernel lets every waiting open through; the service then fails the job (ManifestFence.besideEngine).
 */
export const MANIFEST_FENCE_SCRIPT = String.raw`
import ctypes, json, os, select, struct, sys

FAN_CLOEXEC = 0x1
FAN_CLASS_CONTENT = 0x4
FAN_MARK_ADD = 0x1
FAN_OPEN_PERM = 0x10000
FAN_ONDIR = 0x40000000
FAN_ALLOW = 0x1
META = struct.Struct('=IBBHQii')
RESPONSE = struct.Struct('=iI')

def say(line):
    os.write(1, (line + '\n').encode())

pending = b''
def read_line():
    global pending
    while b'\n' not in pending:
        chunk = os.read(0, 4096)
        if not chunk:
            return None
        pending += chunk
    line, _, pending = pending.partition(b'\n')
    return line

request = json.loads(read_line())
allowed = set(int(pid) for pid in request['allow_pids']) | {os.getpid()}
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
fan = libc.fanotify_init(FAN_CLOEXEC | FAN_CLASS_CONTENT, os.O_RDONLY | os.O_CLOEXEC | os.O_LARGEFILE)
if fan < 0:
    say('unavailable fanotify_init: ' + os.strerror(ctypes.get_errno()))
    sys.exit(0)
directory = os.open(request['directory'], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
if libc.fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_ONDIR, directory, None) < 0:
    say('unavailable fanotify_mark: ' + os.strerror(ctypes.get_errno()))
    sys.exit(0)
os.close(directory)
say('armed')

def allow(fd):
    os.write(fan, RESPONSE.pack(fd, FAN_ALLOW))
    os.close(fd)

held = []
watch = [fan, 0]
while True:
    if b'release' in pending:
        for fd in held:
            allow(fd)
        say('released')
        sys.exit(0)
    ready, _, _ = select.select(watch, [], [])
    if fan in ready:
        data = os.read(fan, 8192)
        offset = 0
        while offset + META.size <= len(data):
            length, _, _, _, _, fd, pid = META.unpack_from(data, offset)
            offset += length
            if fd < 0:
                continue
            if pid in allowed:
                allow(fd)
            else:
                held.append(fd)
                say('held %d' % pid)
    if 0 in ready:
        chunk = os.read(0, 4096)
        if chunk:
            pending += chunk
        else:
            watch = [fan]
            say('orphaned')
`;

/** What the helper said, as it said it. */
class FenceLines {
  /** `armed`, or why the fence could not be set. */
  armed: Promise<string>;
  heldAt: number | null = null;
  releasedAt: number | null = null;
  private settle: (outcome: string) => void = () => undefined;

  constructor(private readonly onHeld: (pid: number) => void) {
    this.armed = new Promise((resolve) => (this.settle = resolve));
  }

  push(line: string): void {
    if (line === 'armed') this.settle('armed');
    else if (line.startsWith('unavailable ')) this.settle(line.slice('unavailable '.length));
    else if (line.startsWith('held ')) {
      this.heldAt ??= Date.now();
      this.onHeld(Number(line.slice('held '.length)));
    } else if (line === 'released') this.releasedAt = Date.now();
  }

  exited(result: RunResult): void {
    this.settle(`the helper exited (${result.exitCode ?? result.signal}) before it was armed`);
  }
}

/** A fence in place on one directory. */
class ArmedFence {
  private releasing = false;
  private ended = false;

  constructor(
    private readonly input: PassThrough,
    private readonly exit: Promise<RunResult>,
    private readonly lines: FenceLines,
  ) {
    void exit.finally(() => (this.ended = true));
  }

  /** The helper exited before it was told to let go: whatever waited at the fence went through unchecked. */
  get broken(): boolean {
    return this.ended && !this.releasing;
  }

  /** Lets every waiting and later open through, and waits for the helper to exit. */
  async release(): Promise<{ waitedMs: number | null }> {
    this.releasing = true;
    this.input.end('release\n');
    await this.exit;
    const { heldAt, releasedAt } = this.lines;
    return { waitedMs: heldAt === null ? null : (releasedAt ?? Date.now()) - heldAt };
  }
}

export interface BesideEngineOptions<C, E> {
  /** The manifest's directory, as the helper should open it (`/proc/<pid>/fd/<n>` for a descriptor the service holds). */
  directory: string;
  /** Writes the complete manifest into `directory` (by rename), and anything else the job needs before the engine reads it. */
  capture: () => Promise<C>;
  /** Starts the engine; it must stop when `signal` aborts. */
  engine: (signal: AbortSignal) => Promise<E>;
  /** What the engine is called in the job log. */
  engineName: string;
  signal: AbortSignal;
  log: (line: string) => void;
  trackPid?: (pid: number) => void;
}

/**
 * Starts a backup engine beside the attribute capture instead of after it, when the kernel offers fanotify permission
 * events (root, CAP_SYS_ADMIN): the capture's walk (a fifth of a second per 100,000 files) then overlaps the engine's
 * start-up (interpreter, key derivation, the previous signatures), and the engine still reads only the complete
 * manifest. Without fanotify (a container without CAP_SYS_ADMIN, a kernel without permission events) it runs them
 * one after the other, as before.
 */
@Injectable()
export class ManifestFence {
  private readonly logger = new Logger(ManifestFence.name);
  private unavailableReason: string | null = null;

  constructor(private readonly runner: ProcessRunner) {}

  async besideEngine<C, E>(options: BesideEngineOptions<C, E>): Promise<{ captured: C; engine: E }> {
    const fence = await this.arm(options.directory, options.signal, options.trackPid, (pid) =>
      options.log(
        `${options.engineName} (pid ${pid}) waits at the manifest's directory until the attribute capture is done`,
      ),
    );
    if (!fence) {
      const captured = await options.capture();
      return { captured, engine: await options.engine(options.signal) };
    }
    const stopEngine = new AbortController();
    const onAbort = (): void => stopEngine.abort();
    options.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const engineRun = options.engine(stopEngine.signal);
      // The engine's failure is read after the capture (it may wait at the fence all that time).
      engineRun.catch(() => undefined);
      let captured: C;
      try {
        captured = await options.capture();
      } catch (error) {
        stopEngine.abort();
        await engineRun.catch(() => undefined);
        await fence.release();
        throw error;
      }
      // A cancelled job's helper was stopped with it: the engine was stopped too and reports the cancel itself.
      if (fence.broken && !options.signal.aborted) {
        stopEngine.abort();
        await engineRun.catch(() => undefined);
        throw new JobFailure(
          'attribute-fence-failed',
          `the helper that kept ${options.engineName} from reading the attribute manifest before it was complete exited early; the backup was stopped (run it again)`,
        );
      }
      const { waitedMs } = await fence.release();
      options.log(
        waitedMs === null
          ? `${options.engineName} started beside the attribute capture and reached the manifest after it was complete`
          : `${options.engineName} started beside the attribute capture and waited ${waitedMs} ms for the manifest`,
      );
      return { captured, engine: await engineRun };
    } finally {
      options.signal.removeEventListener('abort', onAbort);
    }
  }

  /** A fence on `directory`, or null (logged once) where fanotify permission events are not available. */
  private async arm(
    directory: string,
    signal: AbortSignal,
    trackPid: ((pid: number) => void) | undefined,
    onHeld: (pid: number) => void,
  ): Promise<ArmedFence | null> {
    if (this.unavailableReason !== null) return null;
    const input = new PassThrough();
    const lines = new FenceLines(onHeld);
    const exit = this.runner.run({
      command: systemPython(),
      args: ['-I', '-S', '-c', MANIFEST_FENCE_SCRIPT],
      stdin: input,
      signal,
      killGraceMs: 1000,
      onSpawn: (pid) => trackPid?.(pid),
      onLine: (stream, line) => {
        if (stream === 'stderr') this.logger.warn(`manifest fence: ${line}`);
        else if (stream === 'stdout') lines.push(line);
      },
    });
    input.write(`${JSON.stringify({ directory, allow_pids: [process.pid] })}\n`);
    void exit.then((result) => lines.exited(result));
    const outcome = await lines.armed;
    if (outcome === 'armed') return new ArmedFence(input, exit, lines);
    input.end();
    await exit;
    signal.throwIfAborted();
    if (outcome.startsWith('fanotify_')) {
      // The kernel or the service's privileges will not change while it runs: ask once.
      this.unavailableReason = outcome;
      this.logger.log(`engines start after the attribute capture (no fanotify permission events: ${outcome})`);
    } else {
      this.logger.warn(`manifest fence not armed: ${outcome}; this engine starts after the capture`);
    }
    return null;
  }
}
