import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from './processes';
import { eventually } from './wait';

const run = promisify(execFile);
const TOOL_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8' };
const SQLITE_SCHEMA = '/usr/share/dbconfig-common/data/bacula-director-sqlite3/install/sqlite3';
const REQUIRED = [
  '/usr/sbin/bacula-dir',
  '/usr/sbin/bacula-sd',
  '/usr/sbin/bacula-fd',
  '/usr/sbin/bconsole',
  '/usr/bin/sqlite3',
  SQLITE_SCHEMA,
];
const PACKAGES = ['bacula-director', 'bacula-director-sqlite3', 'bacula-sd', 'bacula-fd', 'bacula-console', 'sqlite3'];

export type BaculaDaemon = 'dir' | 'sd' | 'fd';

/** A private Bacula 9.6 (director, storage daemon, file daemon) on free loopback ports, with a SQLite catalog. */
export interface BaculaHarness {
  root: string;
  configDir: string;
  /** WorkingDirectory and PidDirectory of all three daemons; the catalog is `bacula.db` here. */
  workDir: string;
  /** Where the File device writes its volumes. */
  storageDir: string;
  bconsoleConfig: string;
  /** The directory the director includes (`@|"sh -c 'for f in DIR/*.conf …'"`): BACULA_INCLUDE_DIR. */
  includeDir: string;
  director: string;
  client: string;
  storage: string;
  pool: string;
  jobDefaults: string;
  ports: Record<BaculaDaemon, number>;
  /** The BACULA_* variables of the configuration contract that point at this installation. */
  env: Record<string, string>;
  /** Runs commands through bconsole directly, the way an operator would, and returns what it printed. */
  bconsole(lines: string[]): Promise<string>;
  stopDaemon(name: BaculaDaemon): Promise<void>;
  startDaemon(name: BaculaDaemon): Promise<void>;
  /** Stops the daemons (by pid) and removes everything. */
  stop(): Promise<void>;
}

export interface BaculaHarnessOptions {
  /** Parent directory of the harness's files; a fresh temporary directory by default. */
  root?: string;
  /** FD Connect Timeout and SD Connect Timeout of the director, in seconds. */
  connectTimeoutSeconds?: number;
  /** Maximum Volume Jobs of the pool: 1 gives every job its own volume, so removing a job can empty one. */
  maximumVolumeJobs?: number;
}

/** Installs Bacula when it is missing (Debian packages), then writes a configuration and starts the three daemons. */
export async function startBacula(options: BaculaHarnessOptions = {}): Promise<BaculaHarness> {
  await ensureInstalled();
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'bacula-harness-'));
  const configDir = join(root, 'conf');
  const workDir = join(root, 'work');
  const storageDir = join(root, 'storage');
  const includeDir = join(root, 'include.d');
  for (const dir of [configDir, workDir, storageDir, includeDir]) await mkdir(dir, { recursive: true, mode: 0o750 });
  const [dirPort, fdPort, sdPort] = await freePorts(3);
  const ports: Record<BaculaDaemon, number> = { dir: dirPort, fd: fdPort, sd: sdPort };
  const names = {
    director: 'harness-dir',
    client: 'harness-fd',
    storage: 'harness-file',
    pool: 'harness-pool',
    jobDefaults: 'apiscp-backup-api-defaults',
  };
  const passwords = { console: randomWord(), fd: randomWord(), sd: randomWord() };
  // Not shorter: the director's connect to a running daemon, handshake included, is under this timer too, and on a
  // loaded machine 5 s was seen to run out ("Unable to connect to Storage daemon ... Interrupted system call").
  const timeout = options.connectTimeoutSeconds ?? 30;

  const files: Record<BaculaDaemon | 'console', string> = {
    dir: join(configDir, 'bacula-dir.conf'),
    sd: join(configDir, 'bacula-sd.conf'),
    fd: join(configDir, 'bacula-fd.conf'),
    console: join(configDir, 'bconsole.conf'),
  };
  await writeFile(
    files.dir,
    `Director {
  Name = ${names.director}
  DIRport = ${dirPort}
  DirAddress = 127.0.0.1
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = "${workDir}"
  PidDirectory = "${workDir}"
  Maximum Concurrent Jobs = 20
  Password = "${passwords.console}"
  Messages = Daemon
  FD Connect Timeout = ${timeout} sec
  SD Connect Timeout = ${timeout} sec
}
Catalog {
  Name = HarnessCatalog
  dbname = "bacula"; dbuser = ""; dbpassword = ""
}
Client {
  Name = ${names.client}
  Address = 127.0.0.1
  FDPort = ${fdPort}
  Catalog = HarnessCatalog
  Password = "${passwords.fd}"
  Maximum Concurrent Jobs = 10
  File Retention = 60 days
  Job Retention = 6 months
  AutoPrune = no
}
Storage {
  Name = ${names.storage}
  Address = 127.0.0.1
  SDPort = ${sdPort}
  Password = "${passwords.sd}"
  Device = HarnessFileDevice
  Media Type = File
  Maximum Concurrent Jobs = 10
}
Pool {
  Name = ${names.pool}
  Pool Type = Backup
  Recycle = yes
  AutoPrune = no
  Volume Retention = 365 days
  Maximum Volume Bytes = 5G
  Maximum Volumes = 100
  Label Format = "Vol-"${options.maximumVolumeJobs ? `\n  Maximum Volume Jobs = ${options.maximumVolumeJobs}\n  Action On Purge = Truncate` : ''}
}
Pool {
  Name = Scratch
  Pool Type = Backup
}
Messages {
  Name = Standard
  console = all, !skipped, !saved
  catalog = all, !skipped, !saved
  append = "${workDir}/bacula.log" = all, !skipped
}
Messages {
  Name = Daemon
  console = all, !skipped, !saved
  append = "${workDir}/bacula.log" = all, !skipped
}
# What the per-site Jobs written by apiscp-backup-api refer to (BACULA_JOB_DEFAULTS).
JobDefs {
  Name = ${names.jobDefaults}
  Type = Backup
  Client = ${names.client}
  Storage = ${names.storage}
  Pool = ${names.pool}
  Messages = Standard
  Accurate = yes
  Priority = 10
  Write Bootstrap = "${workDir}/%n.bsr"
}
# Like a stock director: a Restore job of its own, which the provider must not pick by accident.
Job {
  Name = RestoreFiles
  Type = Restore
  Client = ${names.client}
  Storage = ${names.storage}
  FileSet = "Placeholder Set"
  Pool = ${names.pool}
  Messages = Standard
  Where = ${root}/restores-of-RestoreFiles
}
FileSet {
  Name = "Placeholder Set"
  Include {
    File = /nonexistent
  }
}
@|"sh -c 'for f in ${includeDir}/*.conf ; do test -f $f && echo @$f ; done ; true'"
`,
    { mode: 0o640 },
  );
  await writeFile(
    files.sd,
    `Storage {
  Name = harness-sd
  SDPort = ${sdPort}
  SDAddress = 127.0.0.1
  WorkingDirectory = "${workDir}"
  Pid Directory = "${workDir}"
  Maximum Concurrent Jobs = 20
}
Director {
  Name = ${names.director}
  Password = "${passwords.sd}"
}
Device {
  Name = HarnessFileDevice
  Media Type = File
  Archive Device = ${storageDir}
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
  Maximum Concurrent Jobs = 10
}
Messages {
  Name = Standard
  director = ${names.director} = all
}
`,
    { mode: 0o640 },
  );
  await writeFile(
    files.fd,
    `Director {
  Name = ${names.director}
  Password = "${passwords.fd}"
}
FileDaemon {
  Name = ${names.client}
  FDport = ${fdPort}
  FDAddress = 127.0.0.1
  WorkingDirectory = "${workDir}"
  Pid Directory = "${workDir}"
  Maximum Concurrent Jobs = 20
}
Messages {
  Name = Standard
  director = ${names.director} = all, !skipped, !restored
}
`,
    { mode: 0o640 },
  );
  await writeFile(
    files.console,
    `Director {
  Name = ${names.director}
  DIRport = ${dirPort}
  address = 127.0.0.1
  Password = "${passwords.console}"
}
`,
    { mode: 0o640 },
  );

  const schema = await readFile(SQLITE_SCHEMA, 'utf8');
  await feed('sqlite3', [join(workDir, 'bacula.db')], schema);
  for (const daemon of ['dir', 'sd', 'fd'] as const)
    await run(`bacula-${daemon}`, ['-t', '-c', files[daemon]], { env: TOOL_ENV });

  const pidFile = (daemon: BaculaDaemon): string => join(workDir, `bacula-${daemon}.${ports[daemon]}.pid`);
  const startDaemon = async (daemon: BaculaDaemon): Promise<void> => {
    await run(`bacula-${daemon}`, ['-c', files[daemon]], { env: TOOL_ENV });
    await waitFor(() => portOpen(ports[daemon]), `bacula-${daemon} to listen on ${ports[daemon]}`);
  };
  const stopDaemon = async (daemon: BaculaDaemon): Promise<void> => {
    const pid = Number((await readFile(pidFile(daemon), 'utf8').catch(() => '')).trim());
    if (!pid) return;
    signal(pid, 'SIGTERM');
    const gone = await waitFor(
      () => Promise.resolve(!isAlive(pid)), // not a zombie either: pid 1 of a container may not reap it
      `bacula-${daemon} (pid ${pid}) to exit`,
      10_000,
    ).then(
      () => true,
      () => false,
    );
    if (!gone) signal(pid, 'SIGKILL');
    await waitFor(async () => !(await portOpen(ports[daemon])), `port ${ports[daemon]} to close`);
  };
  const bconsole = (lines: string[]): Promise<string> =>
    feed('bconsole', ['-n', '-c', files.console], `${lines.join('\n')}\n`);

  for (const daemon of ['sd', 'fd', 'dir'] as const) await startDaemon(daemon);
  await waitFor(async () => /Version: 9\./.test(await bconsole(['version'])), 'bconsole to answer');

  return {
    root,
    configDir,
    workDir,
    storageDir,
    bconsoleConfig: files.console,
    includeDir,
    ...names,
    ports,
    env: {
      BACULA_BCONSOLE_CONFIG: files.console,
      BACULA_INCLUDE_DIR: includeDir,
      BACULA_CLIENT: names.client,
      BACULA_STORAGE: names.storage,
      BACULA_POOL: names.pool,
      BACULA_JOB_DEFAULTS: names.jobDefaults,
    },
    bconsole,
    stopDaemon,
    startDaemon,
    stop: async () => {
      for (const daemon of ['dir', 'fd', 'sd'] as const) await stopDaemon(daemon);
      if (!options.root) await rm(root, { recursive: true, force: true });
    },
  };
}

async function ensureInstalled(): Promise<void> {
  if (REQUIRED.every((file) => existsSync(file))) return;
  await run('apt-get', ['install', '-y', ...PACKAGES], {
    env: { ...TOOL_ENV, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const missing = REQUIRED.filter((file) => !existsSync(file));
  if (missing.length > 0) throw new Error(`Bacula is still missing after apt-get install: ${missing.join(', ')}`);
}

/** Runs a tool with `input` on stdin and returns stdout and stderr together. */
function feed(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: TOOL_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.once('error', reject);
    child.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    child.stdin.end(input);
  });
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Daemons start and stop slowly on a loaded machine: the default bound is generous (it only bounds a failure). */
async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  await eventually(what, check, { timeoutMs, intervalMs: 100 });
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function randomWord(): string {
  return Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}
