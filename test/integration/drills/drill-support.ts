import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { JobBody } from '../../support/jobs';
import { dumpRuns, duplicityRuns, isAlive, processesWhere } from '../../support/processes';
import { waitForServiceJob, type ServiceProcess } from '../../support/service-process';
import { eventually } from '../../support/wait';

export { dumpRuns, duplicityRuns, isAlive, processesWhere, waitForServiceJob };

const run = promisify(execFile);

/** The built service, found from the compiled test the way startServiceProcess finds it. */
export const SERVICE_MAIN = join(__dirname, '..', '..', '..', '..', 'dist', 'main.js');

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value (test/support/wait's `eventually`, in the drills' argument order). */
export function waitUntil<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  return eventually(what, check, { timeoutMs, intervalMs });
}

/** The environment a drill's service process needs besides its own variables (node_modules outside the repo). */
export function processEnv(env: Record<string, string>): Record<string, string> {
  return { ...(process.env.NODE_PATH ? { NODE_PATH: process.env.NODE_PATH } : {}), LOG_LEVEL: 'info', ...env };
}

/** Starts a job through a service process and waits for it to end. */
export async function runServiceJob(service: ServiceProcess, path: string, body: object): Promise<JobBody> {
  const res = await service.call('POST', path, body);
  if (res.status !== 202) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return waitForServiceJob(service, res.body.id as string);
}

/** Writes `megabytes` of random (incompressible) bytes to `path`. */
export function randomFile(path: string, megabytes: number): void {
  execFileSync('sh', ['-c', 'head -c "$1" /dev/urandom > "$2"', 'sh', `${megabytes}M`, path]);
}

export async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The service run to its exit (a start that must fail): exit code, everything it printed, how long it took. */
export function runServiceToExit(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
  // Never listened on: the start must fail before it binds.
  const port = String(10000 + Math.floor(Math.random() * 22000));
  const child = spawn(process.execPath, [SERVICE_MAIN], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: port, NODE_ENV: 'production', ...processEnv(env) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - started });
    });
  });
}

/** A tmpfs mounted for one drill; `unmount` is safe to call twice and falls back to a lazy unmount. */
export class TmpfsMount {
  private mounted = false;

  constructor(readonly dir: string) {}

  async mount(sizeMb: number): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', this.dir]);
    this.mounted = true;
  }

  /** `ro`, `rw`, `size=64m`: applied with `mount -o remount,...`. */
  async remount(options: string): Promise<void> {
    await run('mount', ['-o', `remount,${options}`, this.dir]);
  }

  async unmount(): Promise<void> {
    if (!this.mounted) return;
    try {
      await run('umount', [this.dir]);
    } catch {
      await run('umount', ['-l', this.dir]);
    }
    this.mounted = false;
  }
}

/**
 * A MariaDB server of the drill's own (datadir, port and socket under `root`, a directory of its own under /tmp that
 * mysql can reach), so stopping it mid-export disturbs no other test using the machine's server. Same binary and
 * version as the machine's.
 */
export class PrivateMariadb {
  // Below the ephemeral range (32768+), so no outgoing connection can hold it.
  readonly port = 10000 + Math.floor(Math.random() * 22000);
  readonly dataDir: string;
  readonly socket: string;
  private pid: number | null = null;

  constructor(readonly root: string) {
    this.dataDir = join(root, 'data');
    this.socket = join(root, 'mysqld.sock');
  }

  /** MYSQL_* for the service. */
  get env(): Record<string, string> {
    return { MYSQL_HOST: '127.0.0.1', MYSQL_PORT: String(this.port), MYSQL_USER: 'root' };
  }

  get label(): string {
    return `127.0.0.1:${this.port}`;
  }

  async install(): Promise<void> {
    // The server runs as mysql: its directory (directly under /tmp) must be its own.
    mkdirSync(this.root, { recursive: true });
    execFileSync('chown', ['mysql:mysql', this.root]);
    execFileSync('chmod', ['0750', this.root]);
    await run('mariadb-install-db', [
      '--no-defaults',
      `--datadir=${this.dataDir}`,
      '--user=mysql',
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ]);
  }

  async start(): Promise<void> {
    const child = spawn(
      '/usr/sbin/mariadbd',
      [
        '--no-defaults',
        `--datadir=${this.dataDir}`,
        '--user=mysql',
        `--socket=${this.socket}`,
        `--port=${this.port}`,
        '--bind-address=127.0.0.1',
        '--skip-name-resolve',
        `--pid-file=${join(this.root, 'mysqld.pid')}`,
        `--log-error=${join(this.root, 'error.log')}`,
        '--innodb-buffer-pool-size=256M',
      ],
      { stdio: 'ignore', detached: true },
    );
    child.unref();
    this.pid = child.pid ?? null;
    await waitUntil(`the private MariaDB on port ${this.port}`, () => this.answers(), 60_000, 100);
  }

  /** The server's pid while it runs. */
  get serverPid(): number | null {
    return this.pid !== null && isAlive(this.pid) ? this.pid : null;
  }

  /** A crash: SIGKILL, no shutdown. */
  async kill(): Promise<void> {
    const pid = this.serverPid;
    if (pid === null) return;
    process.kill(pid, 'SIGKILL');
    await waitUntil('the private MariaDB to die', () => !isAlive(pid), 10_000);
  }

  /** A clean shutdown (SIGTERM), SIGKILL after 30 s; then the files go. */
  async destroy(): Promise<void> {
    const pid = this.serverPid;
    if (pid !== null) {
      process.kill(pid, 'SIGTERM');
      await waitUntil('the private MariaDB to stop', () => !isAlive(pid), 30_000, 100).catch(() =>
        process.kill(pid, 'SIGKILL'),
      );
    }
    execFileSync('rm', ['-rf', this.root]);
  }

  async sql(statement: string, database?: string): Promise<string> {
    const { stdout } = await run(
      'mariadb',
      [
        '--protocol=TCP',
        '--host=127.0.0.1',
        `--port=${this.port}`,
        '--user=root',
        '--batch',
        '--skip-column-names',
        ...(database ? [database] : []),
        `--execute=${statement}`,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
  }

  async answers(): Promise<boolean> {
    return this.sql('SELECT 1').then(
      () => true,
      () => false,
    );
  }

  /** Like seedBigMysql in test/support/databases.ts: about `megabytes` of dump text in table `big`. */
  async seedBig(database: string, megabytes: number): Promise<void> {
    const rows = Math.ceil((megabytes * 1024 * 1024) / 230);
    await this.sql(`CREATE DATABASE \`${database}\``);
    await this.sql(
      `CREATE TABLE big (id BIGINT PRIMARY KEY, a INT NOT NULL, b CHAR(32) NOT NULL, c VARCHAR(255) NOT NULL,
         d DOUBLE NOT NULL, e DATETIME NOT NULL) ENGINE=InnoDB`,
      database,
    );
    for (let first = 1; first <= rows; first += 250_000) {
      const last = Math.min(rows, first + 249_999);
      await this.sql(
        `INSERT INTO big SELECT seq, seq % 100000, MD5(seq), CONCAT('order ', seq, ' for customer ', seq % 977,
           ' ref ', LEFT(SHA2(seq, 256), 40)), seq / 7, TIMESTAMP('2020-01-01') + INTERVAL seq SECOND
         FROM seq_${first}_to_${last}`,
        database,
      );
    }
  }
}

/** Files in `dir` (none when it does not exist). */
export function filesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** A site tree of small files, with one file whose content the drills compare after restores. */
export function smallSite(virtualRoot: string, n: number, marker: string): string {
  const root = join(virtualRoot, `site${n}`);
  mkdirSync(join(root, 'shadow', 'var', 'www', 'html'), { recursive: true });
  mkdirSync(join(root, 'info', 'current'), { recursive: true });
  writeFileSync(join(root, 'shadow', 'var', 'www', 'html', 'index.html'), `<h1>${marker}</h1>\n`);
  for (let i = 0; i < 20; i++) writeFileSync(join(root, 'shadow', 'var', 'www', 'html', `page${i}.html`), `${i}\n`);
  return root;
}
