import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSpec } from '../../src/openapi/write-spec';
import { assertProblem } from '../support/problem';
import { startTestApp, type TestApp } from '../support/test-app';

describe('providers, health and the OpenAPI spec', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  it('lists the enabled providers with levels, availability and version', async () => {
    const res = await t.http().get('/v1/providers').set(t.auth('monitor')).expect(200);
    const duplicity = res.body.find((p: { name: string }) => p.name === 'duplicity');
    assert.deepEqual(duplicity.levels, ['full', 'incremental']);
    assert.equal(duplicity.available, true);
    assert.match(duplicity.version, /^\d+\.\d+/);
    assert.equal(duplicity.default, true);
    assert.ok(duplicity.warnings.some((w: string) => /unencrypted/.test(w)));
  });

  it('readyz reports each dependency and goes 503 when VIRTUAL_ROOT is unreadable', async () => {
    const ok = await t.http().get('/readyz').expect(200);
    assert.equal(ok.body.details.catalog.status, 'up');
    assert.equal(ok.body.details.virtualRoot.status, 'up');
    const other = await startTestApp();
    rmSync(other.config.virtualRoot, { recursive: true });
    const down = await other.http().get('/readyz');
    assertProblem(down, 503, 'not-ready');
    assert.equal(down.body.checks.virtualRoot.status, 'down');
    assert.equal(down.headers['retry-after'], '5');
    await other.close();
  });

  it('GET /metrics passes `promtool check metrics` (no gauge named like a counter, valid names and types)', async () => {
    const res = await t.http().get('/metrics').set(t.auth('monitor')).expect(200);
    assert.match(res.text, /^# HELP apiscp_backup_jobs_started_total /m);
    assert.match(res.text, /^apiscp_backup_process_nodejs_active_handles\{/m);
    // promtool exits non-zero and names each offending metric (it printed `*_total` gauges before).
    const lint = execFileSync('promtool', ['check', 'metrics'], { input: res.text, encoding: 'utf8', stdio: 'pipe' });
    assert.equal(lint.trim(), '');
  });

  it('serves the spec and Swagger UI', async () => {
    const spec = await t.http().get('/openapi.json').expect(200);
    assert.equal(spec.body.openapi.startsWith('3.'), true);
    assert.ok(spec.body.components.securitySchemes.bearer);
    const ui = await t.http().get('/docs/').expect(200);
    assert.match(ui.text, /swagger-ui/);
  });

  it('gives every operation a summary, and every non-public one the bearer scheme', async () => {
    const spec = (await t.http().get('/openapi.json')).body as {
      paths: Record<string, Record<string, { summary?: string; security?: unknown[] }>>;
    };
    for (const [path, operations] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.ok(operation.summary, `${method.toUpperCase()} ${path} has a summary`);
        if (!['/healthz', '/readyz'].includes(path)) {
          assert.deepEqual(operation.security, [{ bearer: [] }], `${method.toUpperCase()} ${path} declares bearer`);
        }
      }
    }
  });

  it('the committed openapi/openapi.json matches the code (run `npm run openapi` after changing the API)', async () => {
    const committed = readFileSync(join(__dirname, '..', '..', '..', 'openapi', 'openapi.json'), 'utf8');
    assert.equal(committed, await generateSpec(), 'openapi/openapi.json drifted from the code: run `npm run openapi`');
  });
});
