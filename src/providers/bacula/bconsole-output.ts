/**
 * Pure parsers of what bconsole 9.6 prints. Bacula 9.6 has no JSON output for these commands, so each parser reads the
 * text layout captured from real daemons (see test/fixtures/bacula/) and ignores everything else it prints.
 */

/** One job as `llist jobid=N` / `llist jobname=X` shows it (`Key: value` lines). */
export interface BaculaJobRecord {
  jobId: number;
  /** The Job resource name, e.g. `apiscp-site12`. */
  name: string;
  /** The unique job name, e.g. `apiscp-site12.2026-11-26_21.21.36_03`. */
  job: string;
  /** B backup, R restore, … */
  type: string;
  /** F, D, I (empty for restores). */
  level: string;
  clientName: string;
  /** C created, R running, T OK, W warnings, E/e/f errors, A cancelled, … */
  status: string;
  /** The director's local time, `YYYY-MM-DD HH:MM:SS`, or null when unset. */
  startTime: string | null;
  endTime: string | null;
  /** Seconds since the epoch: when the job started (what later incrementals are based on). */
  jobTDate: number | null;
  files: number;
  bytes: number;
  readBytes: number;
  errors: number;
  fileSet: string;
  purgedFiles: boolean;
}

export type LogSeverity = 'fatal' | 'error' | 'warning' | 'info' | 'summary';

/** One message of `llist joblog jobid=N`. */
export interface JobLogEntry {
  time: string;
  /** The daemon that wrote it (`apiscp-dir`, `apiscp-fd`, …). */
  daemon: string;
  /** The message without the `<daemon> JobId N: ` prefix; may span lines. */
  text: string;
  severity: LogSeverity;
}

/** What the file daemon reports about a running job (`.api 2` + `.status client=X running`). */
export interface ClientJobProgress {
  jobId: number;
  status: string;
  files: number;
  bytes: number;
  readBytes: number;
  examined: number;
  /** Restores only: how many files the job will write. */
  expectedFiles: number | null;
  currentFile: string | null;
}

/** What the director reports about a job it runs (`.api 2` + `.status dir running`). */
export interface DirectorJobState {
  jobId: number;
  status: string;
  /** e.g. `is running`, `is waiting on max Client jobs`. */
  description: string;
}

export interface ShownFileSet {
  name: string;
  include: string[];
  exclude: string[];
  /** Wildcard and regex lines (`W`, `WF`, `WD`, `R`, …) as printed. */
  patterns: string[];
}

export interface ShownDaemon {
  name: string;
  address: string;
  port: number;
}

/** The Client and Storage the director shows, each null when it has no such resource. */
export interface ShownDaemons {
  client: ShownDaemon | null;
  storage: ShownDaemon | null;
}

export type UnreachableDaemon = 'director' | 'client' | 'storage';

const GREETING = /^1000 OK: \S+ (\S+) Version: (\S+)/m;

/** The director's name and version from bconsole's greeting, or null when bconsole never got in. */
export function parseGreeting(text: string): { director: string; version: string } | null {
  const match = GREETING.exec(text);
  return match ? { director: match[1], version: match[2] } : null;
}

export function isAuthorizationFailure(text: string): boolean {
  return /Director authorization problem/.test(text);
}

/**
 * Splits the transcript of one bconsole session into each command's reply: bconsole echoes every line it reads from a
 * pipe, so the reply to `commands[i]` is the text between its echo and the next command's echo.
 */
export function splitReplies(text: string, commands: readonly string[]): string[] {
  const replies = commands.map(() => '');
  const lines = text.split('\n');
  let current = -1;
  let next = 0;
  const collected: string[][] = commands.map(() => []);
  for (const line of lines) {
    if (next < commands.length && line.trimEnd() === commands[next].trimEnd()) {
      current = next++;
      continue;
    }
    if (current >= 0) collected[current].push(line);
  }
  collected.forEach((reply, index) => (replies[index] = reply.join('\n')));
  return replies;
}

/** The JobId of `run …` or `restore … yes`: `Job queued. JobId=12`. */
export function parseQueuedJobId(text: string): number | null {
  const match = /Job queued\. JobId=(\d+)/.exec(text);
  return match ? Number(match[1]) : null;
}

/** The status letter `wait jobid=N` ends with (`JobStatus=OK (T)`); `?` for a job the director does not know. */
export function parseWaitStatus(text: string): string | null {
  const match = /^JobStatus=.*\((.)\)\s*$/m.exec(text);
  return match ? match[1] : null;
}

/** `2000 OK estimate files=47 bytes=838,860,810`. */
export function parseEstimate(text: string): { files: number; bytes: number } | null {
  const match = /estimate files=([\d,]+) bytes=([\d,]+)/.exec(text);
  return match ? { files: toNumber(match[1]), bytes: toNumber(match[2]) } : null;
}

/** Every job record of an `llist jobid=N` or `llist jobname=X` reply, in the order printed. */
export function parseJobRecords(text: string): BaculaJobRecord[] {
  const records: BaculaJobRecord[] = [];
  for (const block of keyValueBlocks(text)) {
    if (!block.has('JobId') || !block.has('JobStatus')) continue;
    const text = (key: string): string => block.get(key) ?? '';
    const int = (key: string): number => toNumber(text(key));
    const time = (key: string): string | null =>
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(text(key)) ? text(key) : null;
    const tdate = int('JobTDate');
    records.push({
      jobId: int('JobId'),
      name: text('Name'),
      job: text('Job'),
      type: text('Type'),
      level: text('Level').trim(),
      clientName: text('ClientName'),
      status: text('JobStatus'),
      startTime: time('StartTime'),
      endTime: time('EndTime'),
      jobTDate: tdate > 0 ? tdate : null,
      files: int('JobFiles'),
      bytes: int('JobBytes'),
      readBytes: int('ReadBytes'),
      errors: int('JobErrors'),
      fileSet: text('FileSet'),
      purgedFiles: int('PurgedFiles') !== 0,
    });
  }
  return records;
}

/** `llist` prints right-aligned `Key: value` lines, one record per blank-line-separated block. */
function keyValueBlocks(text: string): Map<string, string>[] {
  const blocks: Map<string, string>[] = [];
  let current = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^ *([A-Za-z][A-Za-z0-9]*): ?(.*)$/.exec(line);
    if (match) {
      if (current.has(match[1])) {
        blocks.push(current);
        current = new Map();
      }
      current.set(match[1], match[2].trimEnd());
    } else if (line.trim() === '') {
      if (current.size > 0) blocks.push(current);
      current = new Map();
    }
  }
  if (current.size > 0) blocks.push(current);
  return blocks;
}

/**
 * The messages of `llist joblog jobid=N`: `Time:` and `LogText:` lines, the text running on over following lines until
 * a line holding a single backslash. (9.6 prints the job's own record after the log; it is not a message.)
 */
export function parseJobLog(text: string): JobLogEntry[] {
  const entries: JobLogEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const time = /^ *Time: (.*)$/.exec(lines[i]);
    const first = time && i + 1 < lines.length ? /^ *LogText: (.*)$/.exec(lines[i + 1]) : null;
    if (!time || !first) continue;
    const body = [first[1]];
    let j = i + 2;
    for (; j < lines.length && lines[j] !== '\\' && !/^ *Time: /.test(lines[j]); j++) body.push(lines[j]);
    i = j;
    const raw = body.join('\n').replace(/\s+$/, '');
    const prefix = /^(\S+) JobId \d+: ?([\s\S]*)$/.exec(raw);
    const message = prefix ? prefix[2] : raw;
    entries.push({
      time: time[1].trim(),
      daemon: prefix ? prefix[1] : '',
      text: message,
      severity: classifyMessage(message),
    });
  }
  return entries;
}

/** Bacula's message types as they show in the text: `Fatal error:`, `Error:`, `Warning:`, indented "not saved" lines. */
export function classifyMessage(message: string): LogSeverity {
  const unprefixed = message.replace(/^(Fatal error|Error|Warning): /, '');
  if (/^Bacula \S+ \d+\.\d+/.test(unprefixed) && /\n\s*Termination:/.test(unprefixed)) return 'summary';
  if (message.startsWith('Fatal error:')) return 'fatal';
  if (message.startsWith('Error:')) return 'error';
  if (message.startsWith('Warning:')) return 'warning';
  // The file daemon writes files it could not save ("Could not stat …") as indented lines of type "not saved".
  if (/^\s/.test(message)) return 'warning';
  return 'info';
}

/** The `Key: value` lines of the end-of-job summary (`Termination`, `Backup Level`, `FD Files Written`, …). */
export function parseJobSummary(entries: readonly JobLogEntry[]): Map<string, string> {
  const summary = entries.filter((entry) => entry.severity === 'summary').at(-1);
  const values = new Map<string, string>();
  for (const line of summary?.text.split('\n') ?? []) {
    const match = /^ +([A-Za-z][\w /()-]*?): +(.*)$/.exec(line);
    if (match) values.set(match[1], match[2].trim());
  }
  return values;
}

/** The readable one-liners of a job's log at or above a severity, without repeated lines. */
export function messagesOf(entries: readonly JobLogEntry[], severities: readonly LogSeverity[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const entry of entries) {
    if (!severities.includes(entry.severity)) continue;
    const line = `${entry.daemon}: ${entry.text.trim().replace(/\s*\n\s*/g, ' ')}`;
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
  }
  return out;
}

/** Which daemon a failure message says could not be reached, if any. */
export function unreachableDaemon(text: string): UnreachableDaemon | null {
  if (/(Unable|Failed) to connect to Client/i.test(text)) return 'client';
  if (/(Unable|Failed) to connect to Storage daemon/i.test(text)) return 'storage';
  if (/(Unable|Failed) to connect to Director/i.test(text)) return 'director';
  return null;
}

/** The `key=value` blocks `.api 2` prints for `.status dir running|terminated` and `.status client=X running`. */
export function parseApiBlocks(text: string): Record<string, string>[] {
  const blocks: Record<string, string>[] = [];
  let current: Record<string, string> = {};
  const flush = (): void => {
    if (Object.keys(current).length > 0) blocks.push(current);
    current = {};
  };
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z][\w /]*?)=(.*)$/.exec(line);
    if (match) current[match[1]] = match[2];
    else flush();
  }
  flush();
  return blocks;
}

export function parseClientJobProgress(text: string, jobId: number): ClientJobProgress | null {
  const block = parseApiBlocks(text).find((candidate) => candidate.JobId === String(jobId));
  if (!block) return null;
  return {
    jobId,
    status: block.Status ?? '',
    files: toNumber(block.JobFiles),
    bytes: toNumber(block.JobBytes),
    readBytes: toNumber(block.ReadBytes),
    examined: toNumber(block['Files Examined']),
    expectedFiles: block['Expected Files'] !== undefined ? toNumber(block['Expected Files']) : null,
    currentFile: block['Processing file'] || null,
  };
}

/** Status letters of the director's descriptions (dird/ua_status.c): the ones the follower acts on. */
const DESCRIBED_STATUS: [RegExp, string][] = [
  [/^is running\b/, 'R'],
  [/^has a fatal error\b/, 'f'],
  [/^has erred\b/, 'E'],
  [/^has errors\b/, 'e'],
  [/^has been canceled\b/, 'A'],
  [/^has terminated\b/, 'T'],
];

/**
 * The jobs of `.status dir running` (without `.api`, so every reply ends with the director's end-of-command signal):
 * the table's rows by JobId, with the description and its status letter (`C`, waiting, for the others). Null when
 * the reply is no running-jobs listing at all, so that a reply the parser does not understand is never taken for
 * "the job has ended".
 */
export function parseRunningJobs(text: string): Map<number, DirectorJobState> | null {
  const lines = text.split('\n');
  // Both the table and "No Jobs running." end with this line.
  if (!lines.some((line) => line.trim() === '====')) return null;
  const jobs = new Map<number, DirectorJobState>();
  let inTable = false;
  for (const line of lines) {
    // The header's long underline opens the table, `====` closes it.
    if (/^=+$/.test(line.trim())) {
      inTable = line.trim() !== '====';
      continue;
    }
    const tokens = line.trim().split(/\s+/);
    if (!inTable || !/^\d+$/.test(tokens[0])) continue;
    const jobId = Number(tokens[0]);
    // JobId Type Level Files Bytes Name Status: names hold no spaces, descriptions start with "is" or "has".
    const at = tokens.findIndex((token, index) => index > 1 && (token === 'is' || token === 'has'));
    const description = at > 0 ? tokens.slice(at).join(' ') : '';
    const status = DESCRIBED_STATUS.find(([pattern]) => pattern.test(description))?.[1] ?? 'C';
    jobs.set(jobId, { jobId, status, description });
  }
  return jobs;
}

/** `show fileset=X`: its `I` (include) and `E` (exclude) paths and its pattern lines; null when not found. */
export function parseShownFileSet(text: string): ShownFileSet | null {
  const header = /^FileSet: name=(\S+)/m.exec(text);
  if (!header) return null;
  const include: string[] = [];
  const exclude: string[] = [];
  const patterns: string[] = [];
  for (const line of text.slice(header.index).split('\n').slice(1)) {
    // `O …` option letters and `N` block ends carry no path.
    if (/^ {6}(N|O .*)$/.test(line)) continue;
    const match = /^ {6}([A-Z]{1,2}) (.*)$/.exec(line);
    if (!match) break;
    if (match[1] === 'I') include.push(match[2]);
    else if (match[1] === 'E') exclude.push(match[2]);
    else patterns.push(`${match[1]} ${match[2]}`);
  }
  return { name: header[1], include, exclude, patterns };
}

/** `show client=X`: `Client: Name=X Enabled=1 Address=… FDport=…`. */
export function parseShownClient(text: string): ShownDaemon | null {
  const match = /^Client: Name=(\S+) .*?Address=(\S+) FDport=(\d+)/m.exec(text);
  return match ? { name: match[1], address: match[2], port: Number(match[3]) } : null;
}

/** `show storage=X`: `Storage: name=X address=… SDport=…`. */
export function parseShownStorage(text: string): ShownDaemon | null {
  const match = /^Storage: name=(\S+) address=(\S+) SDport=(\d+)/m.exec(text);
  return match ? { name: match[1], address: match[2], port: Number(match[3]) } : null;
}

/** `show job=X` prints `Job: name=X …`; an unknown one prints `job resource X not found.` */
export function isResourceShown(text: string, kind: 'Job' | 'Pool' | 'FileSet' | 'Client' | 'Storage'): boolean {
  const pattern = kind === 'Client' ? /^Client: Name=/m : new RegExp(`^${kind}: name=`, 'm');
  return pattern.test(text);
}

/** The `ERROR … Config error: …` lines the director queued as messages after a failed `reload`. */
export function parseConfigErrors(text: string): string[] {
  const errors: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /Config error: (.*)$/.exec(lines[i]);
    if (!match) continue;
    const where =
      /^\s*: (line \d+, col \d+ of file .*)$/.exec(lines[i + 1] ?? '') ?? /^\s*: (line .*)$/.exec(lines[i + 2] ?? '');
    const error = where ? `${match[1].trim()} (${where[1].trim()})` : match[1].trim();
    if (!errors.includes(error)) errors.push(error);
  }
  return errors;
}

/** One step of a restore's file-selection dialogue: `$ cd …` or `$ mark …` and what the director answered. */
export interface TreeStep {
  command: string;
  reply: string;
}

/** The file-selection part of a `restore` transcript, and what it ended with. */
export interface RestoreSelection {
  steps: TreeStep[];
  /** `N files selected to be restored.`; 0 for `No files selected to be restored.` */
  selectedFiles: number | null;
  jobId: number | null;
}

export function parseRestoreSelection(text: string): RestoreSelection {
  const steps: TreeStep[] = [];
  let current: TreeStep | null = null;
  for (const line of text.split('\n')) {
    const prompt = /^\$ (.*)$/.exec(line);
    if (prompt) {
      current = { command: prompt[1], reply: '' };
      steps.push(current);
    } else if (current && !/^(Bootstrap records|The Job will require)/.test(line)) {
      current.reply = current.reply ? `${current.reply}\n${line}` : line;
    }
  }
  for (const step of steps) step.reply = step.reply.trim();
  const selected = /^(\d[\d,]*) files? selected to be restored\./m.exec(text);
  return {
    steps,
    selectedFiles: selected ? toNumber(selected[1]) : /No files selected to be restored/.test(text) ? 0 : null,
    jobId: parseQueuedJobId(text),
  };
}

/** `2 files marked.`, `1 file marked.`, `No files marked.` */
export function markedCount(reply: string): number {
  const match = /^(\d[\d,]*) files? marked\./m.exec(reply);
  return match ? toNumber(match[1]) : 0;
}

/** The Director resource of a bconsole configuration: where bconsole connects. Null when it cannot be read. */
export function parseConsoleDirector(config: string): { name: string | null; address: string; port: number } | null {
  const uncommented = config
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('\n');
  const block = /Director\s*\{([^}]*)\}/i.exec(uncommented);
  if (!block) return null;
  const values = new Map<string, string>();
  for (const statement of block[1].split(/[;\n]/)) {
    const match = /^\s*([A-Za-z ]+?)\s*=\s*"?([^"]*?)"?\s*$/.exec(statement);
    if (match) values.set(match[1].replace(/\s+/g, '').toLowerCase(), match[2]);
  }
  const address = values.get('address');
  if (!address) return null;
  return { name: values.get('name') ?? null, address, port: Number(values.get('dirport') ?? 9101) };
}

/** Rows of the `+---+` tables `list` prints, keyed by column header. */
export function parseTable(text: string): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  let headers: string[] = [];
  let expectHeader = false;
  let previous = '';
  for (const line of text.split('\n')) {
    // A table opens with a `+---+` rule that does not follow a row; the row after it is the header.
    if (line.startsWith('+')) {
      if (!previous.startsWith('|')) expectHeader = true;
    } else if (line.startsWith('|')) {
      const cells = line
        .slice(1, line.lastIndexOf('|'))
        .split('|')
        .map((cell) => cell.trim());
      if (expectHeader) headers = cells;
      else if (headers.length > 0) rows.push(Object.fromEntries(headers.map((header, i) => [header, cells[i] ?? ''])));
      expectHeader = false;
    }
    previous = line;
  }
  return rows;
}

function toNumber(value: string | undefined): number {
  const n = Number((value ?? '').replace(/,/g, '').trim());
  return Number.isFinite(n) ? n : 0;
}
