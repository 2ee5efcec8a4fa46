/**
 * Job error codes that name the failing party, shared by every engine, and whether running the job again can help.
 * A job's `error.retryable` comes from here, so the catalog stores only the code.
 */
export const TargetErrorCode = {
  /** The target did not answer or the connection broke (refused, timed out, reset): retry later. */
  Unreachable: 'target-unreachable',
  /** The target refused our credentials (key or password). */
  AuthRefused: 'target-auth-refused',
  /** The target's host key is not in the known hosts (DUPLICITY_SSH_KNOWN_HOSTS). */
  HostKeyUnknown: 'target-host-key-unknown',
  /** The target's host key differs from the known one: possibly another machine. */
  HostKeyChanged: 'target-host-key-changed',
  /** The target has no room left. */
  Full: 'target-full',
  /** The target refuses writes (read-only filesystem or share). */
  ReadOnly: 'target-read-only',
  /** Something on this server failed (disk full or unwritable under DATA_DIR, a missing tool). */
  LocalProblem: 'local-problem',
  /** The engine itself failed in a way no setting explains. */
  EngineBug: 'engine-bug',
} as const;

const RETRYABLE = new Set<string>([
  TargetErrorCode.Unreachable,
  // Another run of the same name held the archive; the next attempt finds it free.
  'duplicity-locked',
  'duplicity-timeout',
  // The service stopped under the job: the job itself was fine.
  'interrupted',
]);

/** Whether the same job, started again unchanged, can succeed. */
export function isRetryableCode(code: string): boolean {
  return RETRYABLE.has(code);
}
