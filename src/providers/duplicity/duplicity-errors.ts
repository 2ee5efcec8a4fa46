import { TargetErrorCode } from '../../jobs/job-error-codes';
import { DuplicityCode } from './duplicity-events';
import type { DuplicityRecord } from './duplicity-log-fd';

export interface TargetFailure {
  code: string;
  message: string;
}

/**
 * Failures of the connection to a target, recognised in what duplicity (or its ssh/paramiko backend) printed. The
 * order matters: a changed host key also says "verification failed", and paramiko's prompt for an unknown key ends
 * in an EOFError on the closed stdin.
 */
const TARGET_PATTERNS: Array<[RegExp, string, string]> = [
  [
    /REMOTE HOST IDENTIFICATION HAS CHANGED|BadHostKeyException|Host key for .* does not match|host key .*(changed|mismatch)/i,
    TargetErrorCode.HostKeyChanged,
    'The target’s SSH host key differs from the one in DUPLICITY_SSH_KNOWN_HOSTS: check that it is the right machine, then update the known hosts file.',
  ],
  [
    /Host key verification failed|failed: EOF when reading a line|not found in known_hosts|No .* host key is known|key fingerprint is|Are you sure you want to continue connecting|Server .* not found in known_hosts|unknown host key/i,
    TargetErrorCode.HostKeyUnknown,
    'The target’s SSH host key is unknown: add it to the file DUPLICITY_SSH_KNOWN_HOSTS names (ssh-keyscan -p PORT HOST).',
  ],
  [
    /Authentication failed|AuthenticationException|Permission denied \((publickey|password|keyboard)|No authentication methods available|Too many authentication failures|Login incorrect/i,
    TargetErrorCode.AuthRefused,
    'The target refused the login: check DUPLICITY_SSH_KEY_FILE and that its public key is authorised on the target.',
  ],
  [
    /Connection refused|No route to host|Network is unreachable|Connection timed out|timed out|Name or service not known|Temporary failure in name resolution|Connection reset|Broken pipe|Socket is closed|Server connection dropped|Error reading SSH protocol banner|SSHException|EOFError|Connection closed|No existing session|Unable to connect/i,
    TargetErrorCode.Unreachable,
    'The backup target could not be reached or the connection broke; the job can be retried once it answers.',
  ],
];

/** A connection failure to the target, or null when the text shows none. */
export function targetConnectionFailure(evidence: string): TargetFailure | null {
  for (const [pattern, code, message] of TARGET_PATTERNS) {
    if (pattern.test(evidence)) return { code, message };
  }
  return null;
}

/** Any failure of a target helper run (listing, removing, renaming): the connection, space, rights, else a bug. */
export function classifyTargetFailure(stderr: string, timedOut = false): TargetFailure {
  const said = lastLine(stderr);
  const withSaid = (failure: TargetFailure): TargetFailure => ({
    code: failure.code,
    message: said ? `${failure.message} (${said})` : failure.message,
  });
  if (timedOut) {
    return withSaid({ code: TargetErrorCode.Unreachable, message: 'The backup target did not answer in time.' });
  }
  const connection = targetConnectionFailure(stderr);
  if (connection) return withSaid(connection);
  if (/Read-only file system/.test(stderr)) {
    return withSaid({ code: TargetErrorCode.ReadOnly, message: 'The backup target is read-only.' });
  }
  if (/No space left on device|Disk quota exceeded/.test(stderr)) {
    return withSaid({ code: TargetErrorCode.Full, message: 'The backup target is full.' });
  }
  if (/Permission denied/.test(stderr)) {
    return withSaid({
      code: 'duplicity-backend-permission-denied',
      message: 'The backup target refused access; check its permissions.',
    });
  }
  return withSaid({ code: TargetErrorCode.EngineBug, message: 'duplicity’s backend failed on the target.' });
}

function lastLine(text: string): string | null {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? null;
}

/**
 * The ERROR record that ended the run: the one whose code is the exit code, else the first. (A run refused for the
 * lock writes ERROR 23, then two ERROR 1 "Could not release lockfile" while exiting.)
 */
export function findFatalError(
  records: Iterable<DuplicityRecord>,
  exitCode: number | null,
): DuplicityRecord | undefined {
  let first: DuplicityRecord | undefined;
  for (const record of records) {
    if (record.level !== 'ERROR') continue;
    if (record.code === exitCode) return record;
    first ??= record;
  }
  return first;
}

/** Exit codes of backend failures (duplicity's BackendException family) and of a refused request (23). */
const TARGET_EXIT_CODES = new Set([23, 50, 51, 52, 53, 54, 55]);

export interface DuplicityFailure {
  /** Stable, for the job's `error.code`. */
  code: string;
  /** What happened and what to do, with duplicity's own words at the end. */
  message: string;
}

/** Turns a failed run into a stable code and an actionable message. */
export function duplicityErrorFor(
  exitCode: number | null,
  stderrTail: string,
  lastError?: DuplicityRecord,
): DuplicityFailure {
  const said = errorSummary(lastError) ?? lastMeaningfulLine(stderrTail);
  const evidence = `${lastError?.extra ?? ''}\n${lastError?.text.join('\n') ?? ''}\n${stderrTail}`;
  const fail = (code: string, advice: string): DuplicityFailure => ({
    code,
    message: said ? `${advice} (duplicity: ${said})` : advice,
  });
  // A target that cannot be reached, refuses the login or has an unknown host key: whatever exit code duplicity chose.
  const connection =
    TARGET_EXIT_CODES.has(exitCode ?? -1) || /paramiko|ssh|BackendException/i.test(evidence)
      ? targetConnectionFailure(evidence)
      : null;
  if (connection && exitCode !== null && exitCode !== 137 && exitCode !== 143)
    return fail(connection.code, connection.message);
  switch (exitCode) {
    case null:
    case 137:
    case 143:
      return fail('duplicity-killed', 'duplicity was stopped by a signal before it finished.');
    case DuplicityCode.error.commandLine:
      return fail('duplicity-usage', 'duplicity rejected its command line; this is a bug in the provider.');
    case DuplicityCode.error.restoreDirExists:
      return fail(
        'duplicity-restore-destination-exists',
        'The restore destination already exists; duplicity restores only into a directory that does not exist yet.',
      );
    case DuplicityCode.error.sourceMissing:
      return fail('duplicity-source-missing', 'The directory to back up does not exist.');
    case DuplicityCode.error.restorePathNotFound:
      return fail(
        'duplicity-path-not-in-backup',
        'The requested path is not in the backup at that restore point; list the restore point’s files and retry.',
      );
    case DuplicityCode.error.userError:
      if (/Another duplicity instance is already running/.test(evidence)) {
        return fail(
          'duplicity-locked',
          'Another duplicity process is using this archive (same archive dir and name); retry when it has finished.',
        );
      }
      if (/UnsupportedBackendScheme|scheme not supported/.test(evidence)) {
        return fail(
          'duplicity-unsupported-target',
          'duplicity does not support the target URL; check DUPLICITY_TARGET.',
        );
      }
      return fail('duplicity-user-error', 'duplicity refused the request.');
    case DuplicityCode.error.exception:
      if (/CollectionsError/.test(evidence) && /No (backup|signature) chains found/.test(evidence)) {
        // list-current-files says "signature" chains: it reads signatures only, so deleted ones look the same.
        return fail('duplicity-no-backups', 'There is no backup (or no signature file to list it from) at the target.');
      }
      if (/EOFError|getpass|passphrase/i.test(evidence)) {
        return fail(
          'duplicity-passphrase-required',
          'The backups are encrypted and duplicity got no passphrase; set DUPLICITY_PASSPHRASE_FILE.',
        );
      }
      if (/No space left on device|Disk quota exceeded/.test(evidence)) {
        return fail(
          TargetErrorCode.LocalProblem,
          'This server ran out of space (DATA_DIR or its temporary directory).',
        );
      }
      if (/PermissionError|Permission denied/.test(evidence)) {
        return fail(
          TargetErrorCode.LocalProblem,
          'duplicity was refused access to a local file (archive dir or temporary directory).',
        );
      }
      return fail(TargetErrorCode.EngineBug, 'duplicity stopped on an internal error.');
    case DuplicityCode.error.gpgFailed:
      return fail('duplicity-gpg-failed', 'GnuPG failed; check the passphrase and GNUPGHOME.');
    case DuplicityCode.error.sourceMismatch:
      return fail(
        'duplicity-source-mismatch',
        'This archive was made from another source directory; back up the same absolute path, or start a new target.',
      );
    case 50:
    case 54:
    case 55:
      // A generic backend error (exit 50 for a failed put) carries the OS error; the target is there but refuses writes.
      if (/Read-only file system/.test(evidence)) {
        return fail(
          TargetErrorCode.ReadOnly,
          'The backup target is read-only; remount it read-write or point DUPLICITY_TARGET at a writable place.',
        );
      }
      if (/Permission denied/.test(evidence)) {
        return fail('duplicity-backend-permission-denied', 'The backup target refused access; check its permissions.');
      }
      if (/No space left on device|Disk quota exceeded/.test(evidence)) {
        return fail(TargetErrorCode.Full, 'The backup target is full.');
      }
      return fail('duplicity-backend-error', 'The backup target failed; check that DUPLICITY_TARGET is reachable.');
    case 51:
      return fail('duplicity-backend-permission-denied', 'The backup target refused access; check its permissions.');
    case 52:
      return fail(
        'duplicity-backend-not-found',
        'The backup target or a file in it does not exist and cannot be created; check DUPLICITY_TARGET.',
      );
    case 53:
      return fail(TargetErrorCode.Full, 'The backup target is full.');
    default:
      return fail('duplicity-failed', `duplicity failed with exit code ${exitCode}.`);
  }
}

/** The message of an ERROR record; for a Python traceback, its last line (the exception). */
function errorSummary(record: DuplicityRecord | undefined): string | null {
  if (!record) return null;
  const lines = record.text.map((line) => line.trim()).filter((line) => line !== '');
  if (lines.length === 0) return null;
  return lines[0].startsWith('Traceback') ? lines[lines.length - 1] : lines.join(' ');
}

function lastMeaningfulLine(text: string): string | null {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('Could not release lockfile'));
  return lines.length === 0 ? null : lines[lines.length - 1];
}
