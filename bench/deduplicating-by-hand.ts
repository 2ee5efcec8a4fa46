import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { timeCommand } from './support';

export type DeduplicatingEngine = 'restic' | 'borg';

/** The hand side of a restic or borg comparison; each timed command resolves with its wall time in ms. */
export interface DeduplicatingByHand {
  /** Where the hand side's snapshots or archives go (for borg: the site's own repository). */
  repository: string;
  /** Creates a repository, untimed (neither side pays for `init`); the API side's too, with the same password. */
  init(path: string): void;
  /** A snapshot or archive of the site, as the provider makes it. */
  backup(): Promise<number>;
  /** Restores the newest backup into `dest` (created first), or only `file` (an absolute path) of it. */
  restore(dest: string, file?: string): Promise<number>;
}

/**
 * restic and borg by hand, as their providers run them (issue 17): a snapshot or archive of the site's `shadow` and
 * `info` without `shadow/var/lib`, and restores of the newest one, at the service's niceness (`timeCommand`). `home`
 * holds the tools' caches and state, apart from the service's.
 */
export function deduplicatingByHand(
  engine: DeduplicatingEngine,
  options: { home: string; repository: string; site: string; password: string },
): DeduplicatingByHand {
  const { home, repository, site, password } = options;
  const env: Record<string, string> =
    engine === 'restic'
      ? { HOME: home, RESTIC_CACHE_DIR: join(home, 'hand-cache'), RESTIC_PASSWORD_FILE: password }
      : { HOME: home, BORG_BASE_DIR: join(home, 'hand-borg'), BORG_PASSCOMMAND: `cat ${password}`, TZ: 'UTC' };
  const paths = [join(site, 'shadow'), join(site, 'info')];
  const excluded = join(site, 'shadow', 'var', 'lib');
  let archives = 0;
  return {
    repository,
    init: (path) => {
      const args = engine === 'restic' ? ['init', '--repo', path] : ['init', '--encryption', 'repokey-blake2', path];
      execFileSync(engine, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    },
    backup: () =>
      engine === 'restic'
        ? timeCommand(
            'restic',
            ['backup', '--json', '--repo', repository, '--host', 'site1', '--exclude', excluded, ...paths],
            env,
          )
        : timeCommand(
            'borg',
            ['create', '--log-json', '--progress', '--json', '--numeric-ids', '--compression', 'lz4']
              .concat(['--exclude', `pp:${excluded}`, `${repository}::hand${++archives}`])
              .concat(paths),
            env,
          ),
    restore: (dest, file) => {
      mkdirSync(dest, { recursive: true });
      if (engine === 'restic') {
        const only = file ? ['--include', file] : [];
        return timeCommand('restic', ['restore', 'latest', '--repo', repository, '--target', dest, ...only], env);
      }
      // borg extracts into the working directory, paths without their leading slash.
      const script = 'cd "$1" && shift && exec borg extract --numeric-ids "$@"';
      const only = file ? [file.slice(1)] : [];
      return timeCommand('sh', ['-c', script, 'sh', dest, `${repository}::hand${archives}`, ...only], env);
    },
  };
}
