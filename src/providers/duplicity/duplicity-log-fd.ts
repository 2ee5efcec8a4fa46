/*
 * Parsers for duplicity 0.8.22's machine-readable log (`--log-fd N`), built from captured output
 * (test/fixtures/duplicity). A record is written as one block:
 *
 *   LEVEL CODE[ extra]        the control line; collection-status's extra spans several lines
 *   . human text              every line of the message, prefixed ". " (a message line may hold half a file name)
 *   <blank line>              end of record
 *
 * What reaches the fd depends on --verbosity: at the default (notice) only NOTICE/WARNING/ERROR records and forced
 * ones (collection-status, list-current-files, statistics) arrive; file records (INFO 4/5/6/7) and INFO 2 need
 * `--verbosity info`.
 */

export type DuplicityLevel = 'ERROR' | 'WARNING' | 'NOTICE' | 'INFO' | 'DEBUG';

export interface DuplicityRecord {
  level: DuplicityLevel;
  code: number;
  /** The control line after the code. Lines after the first are joined with `\n` (collection-status starts with one). */
  extra: string;
  /** The human message, one entry per line, without the `. ` prefix. */
  text: string[];
}

const HEADER = /^(ERROR|WARNING|NOTICE|INFO|DEBUG) (\d+)(?: (.*))?$/;

/** Turns log-fd lines, fed one at a time as they arrive, into records. */
export class LogFdParser {
  private current: DuplicityRecord | null = null;
  private inText = false;
  /** Lines outside any record. Always 0 on real output; counted so a format change shows. */
  skippedLines = 0;

  push(rawLine: string): DuplicityRecord[] {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (this.current === null) {
      if (line !== '' && !this.start(line)) this.skippedLines += 1;
      return [];
    }
    if (line === '') return [this.finish()];
    if (line.startsWith('. ') || line === '.') {
      this.current.text.push(line.slice(2));
      this.inText = true;
      return [];
    }
    if (!this.inText) {
      this.current.extra += `\n${line}`;
      return [];
    }
    // Only a writer that died mid-record gets here; keep what is usable.
    const finished = this.finish();
    if (!this.start(line)) this.skippedLines += 1;
    return [finished];
  }

  /** The record the stream ended inside (a killed duplicity leaves one without its blank line). */
  flush(): DuplicityRecord[] {
    return this.current === null ? [] : [this.finish()];
  }

  private start(line: string): boolean {
    const m = HEADER.exec(line);
    if (!m) return false;
    this.current = { level: m[1] as DuplicityLevel, code: Number(m[2]), extra: m[3] ?? '', text: [] };
    this.inText = false;
    return true;
  }

  private finish(): DuplicityRecord {
    const record = this.current as DuplicityRecord;
    this.current = null;
    this.inText = false;
    return record;
  }
}

/** Every record in a finished log (lines, or the whole text). */
export function parseLogRecords(lines: Iterable<string> | string): DuplicityRecord[] {
  const parser = new LogFdParser();
  const records: DuplicityRecord[] = [];
  for (const line of typeof lines === 'string' ? lines.split('\n') : lines) records.push(...parser.push(line));
  records.push(...parser.flush());
  return records;
}
