import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertProblem } from '../support/problem';
import { startTestApp, tempDir } from '../support/test-app';

const SCOPE = '/v1/scopes/backups.automatic-database-exports';

describe('scopes without ApisCP (catalog)', () => {
  it('defaults to true, stores changes, and keeps them across a restart', async () => {
    const root = tempDir();
    let t = await startTestApp({}, root);
    const first = await t.http().get(SCOPE).set(t.auth('monitor')).expect(200);
    assert.deepEqual(first.body, { name: 'backups.automatic-database-exports', value: true, source: 'local' });
    const put = await t.http().put(SCOPE).set(t.auth('admin')).send({ value: false }).expect(200);
    assert.equal(put.body.value, false);
    await t.app.close();

    t = await startTestApp({}, root);
    const again = await t.http().get(SCOPE).set(t.auth('monitor')).expect(200);
    assert.equal(again.body.value, false);
    await t.close();
  });

  it('refuses non-boolean values and unknown scopes, changing nothing', async () => {
    const t = await startTestApp();
    try {
      for (const body of [{ value: 'false' }, { value: 0 }, { value: null }, {}, { value: true, extra: 1 }, [true]]) {
        const res = await t.http().put(SCOPE).set(t.auth('admin')).send(body);
        assertProblem(res, 400, 'validation-failed');
        assert.ok(res.body.errors.length > 0);
      }
      const raw = await t
        .http()
        .put(SCOPE)
        .set(t.auth('admin'))
        .set('Content-Type', 'application/json')
        .send('{"value": tru');
      assertProblem(raw, 400, 'malformed-body');
      assert.equal((await t.http().get(SCOPE).set(t.auth('monitor'))).body.value, true);
      assertProblem(await t.http().get('/v1/scopes/no.such.scope').set(t.auth('monitor')), 404, 'scope-not-found');
      assertProblem(
        await t.http().put('/v1/scopes/no.such.scope').set(t.auth('admin')).send({ value: true }),
        404,
        'scope-not-found',
      );
    } finally {
      await t.close();
    }
  });
});

describe('scopes on an ApisCP server (cpcmd)', () => {
  it('reads and writes through APNSCP_ROOT/bin/cpcmd', async () => {
    const root = tempDir();
    const bin = join(root, 'apnscp', 'bin');
    mkdirSync(bin, { recursive: true });
    const state = join(root, 'scope-state');
    const calls = join(root, 'cpcmd-calls');
    writeFileSync(state, 'true');
    // A stand-in for the panel's cpcmd with the same argument shape and output.
    writeFileSync(
      join(bin, 'cpcmd'),
      `#!/bin/sh
echo "$@" >> ${calls}
[ "$1" = "-o" ] && shift 2
case "$1" in
  scope:get) cat ${state}; echo ;;
  scope:set) printf '%s' "$3" > ${state} ;;
  *) echo "unknown command" >&2; exit 1 ;;
esac
`,
    );
    chmodSync(join(bin, 'cpcmd'), 0o755);
    const t = await startTestApp({}, root);
    try {
      const got = await t.http().get(SCOPE).set(t.auth('monitor')).expect(200);
      assert.deepEqual(got.body, { name: 'backups.automatic-database-exports', value: true, source: 'apiscp' });
      const put = await t.http().put(SCOPE).set(t.auth('admin')).send({ value: false }).expect(200);
      assert.equal(put.body.value, false);
      assert.equal(put.body.source, 'apiscp');
      assert.equal(readFileSync(state, 'utf8'), 'false');
      assert.match(readFileSync(calls, 'utf8'), /scope:set backups\.automatic-database-exports false/);
    } finally {
      await t.close();
    }
  });

  it('answers 502 with the reason when cpcmd fails', async () => {
    const root = tempDir();
    const bin = join(root, 'apnscp', 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'cpcmd'), '#!/bin/sh\necho "ERROR: apnscp is not running" >&2\nexit 1\n');
    chmodSync(join(bin, 'cpcmd'), 0o755);
    const t = await startTestApp({}, root);
    try {
      const res = await t.http().get(SCOPE).set(t.auth('monitor'));
      assertProblem(res, 502, 'scope-store-failed');
      assert.match(res.body.detail, /apnscp is not running/);
    } finally {
      await t.close();
    }
  });
});
