import assert from 'node:assert/strict';
import type { Response } from 'supertest';

/** Asserts an RFC 9457 problem response with this status and code. */
export function assertProblem(res: Response, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(body.type, `urn:apiscp-backup-api:problem:${code}`);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  assert.ok(!/\n\s+at /.test(res.text), 'no stack trace in the body');
}
