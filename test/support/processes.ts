import { readdirSync, readFileSync } from 'node:fs';

/** Live (not zombie) processes whose argv matches, from /proc. */
export function processesWhere(match: (argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.charAt(stat.lastIndexOf(')') + 2) === 'Z') continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length > 0 && match(argv)) pids.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * duplicity runs on `--name <name>`; with `dataDir`, only those whose archive dir is under it (other tests on the
 * machine back up their own `site1`).
 */
export function duplicityRuns(name: string, dataDir?: string): number[] {
  return processesWhere(
    (argv) =>
      argv.some((arg) => arg.endsWith('/duplicity')) &&
      argv[argv.indexOf('--name') + 1] === name &&
      (dataDir === undefined || (argv[argv.indexOf('--archive-dir') + 1] ?? '').startsWith(`${dataDir}/`)),
  );
}

/** mariadb-dump runs of one database. */
export function dumpRuns(database: string): number[] {
  return processesWhere((argv) => /mariadb-dump|mysqldump/.test(argv[0]) && argv.includes(database));
}

/** Alive and not a zombie (a killed child stays in the process table until reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

/** The live children of `pid` (from /proc, Linux' children file of its main thread). */
export function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(' ').map(Number).filter(isAlive);
  } catch {
    return [];
  }
}
