import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { timeCommand, warmPageCache } from './support';

export type DeduplicatingEngine = 'restic' | 'borg';

function initRepository(engine: DeduplicatingEngine, path: string, env: Record<string, string>): void {
  const args = engine === 'restic' ? ['init', '--repo', path] : ['init', '--encryption', 'repokey-blake2', path];
  execFileSync(engine, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
}

/** The hand side of a restic or borg comparison; each timed command resolves with its wall time in ms. */
export interface DeduplicatingByHand {
  /** Where the hand side's snapshots or archives go (for borg: the site's own repository). */
  repository: string;
  /** Creates `repository`, untimed (neither side pays for `init`). */
  init(): void;
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
    init: () => initRepository(engine, repository, env),
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

/** A round's two sides: the hand side, and the service's repository with the environment that points it there. */
export interface DeduplicatingRound {
  hand: DeduplicatingByHand;
  /** The service's repository (restic) or repository root (borg, which keeps one repository per site below it). */
  apiRepository: string;
  serviceEnv: Record<string, string>;
  /**
   * Run before every backup, by hand or through the API, untimed: borg evicts the site from the page cache as it reads
   * it, so the site is read first and both sides start alike (nothing to do for restic).
   */
  beforeBackup: () => Promise<void>;
}

/**
 * New, empty repositories for both sides under `dir`, made before any clock starts (so neither side pays for
 * `init`), with the same password: "full" is then always a first backup, on both sides. borg's repository is made
 * with each side's own state directory, as the side itself would make it: borg keeps a cache and a security record
 * per repository there, which a first backup into a repository made by someone else has to build first. restic's
 * service side is a copy of the hand side's (see below).
 */
export function deduplicatingRound(
  engine: DeduplicatingEngine,
  options: { dir: string; site: string; password: string; serviceDataDir: string },
): DeduplicatingRound {
  const { dir, site, password, serviceDataDir } = options;
  const hand = deduplicatingByHand(engine, { home: dir, repository: join(dir, 'hand-repository'), site, password });
  hand.init();
  const apiRepository = join(dir, 'api-repository');
  // Where the providers keep their state under DATA_DIR (restic.provider.ts, borg.provider.ts).
  const state = join(serviceDataDir, engine);
  mkdirSync(state, { recursive: true, mode: 0o700 });
  if (engine === 'restic') {
    // A copy of the hand side's repository, not a second `init`: init calibrates the key derivation (scrypt's N, r,
    // p) to the machine's speed at that moment, and every restic command pays it once. Two inits here gave p = 4 and
    // 6, 0.30 against 0.51 s of CPU per command: a confounder as large as the gaps the bench measures. A copy has the
    // same key; restic's caches are per side (HOME, RESTIC_CACHE_DIR), so the shared repository id changes nothing.
    cpSync(hand.repository, apiRepository, { recursive: true, preserveTimestamps: true });
    return {
      hand,
      apiRepository,
      serviceEnv: { RESTIC_REPOSITORY: apiRepository, RESTIC_PASSWORD_FILE: password },
      beforeBackup: () => Promise.resolve(),
    };
  }
  mkdirSync(apiRepository);
  initRepository(engine, join(apiRepository, 'site1'), {
    HOME: state,
    BORG_BASE_DIR: state,
    BORG_PASSCOMMAND: `cat ${password}`,
  });
  return {
    hand,
    apiRepository,
    serviceEnv: { BORG_REPOSITORY_ROOT: apiRepository, BORG_PASSPHRASE_FILE: password },
    beforeBackup: () => warmPageCache(site),
  };
}
