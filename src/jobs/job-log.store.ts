import { Injectable } from '@nestjs/common';
import { createReadStream, createWriteStream, mkdirSync, statSync, type ReadStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { redactUrlCredentials } from '../common/process/redact';
import { AppConfig } from '../config/app-config';

/** Past this a job log keeps only a note: a tool that prints per file must not fill the disk. */
const MAX_LOG_BYTES = 16 * 1024 * 1024;

export interface JobLogWriter {
  write(line: string): void;
  close(): Promise<void>;
}

/** Each job's log as a plain text file under DATA_DIR/jobs; lines arrive already redacted. */
@Injectable()
export class JobLogStore {
  private readonly dir: string;

  constructor(config: AppConfig) {
    this.dir = config.dataPath('jobs');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  pathOf(jobId: string): string {
    return join(this.dir, `${jobId}.log`);
  }

  open(jobId: string): JobLogWriter {
    const stream: WriteStream = createWriteStream(this.pathOf(jobId), { flags: 'a', mode: 0o600 });
    let written = Math.max(0, existingSize(this.pathOf(jobId)));
    let truncated = false;
    return {
      write: (line: string) => {
        if (truncated) return;
        const text = `${new Date().toISOString()} ${redactUrlCredentials(line).replace(/\r?\n/g, ' ')}\n`;
        written += Buffer.byteLength(text);
        if (written > MAX_LOG_BYTES) {
          truncated = true;
          stream.write(`${new Date().toISOString()} [log truncated at ${MAX_LOG_BYTES} bytes]\n`);
          return;
        }
        stream.write(text);
      },
      close: () => new Promise<void>((resolve) => stream.end(resolve)),
    };
  }

  /** Removes a job's log; one already gone is fine. */
  async remove(jobId: string): Promise<void> {
    await rm(this.pathOf(jobId), { force: true });
  }

  read(jobId: string): ReadStream | undefined {
    if (existingSize(this.pathOf(jobId)) < 0) return undefined;
    return createReadStream(this.pathOf(jobId));
  }
}

function existingSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}
