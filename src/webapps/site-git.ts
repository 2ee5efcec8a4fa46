import { Injectable } from '@nestjs/common';
import { ProcessRunner, type RunResult } from '../common/process/process-runner';
import { JobFailure } from '../jobs/job-failure';

/** Where git works: the repository (bare, outside the docroot), the app's files, and whose uid runs it. */
export interface GitTarget {
  gitDir: string;
  workTree: string;
  uid: number;
  gid: number;
}

export interface GitRun {
  args: string[];
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Another index file (a scratch one for diffs), relative to nothing: an absolute path inside gitDir. */
  indexFile?: string;
  /** Exit codes that are not a failure (git diff --quiet). */
  okExitCodes?: number[];
  /** The job records each child, so a restart after a crash can kill the one left running. */
  onSpawn?: (pid: number) => void;
}

const DEFAULT_TIMEOUT_MS = 15 * 60_000;

/**
 * The one door to git. git never runs as root here: every run drops to the app owner's uid and gid with `setpriv`
 * (no supplementary groups, no capabilities, no new privileges), in an environment holding nothing of the service's,
 * with system and global configuration off and hooks and fsmonitor disabled on the command line. A config file,
 * hook or `core.fsmonitor` a tenant writes into the repository or the tree then runs (if at all) as that tenant, who
 * could run it anyway; it can never run as root.
 */
@Injectable()
export class SiteGit {
  constructor(private readonly runner: ProcessRunner) {}

  argsOf(target: GitTarget, args: readonly string[]): string[] {
    if (target.uid === 0 || target.gid === 0) {
      throw new JobFailure('unsafe-owner', 'refusing to run git as root: the app’s directory is owned by root');
    }
    return [
      `--reuid=${target.uid}`,
      `--regid=${target.gid}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--no-new-privs',
      '--',
      'git',
      '-c',
      'core.hooksPath=/dev/null',
      '-c',
      'core.fsmonitor=false',
      '-c',
      'core.untrackedCache=false',
      '-c',
      'core.autocrlf=false',
      '-c',
      'core.symlinks=true',
      '-c',
      'core.quotePath=false',
      '-c',
      'gc.auto=0',
      '-c',
      'commit.gpgSign=false',
      '-c',
      'user.name=apiscp-backup-api',
      '-c',
      'user.email=webapps@apiscp-backup-api.invalid',
      ...args,
    ];
  }

  /** Runs another tool (find, chmod, rm) the same way: as the owner, in the work tree, with nothing of root's. */
  async runAsOwner(
    target: GitTarget,
    command: 'find' | 'chmod' | 'rm',
    args: string[],
    signal?: AbortSignal,
    onSpawn?: (pid: number) => void,
  ): Promise<RunResult> {
    if (target.uid === 0 || target.gid === 0) {
      throw new JobFailure('unsafe-owner', `refusing to run ${command} as root: the app’s directory is owned by root`);
    }
    const result = await this.runner.run({
      command: 'setpriv',
      args: [
        `--reuid=${target.uid}`,
        `--regid=${target.gid}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--no-new-privs',
        '--',
        command,
        ...args,
      ],
      env: { HOME: '/nonexistent' },
      cwd: target.workTree,
      signal,
      onSpawn,
      timeoutMs: DEFAULT_TIMEOUT_MS,
      captureStdout: true,
    });
    if (result.cancelled) throw new JobFailure('cancelled', `${command} was cancelled`);
    if (result.exitCode !== 0) {
      const tail = result.stderrTail.split('\n').filter(Boolean).slice(-4).join(' | ');
      throw new JobFailure('files-failed', `${command} failed (exit ${result.exitCode}): ${tail}`);
    }
    return result;
  }

  async run(target: GitTarget, request: GitRun): Promise<RunResult> {
    const env: Record<string, string> = {
      HOME: '/nonexistent',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_DIR: target.gitDir,
      GIT_WORK_TREE: target.workTree,
      GIT_TERMINAL_PROMPT: '0',
      GIT_OPTIONAL_LOCKS: '0',
    };
    if (request.indexFile) env.GIT_INDEX_FILE = request.indexFile;
    const result = await this.runner.run({
      command: 'setpriv',
      args: this.argsOf(target, request.args),
      env,
      cwd: target.workTree,
      signal: request.signal,
      onSpawn: request.onSpawn,
      timeoutMs: request.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      captureStdout: true,
    });
    if (result.cancelled) throw new JobFailure('cancelled', `git ${request.args[0]} was cancelled`);
    const ok = [0, ...(request.okExitCodes ?? [])];
    if (result.exitCode === null || !ok.includes(result.exitCode)) {
      const tail = result.stderrTail.split('\n').filter(Boolean).slice(-4).join(' | ');
      throw new JobFailure(
        'git-failed',
        `git ${request.args[0]} failed (${result.timedOut ? 'timed out' : `exit ${result.exitCode}`}): ${tail}`,
      );
    }
    return result;
  }
}
