import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createServer } from 'node:http';
import request from 'supertest';
import { validateResponse, type ObservedResponse } from '../support/openapi-validator';
import { observed } from '../support/test-app';

const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };
const PROBLEM_TYPE = { 'content-type': 'application/problem+json; charset=utf-8' };

function problem(code: string, status: number, instance = '/v1/jobs'): string {
  return JSON.stringify({
    type: `urn:apiscp-backup-api:problem:${code}`,
    title: 't',
    status,
    detail: 'd',
    code,
    instance,
  });
}

const JOB = {
  id: '0b6c2f0e-3f5e-4d3c-9a57-0d7e1b5f8c11',
  kind: 'backup',
  site: 'site1',
  provider: 'duplicity',
  level: 'full',
  status: 'succeeded',
  progress: { phase: null, percent: null, bytes: null },
  steps: [],
  request: { level: 'full', provider: 'duplicity', exportDatabases: false, continueOnExportFailure: false },
  result: {
    level: 'full',
    requestedLevel: 'full',
    restorePoint: 'duplicity-20261126T110204Z',
    bytes: 1,
    files: 1,
    warnings: [],
    notes: [],
    exports: [],
  },
  error: null,
  requestedBy: 'ops',
  createdAt: '2026-11-26T11:02:04.000Z',
  startedAt: '2026-11-26T11:02:04.000Z',
  finishedAt: '2026-11-26T11:02:09.000Z',
};

function answer(patch: Partial<ObservedResponse>): ObservedResponse {
  return {
    method: 'GET',
    path: `/v1/jobs/${JOB.id}`,
    status: 200,
    headers: JSON_TYPE,
    text: JSON.stringify(JOB),
    ...patch,
  };
}

/** The harness's own check, on answers made up to break one rule each: it must refuse every one. */
describe('the spec check of test responses', () => {
  it("accepts a queued job's empty log (an empty string), but not an empty body where JSON is described", () => {
    const log = { path: `/v1/jobs/${JOB.id}/log`, headers: { 'content-type': 'text/plain; charset=utf-8' } };
    validateResponse(answer({ ...log, text: '' }));
    validateResponse(answer({ ...log, text: 'a line\n' }));
    assert.throws(() => validateResponse(answer({ text: '' })), /the spec describes a body, none came/);
  });

  it("gets an empty text answer through the HTTP client as the empty string, as a queued job's log comes", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '0' });
      res.end();
    });
    const test = request(server).get(`/v1/jobs/${JOB.id}/log`);
    const res = await test;
    const seen = observed(test, res);
    assert.equal(seen.text, '');
    validateResponse(seen);
  });

  it('accepts a described answer, errors included', () => {
    validateResponse(answer({}));
    validateResponse(answer({ status: 404, headers: PROBLEM_TYPE, text: problem('job-not-found', 404) }));
    validateResponse(
      answer({
        method: 'DELETE',
        path: '/v1/nowhere',
        status: 404,
        headers: PROBLEM_TYPE,
        text: problem('route-not-found', 404),
      }),
    );
  });

  it('refuses a route the spec does not describe, unless it is a routing problem', () => {
    assert.throws(
      () => validateResponse(answer({ path: '/v1/archives', text: '{"items":[]}' })),
      /no route of the spec serves this/,
    );
  });

  it('refuses a status the operation does not list', () => {
    assert.throws(
      () => validateResponse(answer({ status: 409, headers: PROBLEM_TYPE, text: problem('job-not-cancellable', 409) })),
      /does not list/,
    );
  });

  it('refuses an error code the status does not carry, and an error sent as plain JSON', () => {
    assert.throws(
      () => validateResponse(answer({ status: 404, headers: PROBLEM_TYPE, text: problem('site-not-found', 404) })),
      /does not match the spec/,
    );
    assert.throws(
      () => validateResponse(answer({ status: 404, headers: JSON_TYPE, text: problem('job-not-found', 404) })),
      /Content-Type application\/json is not one the spec lists/,
    );
  });

  it('refuses a body off its schema: a job result of another kind, an unknown status', () => {
    const restoreResult = { ...JOB, result: { restorePoint: 'x', chain: [], target: 'staging' } };
    assert.throws(() => validateResponse(answer({ text: JSON.stringify(restoreResult) })), /does not match the spec/);
    assert.throws(
      () => validateResponse(answer({ text: JSON.stringify({ ...JOB, status: 'done' }) })),
      /does not match the spec/,
    );
  });

  it('refuses a 202 without its Location header', () => {
    const accepted = { method: 'POST', path: '/v1/sites/site1/backups', status: 202, text: JSON.stringify(JOB) };
    validateResponse({ ...accepted, headers: { ...JSON_TYPE, location: `/v1/jobs/${JOB.id}` } });
    assert.throws(() => validateResponse({ ...accepted, headers: JSON_TYPE }), /required header Location is missing/);
  });
});
