import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SiteDirectory } from '../../src/sites/site-directory';
import { assertProblem } from '../support/problem';
import { startTestApp, type TestApp } from '../support/test-app';

describe('HTTP errors are problem+json', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ BODY_LIMIT: '1kb' });
  });
  after(() => t.close());

  it('unknown route: 404', async () => {
    assertProblem(await t.http().get('/v1/nothing-here').set(t.auth('admin')), 404, 'route-not-found');
    assertProblem(await t.http().get('/'), 404, 'route-not-found');
  });

  it('wrong method on a known route: 405 with Allow', async () => {
    const res = await t.http().delete('/v1/scopes/backups.automatic-database-exports').set(t.auth('admin'));
    assertProblem(res, 405, 'method-not-allowed');
    assert.equal(res.headers.allow, 'GET, HEAD, PUT');
    assertProblem(await t.http().post('/v1/sites/site1').set(t.auth('admin')), 405, 'method-not-allowed');
  });

  it('body too large: 413', async () => {
    const res = await t
      .http()
      .put('/v1/scopes/backups.automatic-database-exports')
      .set(t.auth('admin'))
      .send({ value: true, padding: 'x'.repeat(4096) });
    assertProblem(res, 413, 'payload-too-large');
  });

  it('malformed JSON: 400', async () => {
    const res = await t
      .http()
      .put('/v1/scopes/backups.automatic-database-exports')
      .set(t.auth('admin'))
      .set('Content-Type', 'application/json')
      .send('{"value":');
    assertProblem(res, 400, 'malformed-body');
  });

  it('an unexpected error: 500 with an error id that is in the log, and no stack trace', async () => {
    const directory = t.app.get(SiteDirectory);
    const original = directory.list.bind(directory);
    directory.list = () => Promise.reject(new Error('disk on fire at /secret/path'));
    try {
      const res = await t.http().get('/v1/sites').set(t.auth('monitor'));
      assertProblem(res, 500, 'internal');
      assert.match(res.body.errorId, /^[0-9a-f-]{36}$/);
      assert.ok(!res.text.includes('disk on fire'), 'the internal message stays in the log');
      assert.ok(t.logs.some((line) => line.includes(res.body.errorId) && line.includes('disk on fire')));
    } finally {
      directory.list = original;
    }
  });

  it('echoes a request id on every response', async () => {
    const res = await t.http().get('/healthz').set('X-Request-Id', 'abc-123');
    assert.equal(res.headers['x-request-id'], 'abc-123');
    const generated = await t.http().get('/healthz').set('X-Request-Id', 'bad id with spaces');
    assert.match(generated.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  });
});

describe('request bodies', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  it('a body that is not JSON is a 415 and starts nothing', async () => {
    const res = await t
      .http()
      .put('/v1/scopes/backups.automatic-database-exports')
      .set(t.auth('admin'))
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('value=false');
    assertProblem(res, 415, 'unsupported-media-type');
    assert.equal(
      (await t.http().get('/v1/scopes/backups.automatic-database-exports').set(t.auth('monitor'))).body.value,
      true,
    );
  });

  it('JSON that is not an object of the right shape is a 400', async () => {
    for (const body of ['[]', '"x"', 'null', '{"value":{"nested":true}}']) {
      const res = await t
        .http()
        .put('/v1/scopes/backups.automatic-database-exports')
        .set(t.auth('admin'))
        .set('Content-Type', 'application/json')
        .send(body);
      assert.equal(res.status, 400, `${body}: ${res.text}`);
      assert.match(String(res.headers['content-type']), /problem\+json/);
    }
  });
});

describe('requests the HTTP parser rejects', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await startTestApp();
    const server = t.app.getHttpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => t.close());

  /** Sends raw bytes and returns everything the server writes before it closes the connection. */
  function rawExchange(bytes: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.write(bytes);
    });
  }

  function parse(raw: string): { status: number; contentType: string; body: Record<string, unknown> } {
    const [head, body] = raw.split('\r\n\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const contentType = /content-type: ([^\r]+)/i.exec(head)?.[1] ?? '';
    return { status, contentType, body: JSON.parse(body) as Record<string, unknown> };
  }

  it('a broken request line is a problem+json 400, not a bare one', async () => {
    const res = parse(await rawExchange('GARBAGE / nonsense\r\n\r\n'));
    assert.equal(res.status, 400);
    assert.equal(res.contentType, 'application/problem+json');
    assert.equal(res.body.code, 'malformed-request');
  });

  it('headers past the size limit are a problem+json 431', async () => {
    const res = parse(await rawExchange(`GET /v1/sites HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    assert.equal(res.status, 431);
    assert.equal(res.contentType, 'application/problem+json');
    assert.equal(res.body.code, 'headers-too-large');
  });

  it('the server keeps answering afterwards', async () => {
    const res = await t.http().get('/healthz');
    assert.equal(res.status, 200);
  });
});
