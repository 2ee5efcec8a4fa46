import { Controller, Get, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { RequireRole } from '../../src/auth/auth.decorators';
import { ROLES } from '../../src/auth/role';
import { sha256Hex, TokenStore } from '../../src/auth/token-store';
import type { AppConfig } from '../../src/config/app-config';
import { buildOpenApiDocument } from '../../src/openapi/openapi';
import {
  assertProblemShape,
  documentedOperations,
  expressRoutes,
  fillPath,
  listRoutes,
  RawClient,
  routeKey,
  type ApiRoute,
} from '../support/routes';
import { makeSites } from '../support/sample-sites';
import { startTestApp, tempDir, TOKENS, type TestApp } from '../support/test-app';

/** The only routes that may answer without a token. */
const PUBLIC_ROUTES = ['GET /healthz', 'GET /readyz'];
/** Served by Swagger on the Express adapter, outside Nest: the spec and its UI, never data. */
const DOCUMENTATION_ROUTE = /^\/(openapi\.json|openapi-ui\.json|docs-yaml|docs(\/.*)?)$/;
/** Nest's own fallback layer (404/405 answers). */
const CATCH_ALL = '/{*path}';
const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'];

/** What is wrong with the routes' auth declarations; empty when every route is covered. */
function authViolations(routes: ApiRoute[]): string[] {
  const problems: string[] = [];
  for (const route of routes) {
    const key = routeKey(route);
    const where = `${key} (${route.controller}.${route.handler})`;
    if (route.isPublic && route.requiredRole) problems.push(`${where} is both @Public() and @RequireRole()`);
    if (!route.isPublic && !route.requiredRole) problems.push(`${where} has neither @Public() nor @RequireRole()`);
    if (route.isPublic && !PUBLIC_ROUTES.includes(key)) problems.push(`${where} is @Public() but only health may be`);
    if (route.requiredRole && !ROLES.includes(route.requiredRole))
      problems.push(`${where} requires unknown role ${route.requiredRole}`);
    // monitor reads; anything that changes state needs at least operator.
    if (route.requiredRole === 'monitor' && !READ_METHODS.includes(route.method))
      problems.push(`${where} changes state but only needs monitor`);
  }
  return problems;
}

describe('route/role table', () => {
  let t: TestApp;
  let client: RawClient;
  let routes: ApiRoute[];

  before(async () => {
    t = await startTestApp();
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'example.com' }]);
    client = await RawClient.listen(t.app);
    routes = listRoutes(t.app);
  });
  after(async () => {
    client.close();
    await t.close();
  });

  it('the route list is complete: Nest metadata, the OpenAPI document and the Express router agree', () => {
    assert.ok(routes.length >= 20, `found only ${routes.length} routes`);
    const discovered = routes.map((route) => `${route.method} ${route.template}`).sort();
    assert.deepEqual(discovered, [...new Set(discovered)], 'no route mapped twice');
    assert.deepEqual(
      discovered,
      documentedOperations(buildOpenApiDocument(t.app)).sort(),
      'every route is in the spec',
    );
    const nest = new Set(routes.map(routeKey));
    const others = expressRoutes(t.app).filter(
      (layer) => layer.path !== CATCH_ALL && !nest.has(routeKey(layer)) && !DOCUMENTATION_ROUTE.test(layer.path),
    );
    assert.deepEqual(others, [], 'no route registered on Express behind Nest’s guard');
    for (const key of nest) {
      assert.ok(
        expressRoutes(t.app).some((layer) => routeKey(layer) === key),
        `${key} is served`,
      );
    }
  });

  it('every route is @Public() (health only) or declares @RequireRole()', () => {
    assert.deepEqual(authViolations(routes), []);
    assert.deepEqual(routes.filter((route) => route.isPublic).map(routeKey), PUBLIC_ROUTES, 'health routes are public');
  });

  it('the check fails for a route that forgot its decorator', async () => {
    @Controller('v1/forgotten')
    class ForgottenController {
      @Get()
      list(): string[] {
        return [];
      }
      @Post()
      @RequireRole('monitor')
      start(): string {
        return 'started';
      }
    }
    const module = await Test.createTestingModule({ controllers: [ForgottenController] }).compile();
    const app = module.createNestApplication({ logger: false });
    await app.init();
    try {
      const found = listRoutes(app);
      assert.deepEqual(found.map(routeKey), ['GET /v1/forgotten', 'POST /v1/forgotten']);
      assert.deepEqual(authViolations(found), [
        'GET /v1/forgotten (ForgottenController.list) has neither @Public() nor @RequireRole()',
        'POST /v1/forgotten (ForgottenController.start) changes state but only needs monitor',
      ]);
    } finally {
      await app.close();
    }
  });

  it('public routes answer without a token', async () => {
    for (const route of routes.filter((candidate) => candidate.isPublic)) {
      const res = await client.send({ method: route.method, path: fillPath(route) });
      assert.equal(res.status, 200, `${routeKey(route)}: ${res.text}`);
    }
  });

  it('every protected route: 401 without a valid token, 403 below its role, the guard passes from its role up', async (ctx) => {
    // A body the DTOs refuse, so a route that lets the caller through still does nothing.
    const refusedBody = JSON.stringify({ routeRolesUnknownProperty: true });
    for (const route of routes.filter((candidate) => !candidate.isPublic)) {
      await ctx.test(routeKey(route), async () => {
        const required = route.requiredRole!;
        const send = (headers: Record<string, string>) =>
          client.send({
            method: route.method,
            path: fillPath(route),
            headers: READ_METHODS.includes(route.method) ? headers : { ...headers, 'content-type': 'application/json' },
            body: READ_METHODS.includes(route.method) ? undefined : refusedBody,
          });

        const none = await send({});
        assert.equal(assertProblemShape(none, 401).code, 'unauthenticated');
        assert.equal(none.headers['www-authenticate'], 'Bearer');
        const wrong = await send({ authorization: `Bearer ${TOKENS.admin.slice(0, -1)}X` });
        assert.equal(assertProblemShape(wrong, 401).code, 'unauthenticated');
        assert.match(String(wrong.headers['www-authenticate']), /invalid_token/);

        for (const role of ROLES) {
          const res = await send({ authorization: `Bearer ${TOKENS[role]}` });
          if (ROLES.indexOf(role) < ROLES.indexOf(required)) {
            const problem = assertProblemShape(res, 403);
            assert.equal(problem.code, 'forbidden');
            assert.match(
              String(problem.detail),
              new RegExp(`needs role ${required}; token ${role}-bot has role ${role}`),
            );
          } else {
            assert.ok(![401, 403].includes(res.status), `${role} is let through: ${res.status} ${res.text}`);
            assert.ok(res.status < 500, `${role}: ${res.status} ${res.text}`);
          }
        }
      });
    }
    const jobs = await client.send({
      method: 'GET',
      path: '/v1/jobs',
      headers: { authorization: `Bearer ${TOKENS.admin}` },
    });
    assert.deepEqual(JSON.parse(jobs.text).items, [], 'the table started no job');
  });
});

describe('token comparison', () => {
  it('hashes the presented token and compares it with every stored digest, whichever matches', (ctx) => {
    const dir = tempDir();
    const tokens = [
      'first-token-aaaaaaaa',
      'second-token-bbbbbbbb',
      'x',
      'fourth-' + 'c'.repeat(400),
      'last-token-dddd',
    ];
    const file = join(dir, 'tokens.json');
    writeFileSync(
      file,
      JSON.stringify(
        tokens.map((token, index) => ({ name: `bot${index}`, role: 'monitor', sha256: sha256Hex(token) })),
      ),
    );
    const store = new TokenStore({ tokensFile: file } as AppConfig);
    const compare = mock.method(crypto, 'timingSafeEqual');
    ctx.after(() => compare.mock.restore());

    const cases: Array<[string, string | undefined]> = [
      [tokens[0], 'bot0'],
      [tokens[4], 'bot4'],
      [tokens[3], 'bot3'],
      ['', undefined],
      ['y', undefined],
      [tokens[0].slice(0, -1) + 'b', undefined],
      ['z'.repeat(512), undefined],
    ];
    for (const [presented, expected] of cases) {
      compare.mock.resetCalls();
      assert.equal(store.authenticate(presented)?.name, expected, `token ${presented.slice(0, 20)}`);
      assert.equal(compare.mock.callCount(), tokens.length, 'one comparison per stored token, no early exit');
      const digest = crypto.createHash('sha256').update(presented, 'utf8').digest();
      compare.mock.calls.forEach((call, index) => {
        const [left, right] = call.arguments as [Buffer, Buffer];
        assert.equal(left.length, 32, 'a SHA-256 digest, whatever the token length');
        assert.equal(right.length, 32);
        assert.ok(left.equals(digest), 'the presented token’s digest, never the token');
        assert.equal(right.toString('hex'), sha256Hex(tokens[index]));
      });
    }
  });

  it('answers a wrong token of the right length as fast as a short one (loose timing bound)', async (ctx) => {
    const t = await startTestApp();
    const client = await RawClient.listen(t.app);
    try {
      const nearMiss = `Bearer ${TOKENS.admin.slice(0, -1)}${TOKENS.admin.endsWith('9') ? '8' : '9'}`;
      const short = 'Bearer x';
      const timed = async (authorization: string): Promise<number> => {
        const started = process.hrtime.bigint();
        const res = await client.send({ method: 'GET', path: '/v1/sites', headers: { authorization } });
        const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
        assert.equal(res.status, 401);
        return elapsed;
      };
      for (let i = 0; i < 50; i++) await timed(i % 2 ? nearMiss : short); // warm-up
      const near: number[] = [];
      const far: number[] = [];
      for (let i = 0; i < 400; i++) {
        // Interleaved, so drift in machine load hits both samples alike.
        if (i % 2) near.push(await timed(nearMiss));
        else far.push(await timed(short));
      }
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
      const [nearMedian, farMedian] = [median(near), median(far)];
      ctx.diagnostic(`median 401 near-miss ${nearMedian.toFixed(3)} ms, short ${farMedian.toFixed(3)} ms`);
      // A byte-by-byte comparison leaks nanoseconds per byte; this only guards against gross differences
      // (e.g. a lookup that does real work only for plausible tokens), loosely enough not to flake.
      assert.ok(
        Math.abs(nearMedian - farMedian) < Math.max(0.5, 0.5 * Math.min(nearMedian, farMedian)),
        `median near-miss ${nearMedian.toFixed(3)} ms vs short ${farMedian.toFixed(3)} ms`,
      );
    } finally {
      client.close();
      await t.close();
    }
  });
});
