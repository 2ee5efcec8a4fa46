import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { duplicityErrorFor, findFatalError } from '../../../src/providers/duplicity/duplicity-errors';
import { fixtureMeta, fixtureRecords } from './duplicity-fixtures';

function failureOf(name: string) {
  const meta = fixtureMeta(name);
  const records = fixtureRecords(name);
  return {
    exitCode: meta.exitCode,
    ...duplicityErrorFor(meta.exitCode, meta.stderr, findFatalError(records, meta.exitCode)),
  };
}

describe('duplicityErrorFor on captured failures', () => {
  const cases: Array<[fixture: string, exitCode: number, code: string, says: RegExp]> = [
    [
      'error-source-missing',
      13,
      'duplicity-source-missing',
      /Backup source directory \/tmp\/dupcap\/no-such-src does not exist/,
    ],
    ['error-unknown-scheme', 23, 'duplicity-unsupported-target', /scheme not supported in url: bogus:/],
    ['error-archive-locked', 23, 'duplicity-locked', /Another duplicity instance is already running/],
    ['error-backend-error', 50, 'duplicity-backend-error', /Giving up after 5 attempts/],
    ['error-backend-unwritable', 52, 'duplicity-backend-not-found', /FileNotFoundError/],
    ['error-needs-passphrase', 30, 'duplicity-passphrase-required', /\(duplicity: EOFError\)$/],
    ['error-restore-no-backups', 30, 'duplicity-no-backups', /CollectionsError: No backup chains found\)$/],
    ['error-list-no-backups', 30, 'duplicity-no-backups', /CollectionsError: No signature chains found\)$/],
    ['error-usage', 2, 'duplicity-usage', /Expected 2 args, got 3/],
    ['error-source-mismatch', 42, 'duplicity-source-mismatch', /Backup source directory has changed/],
    ['restore-into-existing-dir', 11, 'duplicity-restore-destination-exists', /\/tmp\/dupcap\/r1 already exists/],
    ['restore-path-not-in-archive', 19, 'duplicity-path-not-in-backup', /no\/such\/file\.txt not found in archive/],
  ];
  for (const [fixture, exitCode, code, says] of cases) {
    it(`${fixture}: exit ${exitCode} → ${code}`, () => {
      const failure = failureOf(fixture);
      assert.equal(failure.exitCode, exitCode);
      assert.equal(failure.code, code);
      assert.match(failure.message, says);
    });
  }

  it('a SIGKILLed run (exit 137, or no exit code) is duplicity-killed', () => {
    assert.equal(failureOf('full-killed').code, 'duplicity-killed');
    assert.equal(duplicityErrorFor(null, '').code, 'duplicity-killed');
  });

  it('an unknown exit code is duplicity-failed with the code and the last stderr line', () => {
    assert.deepEqual(duplicityErrorFor(77, 'something\nit broke\n'), {
      code: 'duplicity-failed',
      message: 'duplicity failed with exit code 77. (duplicity: it broke)',
    });
  });

  it('the message leads with advice', () => {
    assert.match(failureOf('error-archive-locked').message, /^Another duplicity process is using this archive/);
    assert.match(failureOf('error-needs-passphrase').message, /DUPLICITY_PASSPHRASE_FILE/);
  });
});

describe('findFatalError', () => {
  it('picks the ERROR whose code is the exit code, not the lockfile noise written after it', () => {
    const records = fixtureRecords('error-archive-locked');
    assert.deepEqual(
      records.filter((r) => r.level === 'ERROR').map((r) => r.code),
      [23, 1, 1],
    );
    assert.equal(findFatalError(records, 23)?.code, 23);
  });

  it('falls back to the first ERROR, or nothing', () => {
    const records = fixtureRecords('error-archive-locked');
    assert.equal(findFatalError(records, 99)?.code, 23);
    assert.equal(findFatalError(fixtureRecords('full-verbose'), 0), undefined);
  });
});
