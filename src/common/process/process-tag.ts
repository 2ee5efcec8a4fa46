import { AsyncLocalStorage } from 'node:async_hooks';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Every child started while a job runs carries the job's id in its environment, and so does everything it starts in
 * turn. A restarted service finds what a killed run left by that mark, even a child spawned in the instant before
 * its pid was recorded, or one that left the process group it was started in.
 */
export const PROCESS_TAG_ENV = 'APISCP_BACKUP_JOB';

const scope = new AsyncLocalStorage<string>();

/** Runs `work` so that every child the process runner starts inside it is tagged with `tag`. */
export function runTagged<T>(tag: string, work: () => T): T {
  return scope.run(tag, work);
}

/** The tag of the job whose code is running now, if any. */
export function currentProcessTag(): string | undefined {
  return scope.getStore();
}

export interface LiveProcess {
  pid: number;
  /** Its process group. */
  pgrp: number;
  tag: string | undefined;
}

/** Live (not zombie) processes from /proc with their group and tag; this process is left out. */
export function liveProcesses(): LiveProcess[] {
  const found: LiveProcess[] = [];
  const marker = Buffer.from(`${PROCESS_TAG_ENV}=`);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces and parentheses): state, ppid, pgrp, ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') continue;
      const environ = readFileSync(`/proc/${name}/environ`);
      const at = environ.indexOf(marker);
      let tag: string | undefined;
      if (at === 0 || (at > 0 && environ[at - 1] === 0)) {
        const end = environ.indexOf(0, at);
        tag = environ.subarray(at + marker.length, end < 0 ? environ.length : end).toString('utf8');
      }
      found.push({ pid: Number(name), pgrp: Number(fields[2]), tag });
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return found;
}
