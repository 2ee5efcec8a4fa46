import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTimeOf, jobIdOf, pointIdOf, restorePointsOf } from '../../../src/providers/bacula/bacula-restore-points';
import { parseJobRecords, type BaculaJobRecord } from '../../../src/providers/bacula/bconsole-output';
import { fixture } from './bacula-fixtures';

let nextId = 1;
function job(level: string, overrides: Partial<BaculaJobRecord> = {}): BaculaJobRecord {
  const jobId = overrides.jobId ?? nextId++;
  return {
    jobId,
    name: 'apiscp-site1',
    job: `apiscp-site1.${jobId}`,
    type: 'B',
    level,
    clientName: 'apiscp-fd',
    status: 'T',
    startTime: '2026-11-26 10:00:00',
    endTime: '2026-11-26 10:00:05',
    jobTDate: 1_795_700_000 + jobId * 60,
    files: 10,
    bytes: 1000,
    readBytes: 1000,
    errors: 0,
    fileSet: 'apiscp-site1-fs',
    purgedFiles: false,
    ...overrides,
  };
}

function chains(records: BaculaJobRecord[]): Record<string, string[]> {
  return Object.fromEntries(restorePointsOf(records).map((point) => [point.id, point.chain]));
}

describe('Bacula restore points and chains', () => {
  it('builds the chains of the captured job list: cancelled and failed jobs are no restore points', () => {
    const points = restorePointsOf(parseJobRecords(fixture('llist-jobname.txt')));
    assert.deepEqual(
      points.map((point) => [point.id, point.level, point.chain.join(',')]),
      [
        ['bacula-18', 'incremental', 'bacula-1,bacula-17,bacula-18'],
        ['bacula-17', 'differential', 'bacula-1,bacula-17'],
        ['bacula-7', 'incremental', 'bacula-1,bacula-2,bacula-5,bacula-7'],
        ['bacula-5', 'incremental', 'bacula-1,bacula-2,bacula-5'],
        ['bacula-2', 'incremental', 'bacula-1,bacula-2'],
        ['bacula-1', 'full', 'bacula-1'],
      ],
    );
    assert.deepEqual(points[0], {
      id: 'bacula-18',
      provider: 'bacula',
      time: '2026-11-26T21:31:35Z',
      level: 'incremental',
      chain: ['bacula-1', 'bacula-17', 'bacula-18'],
      bytes: 41,
      files: 1,
      state: 'complete',
    });
  });

  it('a new full starts a new chain; a differential skips the incrementals before it', () => {
    nextId = 100;
    const records = [job('F'), job('I'), job('D'), job('I'), job('I'), job('D'), job('F'), job('I')];
    assert.deepEqual(chains(records), {
      'bacula-100': ['bacula-100'],
      'bacula-101': ['bacula-100', 'bacula-101'],
      'bacula-102': ['bacula-100', 'bacula-102'],
      'bacula-103': ['bacula-100', 'bacula-102', 'bacula-103'],
      'bacula-104': ['bacula-100', 'bacula-102', 'bacula-103', 'bacula-104'],
      'bacula-105': ['bacula-100', 'bacula-105'],
      'bacula-106': ['bacula-106'],
      'bacula-107': ['bacula-106', 'bacula-107'],
    });
  });

  it('counts jobs that ended with warnings (W, or T with errors), never failed, cancelled or running ones', () => {
    nextId = 200;
    const records = [
      job('F', { status: 'W' }),
      job('I', { status: 'T', errors: 3 }),
      job('I', { status: 'f' }),
      job('I', { status: 'E' }),
      job('I', { status: 'e' }),
      job('I', { status: 'A' }),
      job('I', { status: 'R' }),
      job('', { type: 'R' }),
      job('I'),
    ];
    assert.deepEqual(chains(records), {
      'bacula-200': ['bacula-200'],
      'bacula-201': ['bacula-200', 'bacula-201'],
      'bacula-208': ['bacula-200', 'bacula-201', 'bacula-208'],
    });
  });

  it('keeps chains apart per client and FileSet, as Bacula does', () => {
    nextId = 300;
    const records = [
      job('F'),
      job('F', { fileSet: 'apiscp-site1-fs-old' }),
      job('I', { clientName: 'other-fd' }),
      job('I', { fileSet: 'apiscp-site1-fs-old' }),
      job('I'),
    ];
    const points = restorePointsOf(records);
    assert.deepEqual(chains(records), {
      'bacula-300': ['bacula-300'],
      'bacula-301': ['bacula-301'],
      'bacula-302': ['bacula-302'],
      'bacula-303': ['bacula-301', 'bacula-303'],
      'bacula-304': ['bacula-300', 'bacula-304'],
    });
    assert.equal(points.find((point) => point.id === 'bacula-302')?.state, 'incomplete', 'no full under that client');
  });

  it('marks a chain incomplete when its full is gone or its file records were pruned', () => {
    nextId = 400;
    const points = restorePointsOf([job('D'), job('I'), job('F', { purgedFiles: true }), job('I'), job('F'), job('I')]);
    assert.deepEqual(
      points.map((point) => [point.id, point.state]),
      [
        ['bacula-405', 'complete'],
        ['bacula-404', 'complete'],
        ['bacula-403', 'incomplete'],
        ['bacula-402', 'incomplete'],
        ['bacula-401', 'incomplete'],
        ['bacula-400', 'incomplete'],
      ],
    );
  });

  it('maps ids both ways and times to ISO UTC', () => {
    assert.equal(pointIdOf(42), 'bacula-42');
    assert.equal(jobIdOf('bacula-42'), 42);
    for (const bad of ['bacula-', 'bacula-0', 'bacula-01', 'duplicity-42', 'bacula-42x', 'bacula-1,2'])
      assert.equal(jobIdOf(bad), null, bad);
    assert.equal(isoTimeOf(job('F', { jobTDate: 1795728098 })), '2026-11-26T21:21:38Z');
    const local = isoTimeOf(job('F', { jobTDate: null, startTime: '2026-11-26 21:21:38' }));
    assert.equal(local, new Date(2026, 10, 26, 21, 21, 38).toISOString().replace('.000Z', 'Z'));
  });
});
