import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { isAlive, waitUntil } from './drill-support';

/**
 * An sshd of the test's own on a free loopback port, with its own host key and one authorised client key (root may
 * log in with it, nothing else), serving sftp. Killed and restarted at will to play a target that goes away.
 */
export class LoopbackSshd {
  readonly port = 30000 + Math.floor(Math.random() * 20000);
  readonly hostKey: string;
  readonly clientKey: string;
  /** A known_hosts file that trusts this sshd's host key. */
  readonly knownHosts: string;
  private readonly config: string;
  private child: ChildProcess | null = null;

  constructor(readonly dir: string) {
    this.hostKey = join(dir, 'host_ed25519');
    this.clientKey = join(dir, 'client_ed25519');
    this.knownHosts = join(dir, 'known_hosts');
    this.config = join(dir, 'sshd_config');
  }

  /** The sftp URL of `path` (absolute) on this sshd, as root. */
  url(path: string): string {
    return `sftp://root@127.0.0.1:${this.port}/${path}`;
  }

  setUp(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // sshd refuses to start without its privilege-separation directory.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    for (const key of [this.hostKey, this.clientKey]) {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', key]);
    }
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${this.clientKey}.pub`), { mode: 0o600 });
    this.trustHostKey(`${this.hostKey}.pub`);
    writeFileSync(
      this.config,
      [
        `Port ${this.port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${this.hostKey}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        `PidFile ${join(this.dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'Subsystem sftp internal-sftp',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
  }

  /** Writes a known_hosts line for this port with the given public key file. */
  trustHostKey(publicKeyFile: string): void {
    const [type, key] = readFileSync(publicKeyFile, 'utf8').trim().split(/\s+/);
    writeFileSync(this.knownHosts, `[127.0.0.1]:${this.port} ${type} ${key}\n`, { mode: 0o600 });
  }

  async start(): Promise<void> {
    const child = spawn('/usr/sbin/sshd', ['-f', this.config, '-D', '-e'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    this.child = child;
    await waitUntil(`sshd on port ${this.port}`, () => this.accepts(), 20_000, 50);
  }

  /** A target lost without warning: SIGKILL of the listening sshd (sessions already open die with it). */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    this.child = null;
    if (pid === undefined || !isAlive(pid)) return;
    // The children serving open sessions go too: a target host that vanished, not one that stopped listening.
    const sessions = descendantsOf(pid);
    process.kill(pid, 'SIGKILL');
    for (const session of sessions) {
      try {
        process.kill(session, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await waitUntil('sshd to die', () => !isAlive(pid), 10_000);
  }

  get running(): boolean {
    return this.child?.pid !== undefined && isAlive(this.child.pid);
  }

  private accepts(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }
}

/** Every live process below `pid`, from /proc. */
function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}
