import { Injectable, OnModuleInit } from '@nestjs/common';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { ExportError } from './export-error';
import { ENGINE_LABEL, type DatabaseEngine } from './export.model';

/** How to reach one server with its command-line clients: arguments, environment, and what to redact. */
export interface ClientConnection {
  /** Connection options, to put before anything else on the command line (`--defaults-extra-file` must be first). */
  args: string[];
  env: Record<string, string>;
  secrets: string[];
  /** `MariaDB at 127.0.0.1:3306`, for error messages. */
  label: string;
}

/**
 * Builds the connection options of `mariadb`/`mariadb-dump` and `psql`/`pg_dump` from the configuration. Passwords are
 * read from their files and never reach argv: MariaDB's goes into an option file (0600, in a 0700 directory under
 * DATA_DIR/private, removed afterwards and, should the service be killed first, at the next start), PostgreSQL's into
 * PGPASSWORD.
 */
@Injectable()
export class DatabaseConnections implements OnModuleInit {
  constructor(private readonly config: AppConfig) {}

  /** The private directory for credential files; start-up empties it (a killed export leaves its option file). */
  get credentialsDir(): string {
    return this.config.dataPath('private');
  }

  async onModuleInit(): Promise<void> {
    await rm(this.credentialsDir, { recursive: true, force: true });
    await mkdir(this.credentialsDir, { recursive: true, mode: 0o700 });
  }

  label(engine: DatabaseEngine): string {
    if (engine === 'mysql') {
      const { socket, host, port } = this.config.mysql;
      return `${ENGINE_LABEL.mysql} at ${socket ?? (host === 'localhost' ? 'localhost (default socket)' : `${host}:${port}`)}`;
    }
    const { host, port } = this.config.pgsql;
    return `${ENGINE_LABEL.pgsql} at ${host.startsWith('/') ? `${host}/.s.PGSQL.${port}` : `${host}:${port}`}`;
  }

  /** Runs `work` with the connection; whatever it needed on disk is gone when it settles. */
  async with<T>(engine: DatabaseEngine, work: (connection: ClientConnection) => Promise<T>): Promise<T> {
    return engine === 'mysql' ? this.withMysql(work) : work(await this.pgsql());
  }

  private async withMysql<T>(work: (connection: ClientConnection) => Promise<T>): Promise<T> {
    const { host, port, socket, user, passwordFile } = this.config.mysql;
    const args: string[] = [];
    const secrets: string[] = [];
    let dir: string | undefined;
    try {
      if (passwordFile) {
        const password = await readPassword(passwordFile, 'mysql');
        secrets.push(password);
        await mkdir(this.credentialsDir, { recursive: true, mode: 0o700 });
        dir = await mkdtemp(join(this.credentialsDir, 'mysql-')); // 0700
        const optionFile = join(dir, 'client.cnf');
        await writeFile(optionFile, `[client]\npassword="${password.replace(/[\\"]/g, (c) => `\\${c}`)}"\n`, {
          mode: 0o600,
          flag: 'wx',
        });
        args.push(`--defaults-extra-file=${optionFile}`);
      }
      // The clients' default follows the locale, which the runner pins to C.UTF-8; say it anyway.
      args.push(`--user=${user}`, '--default-character-set=utf8mb4');
      if (socket) args.push('--protocol=SOCKET', `--socket=${socket}`);
      else if (host === 'localhost') args.push('--host=localhost');
      else args.push('--protocol=TCP', `--host=${host}`, `--port=${port}`);
      return await work({ args, env: {}, secrets, label: this.label('mysql') });
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  private async pgsql(): Promise<ClientConnection> {
    const { host, port, user, passwordFile } = this.config.pgsql;
    const env: Record<string, string> = { PGCONNECT_TIMEOUT: '15', PGAPPNAME: 'apiscp-backup-api' };
    const secrets: string[] = [];
    if (passwordFile) {
      env.PGPASSWORD = await readPassword(passwordFile, 'pgsql');
      secrets.push(env.PGPASSWORD);
    }
    return {
      args: [`--host=${host}`, `--port=${port}`, `--username=${user}`, '--no-password'],
      env,
      secrets,
      label: this.label('pgsql'),
    };
  }
}

async function readPassword(file: string, engine: DatabaseEngine): Promise<string> {
  try {
    // One trailing newline is the file's, not the password's.
    return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (error) {
    throw new ExportError(
      'server-unreachable',
      `cannot read the ${ENGINE_LABEL[engine]} password file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}
