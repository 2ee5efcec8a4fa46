import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRetryableCode } from '../../../src/jobs/job-error-codes';
import { classifyTargetFailure, duplicityErrorFor } from '../../../src/providers/duplicity/duplicity-errors';

describe('target failures: who failed and whether a retry helps', () => {
  const cases: Array<[what: string, exitCode: number, stderr: string, code: string, retryable: boolean]> = [
    [
      'sshd down',
      50,
      'Attempt of list Nr. 1 failed. SSHException: [Errno None] Unable to connect to port 22 on 127.0.0.1\nGiving up after 3 attempts. BackendException: ssh connection to 127.0.0.1:2222 failed: [Errno None] Unable to connect to port 2222 on 127.0.0.1',
      'target-unreachable',
      true,
    ],
    ['connection refused', 23, 'ConnectionRefusedError: [Errno 111] Connection refused', 'target-unreachable', true],
    [
      'cut mid-transfer',
      50,
      'Giving up after 3 attempts. SSHException: Server connection dropped: ',
      'target-unreachable',
      true,
    ],
    [
      'unknown host key (paramiko prompt on a closed stdin)',
      23,
      "The authenticity of host '[127.0.0.1]:2222' can't be established.\nSSH-RSA key fingerprint is 4a:..\nAre you sure you want to continue connecting (yes/no)? EOFError: EOF when reading a line",
      'target-host-key-unknown',
      false,
    ],
    [
      'changed host key',
      23,
      "BackendException: ssh connection to 127.0.0.1:2222 failed: Host key for server '[127.0.0.1]:2222' does not match: got 'AAAA', expected 'BBBB'",
      'target-host-key-changed',
      false,
    ],
    [
      'key refused',
      23,
      'BackendException: ssh connection to root@127.0.0.1:2222 failed: Authentication failed.',
      'target-auth-refused',
      false,
    ],
    ['read-only', 50, 'OSError: [Errno 30] Read-only file system', 'target-read-only', false],
    ['full', 50, 'OSError: [Errno 28] No space left on device', 'target-full', false],
    [
      'local disk full',
      30,
      'OSError: [Errno 28] No space left on device: /data/duplicity/archive',
      'local-problem',
      false,
    ],
    ['engine bug', 30, 'Traceback (innermost last):\n AssertionError', 'engine-bug', false],
  ];
  for (const [what, exitCode, stderr, code, retryable] of cases) {
    it(`${what} → ${code}${retryable ? ' (retryable)' : ''}`, () => {
      const failure = duplicityErrorFor(exitCode, stderr);
      assert.equal(failure.code, code, failure.message);
      assert.equal(isRetryableCode(failure.code), retryable);
    });
  }

  it('the target helper’s failures are classified the same way, a timeout as unreachable', () => {
    assert.equal(classifyTargetFailure('socket.timeout: timed out').code, 'target-unreachable');
    assert.equal(classifyTargetFailure('', true).code, 'target-unreachable');
    assert.equal(
      classifyTargetFailure('paramiko.ssh_exception.AuthenticationException: Authentication failed.').code,
      'target-auth-refused',
    );
    assert.equal(classifyTargetFailure('ValueError: something else').code, 'engine-bug');
  });
});
