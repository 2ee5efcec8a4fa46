import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liveProcesses, type LiveProcess } from '../common/process/process-tag';

/**
 * What tells a process apart from a later one that got the same pid: its start time (in clock ticks since boot,
 * field 22 of /proc/<pid>/stat) and the boot it started in. A pid stored before a reboot, or reused since, matches
 * neither, so recovery never kills a stranger.
 */
export interface ProcessIdentity {
  pid: number;
  startTicks: string;
  bootId: string;
}

export function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

function statFields(pid: number): string[] {
  const stat = readFileSync(join('/proc', String(pid), 'stat'), 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: field 3 (state) is index 0.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The identity of a running process, or undefined when it is gone. */
export function identityOf(pid: number): ProcessIdentity | undefined {
  try {
    return { pid, startTicks: statFields(pid)[19], bootId: bootId() };
  } catch {
    return undefined;
  }
}

/** Whether `pid` still leads its own process group (our children are spawned as group leaders). */
export function leadsGroup(pid: number): boolean {
  try {
    return Number(statFields(pid)[2]) === pid;
  } catch {
    return false;
  }
}

/** Where a job's process identity is kept (DATA_DIR/pids/<jobId>.json): beside the catalog's pid column. */
export class ProcessIdentityStore {
  constructor(private readonly dir: string) {}

  save(jobId: string, pid: number): void {
    const identity = identityOf(pid);
    if (!identity) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.dir, `${jobId}.json`), JSON.stringify(identity), { mode: 0o600 });
  }

  load(jobId: string): ProcessIdentity | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, `${jobId}.json`), 'utf8')) as ProcessIdentity;
    } catch {
      return undefined;
    }
  }

  forget(jobId: string): void {
    rmSync(join(this.dir, `${jobId}.json`), { force: true });
  }
}

/**
 * Kills the process group a previous run of the service left, only if `pid` is still that very process: same start
 * time, same boot, still a group leader. Returns whether it signalled.
 */
export function killIfSameProcess(pid: number, stored: ProcessIdentity | undefined): boolean {
  if (!stored || stored.pid !== pid) return false;
  const now = identityOf(pid);
  if (!now || now.startTicks !== stored.startTicks || now.bootId !== stored.bootId || !leadsGroup(pid)) return false;
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops what a dead run of job `jobId` left: the process group it stored (only while `pid` is still that very
 * process) and every process tagged with the job's id, then waits until all of them are gone (zombies aside), so
 * that no dying child still writes where the job's cleanup is about to remove things. Returns what did not exit.
 */
export async function stopLeftProcesses(
  jobId: string,
  pid: number | null,
  stored: ProcessIdentity | undefined,
  timeoutMs = 15_000,
): Promise<{ killed: number; stillAlive: number[] }> {
  const group = pid !== null && killIfSameProcess(pid, stored) ? pid : undefined;
  const isLeft = (candidate: LiveProcess): boolean =>
    candidate.tag === jobId || (group !== undefined && candidate.pgrp === group);
  const signalled = new Set<number>(group !== undefined ? [group] : []);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = liveProcesses().filter(isLeft);
    if (left.length === 0) return { killed: signalled.size, stillAlive: [] };
    if (Date.now() >= deadline) return { killed: signalled.size, stillAlive: left.map((found) => found.pid) };
    for (const found of left) {
      try {
        process.kill(found.pid, 'SIGKILL');
        signalled.add(found.pid);
      } catch {
        // exited meanwhile
      }
    }
    // A SIGKILLed process still in uninterruptible I/O exits when that I/O ends.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
