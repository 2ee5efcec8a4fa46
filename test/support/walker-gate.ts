import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Holds the attribute walker (every `python3` process, and the `find` it runs for symlinks) at one directory of a site, with a fanotify permission mark on
 * it, and lets every other process through, printing `held <pid> <comm>` and `allowed <pid> <comm>` for each open.
 * A test can so keep a capture unfinished for as long as it likes, and see which engine got where meanwhile.
 */
const WALKER_GATE_SCRIPT = String.raw`
import ctypes, os, select, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
fan = libc.fanotify_init(0x1 | 0x4, os.O_RDONLY | os.O_LARGEFILE)
if fan < 0 or libc.fanotify_mark(fan, 0x1, 0x10000 | 0x40000000, -100, sys.argv[1].encode()) < 0:
    sys.exit('fanotify: ' + os.strerror(ctypes.get_errno()))
META = struct.Struct('=IBBHQii')
def say(line):
    os.write(1, (line + '\n').encode())
def allow(fd):
    os.write(fan, struct.pack('=iI', fd, 1))
    os.close(fd)
say('armed')
held = []
while True:
    ready, _, _ = select.select([fan, 0], [], [])
    if 0 in ready:
        for fd in held:
            allow(fd)
        say('released')
        sys.exit(0)
    data = os.read(fan, 8192)
    offset = 0
    while offset + META.size <= len(data):
        length, _, _, _, _, fd, pid = META.unpack_from(data, offset)
        offset += length
        try:
            comm = open('/proc/%d/comm' % pid).read().strip()
        except OSError:
            comm = '?'
        if comm.startswith('python') or comm == 'find':
            held.append(fd)
            say('held %d %s' % (pid, comm))
        else:
            allow(fd)
            say('allowed %d %s' % (pid, comm))
`;

export interface WalkerGate {
  /** Every line the gate printed so far. */
  readonly lines: string[];
  /** Resolves with the first line that `match` accepts (already printed, or when it is). */
  line(match: (line: string) => boolean): Promise<string>;
  /** Lets the held walker go (stdin closed) and waits for the gate to exit. */
  release(): Promise<void>;
}

export async function startWalkerGate(directory: string): Promise<WalkerGate> {
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [
    '-I',
    '-S',
    '-c',
    WALKER_GATE_SCRIPT,
    directory,
  ]);
  const lines: string[] = [];
  const waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const gate: WalkerGate = {
    lines,
    line: (match) => {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    release: async () => {
      child.stdin.end();
      await exited;
    },
  };
  await Promise.race([
    gate.line((line) => line === 'armed'),
    exited.then(() => {
      throw new Error(`the walker gate did not arm: ${stderr}`);
    }),
  ]);
  return gate;
}
