import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually } from './wait';

/**
 * A tree outside every site that a hostile tenant aims root's writes, reads and removals at. `fingerprint` must be
 * the same before and after every attack: same entries, modes, owners, link targets and bytes.
 */
export async function plantSentinel(dir: string): Promise<void> {
  await mkdir(join(dir, 'lib', 'deep'), { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'victim'), 'root-owned victim file\n', { mode: 0o644 });
  await writeFile(join(dir, 'secret'), 'root-only secret\n', { mode: 0o600 });
  await writeFile(join(dir, 'lib', 'deep', 'data'), 'x'.repeat(1000), { mode: 0o640 });
  await writeFile(join(dir, 'manifest.json'), '{"version":1,"engine":"mysql","exports":[]}\n', { mode: 0o644 });
}

/** Every entry under `dir` with its type, mode, owner, size, link target and SHA-256: equal means untouched. */
export async function fingerprint(dir: string): Promise<string[]> {
  const lines: string[] = [];
  const visit = async (path: string, rel: string): Promise<void> => {
    const stats = await lstat(path);
    const head = `${rel} ${stats.mode.toString(8)} ${stats.uid}:${stats.gid} nlink=${stats.nlink}`;
    if (stats.isSymbolicLink()) lines.push(`${head} -> ${await readlink(path)}`);
    else if (stats.isFile()) {
      lines.push(
        `${head} ${stats.size} ${createHash('sha256')
          .update(await readFile(path))
          .digest('hex')}`,
      );
    } else if (stats.isDirectory()) {
      lines.push(head);
      for (const name of (await readdir(path)).sort()) await visit(join(path, name), `${rel}/${name}`);
    } else lines.push(`${head} special`);
  };
  await visit(dir, '.');
  return lines;
}

const RACER = `
const fs = require('node:fs');
const [dir, target, stopFile, maxRounds, maxMs] = process.argv.slice(1);
const aside = dir + '.racer-aside';
const deadline = Date.now() + Number(maxMs);
let rounds = 0, errors = 0;
while (rounds < Number(maxRounds) && Date.now() < deadline && !fs.existsSync(stopFile)) {
  try {
    fs.renameSync(dir, aside);
    fs.symlinkSync(target, dir);
    for (let i = 0; i < 50; i++) fs.lstatSync(dir);
    fs.unlinkSync(dir);
    fs.renameSync(aside, dir);
    rounds++;
    // Said once, so the test starts the work it races only once the racer really swaps (see startSwapRacer).
    if (rounds === 1) process.stdout.write('racing\\n');
  } catch (e) {
    // The service made a new directory at the name meanwhile: move it out of the way, as the tenant could.
    errors++;
    try { if (fs.lstatSync(dir).isSymbolicLink()) fs.unlinkSync(dir); } catch {}
    try { if (fs.existsSync(aside)) { if (fs.existsSync(dir)) fs.renameSync(dir, dir + '.racer-junk-' + errors); fs.renameSync(aside, dir); } } catch {}
    if (errors > 100000) break;
  }
}
process.stdout.write(JSON.stringify({ rounds, errors }));
`;

export interface SwapRacer {
  /** Stops the racer (it also stops by itself after its bounds) and says how many swaps it made. */
  stop: () => Promise<{ rounds: number; errors: number }>;
  process: ChildProcess;
  /** True until the racer has stopped (by its bounds or by `stop()`). */
  running: () => boolean;
}

/**
 * Plays a tenant who swaps directory `dir` for a symlink to `target` over and over (each round: the directory moved
 * aside, a link put at its name, then the directory put back). Runs in its own process so it truly races the service;
 * bounded by `maxRounds` and `maxMs`, and stopped by `stop()`.
 *
 * Resolves once the racer has made its first swap: a node process can take a second or more to start on a loaded
 * machine, and work started before that (a few short export jobs) could be over before the racer ever ran, leaving it
 * with no rounds at all by `stop()`. The work a test races must begin only once the racer races.
 */
export async function startSwapRacer(
  dir: string,
  target: string,
  options: { maxRounds?: number; maxMs?: number } = {},
): Promise<SwapRacer> {
  const stopFile = `${dir}.racer-stop-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const child = spawn(
    process.execPath,
    ['-e', RACER, dir, target, stopFile, String(options.maxRounds ?? 1_000_000), String(options.maxMs ?? 30_000)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = once(child, 'exit');
  let running = true;
  void exited.then(() => (running = false));
  await eventually('the swap racer to make its first swap', () => {
    if (output.startsWith('racing\n')) return true;
    if (!running) throw new Error(`the swap racer ended before its first swap: ${output}`);
    return false;
  });
  return {
    process: child,
    running: () => running,
    stop: async () => {
      await writeFile(stopFile, '');
      await exited;
      await rm(stopFile, { force: true });
      // Its last line: the counts (the first is its "racing").
      return JSON.parse(output.trimEnd().split('\n').pop()!) as { rounds: number; errors: number };
    },
  };
}

/**
 * This process's children still alive (pid and command name), read from /proc so that looking spawns nothing: after a
 * job has ended, none of the tools it ran may be left running (a read hung on a FIFO, a walk stuck on a loop).
 */
export async function childProcesses(): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const close = stat.lastIndexOf(')');
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (close > 0 && ppid === process.pid) found.push(`${pid} ${stat.slice(stat.indexOf('(') + 1, close)}`);
  }
  return found;
}
