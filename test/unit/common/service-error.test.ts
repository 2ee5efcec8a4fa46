import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../../src/common/errors/app-error';
import { ErrorCode } from '../../../src/common/errors/error-code';
import { ServiceError } from '../../../src/common/errors/service-error';
import { ExportError } from '../../../src/exports/export-error';
import { JobFailure } from '../../../src/jobs/job-failure';

describe('the service error family', () => {
  it('AppError, JobFailure and ExportError share one base carrying the code and message', () => {
    const errors: ServiceError[] = [
      new AppError(ErrorCode.SiteNotFound, 'No site site9.'),
      new JobFailure('duplicity-locked', 'locked'),
      new ExportError('dump-failed', 'mariadb-dump failed'),
    ];
    assert.deepEqual(
      errors.map((error) => [error instanceof ServiceError, error.name, error.code, error.message]),
      [
        [true, 'AppError', 'site-not-found', 'No site site9.'],
        [true, 'JobFailure', 'duplicity-locked', 'locked'],
        [true, 'ExportError', 'dump-failed', 'mariadb-dump failed'],
      ],
    );
  });

  it('JobFailure.from keeps a JobFailure, takes an AppError code, and records anything else as internal', () => {
    const failure = new JobFailure('target-full', 'no room');
    assert.equal(JobFailure.from(failure), failure);
    const fromApp = JobFailure.from(new AppError(ErrorCode.ProviderUnavailable, 'director down'));
    assert.deepEqual([fromApp.code, fromApp.message], ['provider-unavailable', 'director down']);
    const fromExport = JobFailure.from(new ExportError('write-failed', 'disk full'));
    assert.deepEqual([fromExport.code, fromExport.message], ['internal', 'disk full']);
    const fromOther = JobFailure.from('boom');
    assert.deepEqual([fromOther.code, fromOther.message], ['internal', 'boom']);
  });
});
