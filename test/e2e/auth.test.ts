import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertProblem } from '../support/problem';
import { makeSites } from '../support/sample-sites';
import { startTestApp, TOKENS, type TestApp } from '../support/test-app';

type Role = keyof typeof TOKENS;
const ROLE_ORDER: Role[] = ['monitor', 'operator', 'admin'];

/** Every authenticated route, with a request that would succeed for a high enough role. */
const ROUTES: Array<{ method: 'get' | 'put' | 'post'; path: string; body?: object; role: Role; ok: number }> = [
  { method: 'get', path: '/v1/sites', role: 'monitor', ok: 200 },
  { method: 'get', path: '/v1/sites/site1', role: 'monitor', ok: 200 },
  { method: 'get', path: '/v1/providers', role: 'monitor', ok: 200 },
  { method: 'get', path: '/v1/scopes/backups.automatic-database-exports', role: 'monitor', ok: 200 },
  {
    method: 'put',
    path: '/v1/scopes/backups.automatic-database-exports',
    body: { value: false },
    role: 'admin',
    ok: 200,
  },
];

describe('auth', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'example.com' }]);
  });
  after(() => t.close());

  for (const route of ROUTES) {
    const call = (headers: Record<string, string>) => {
      const req = t.http()[route.method](route.path).set(headers);
      return route.body ? req.send(route.body) : req;
    };

    it(`${route.method.toUpperCase()} ${route.path}: 401 without a token or with a bad one`, async () => {
      const none = await call({});
      assertProblem(none, 401, 'unauthenticated');
      assert.equal(none.headers['www-authenticate'], 'Bearer');
      assertProblem(await call({ Authorization: 'Bearer not-a-real-token' }), 401, 'unauthenticated');
      assertProblem(
        await call({ Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
        401,
        'unauthenticated',
      );
      assertProblem(await call({ Authorization: `Bearer ${TOKENS.admin} extra` }), 401, 'unauthenticated');
    });

    it(`${route.method.toUpperCase()} ${route.path}: needs role ${route.role}`, async () => {
      for (const role of ROLE_ORDER) {
        const res = await call(t.auth(role));
        if (ROLE_ORDER.indexOf(role) >= ROLE_ORDER.indexOf(route.role)) {
          assert.equal(res.status, route.ok, `${role}: ${res.text}`);
        } else {
          assertProblem(res, 403, 'forbidden');
          assert.match(res.body.detail, new RegExp(`needs role ${route.role}`));
        }
      }
    });
  }

  it('health routes need no token', async () => {
    await t.http().get('/healthz').expect(200);
    await t.http().get('/readyz').expect(200);
  });

  it('logs the token name, never the token or the authorization header', async () => {
    await t.http().get('/v1/sites').set(t.auth('operator')).set('X-Request-Id', 'req-auth-log-1').expect(200);
    const line = t.logs.find((entry) => entry.includes('req-auth-log-1') && entry.includes('request completed'));
    assert.ok(line, 'a request log line with the request id');
    const record = JSON.parse(line);
    assert.equal(record.tokenName, 'operator-bot');
    for (const entry of t.logs) {
      for (const token of Object.values(TOKENS)) assert.ok(!entry.includes(token), `token leaked in log: ${entry}`);
    }
  });
});
