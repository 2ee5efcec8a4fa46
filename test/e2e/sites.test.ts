import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertProblem } from '../support/problem';
import { makeSites } from '../support/sample-sites';
import { startTestApp, type TestApp } from '../support/test-app';

describe('sites', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    makeSites(t.config.virtualRoot, [
      { n: 1, domain: 'example.com', aliases: ['www.example.com'] },
      { n: 2, domain: 'shop.example.net' },
      { n: 3 },
      { n: 10, domain: 'ten.example.org' },
    ]);
  });
  after(() => t.close());

  it('lists discovered sites in site-number order with domains and backup paths', async () => {
    const res = await t.http().get('/v1/sites').set(t.auth('monitor')).expect(200);
    assert.deepEqual(
      res.body.items.map((s: { id: string }) => s.id),
      ['site1', 'site2', 'site3', 'site10'],
    );
    const site1 = res.body.items[0];
    assert.equal(site1.domain, 'example.com');
    assert.deepEqual(site1.domains, ['example.com', 'www.example.com']);
    assert.deepEqual(site1.paths.include, [
      `${t.config.virtualRoot}/site1/shadow`,
      `${t.config.virtualRoot}/site1/info`,
    ]);
    assert.deepEqual(site1.paths.exclude, [`${t.config.virtualRoot}/site1/shadow/var/lib`]);
    assert.equal(res.body.items[2].domain, null);
    assert.equal(res.body.nextCursor, null);
  });

  it('pages with limit and cursor, seeing each site once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string | number> = { limit: 3 };
      if (cursor) query.cursor = cursor;
      const res = await t.http().get('/v1/sites').query(query).set(t.auth('monitor')).expect(200);
      assert.ok(res.body.items.length <= 3);
      seen.push(...res.body.items.map((s: { id: string }) => s.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ['site1', 'site2', 'site3', 'site10']);
  });

  it('filters by domain', async () => {
    const res = await t.http().get('/v1/sites?domain=WWW.example.com').set(t.auth('monitor')).expect(200);
    assert.deepEqual(
      res.body.items.map((s: { id: string }) => s.id),
      ['site1'],
    );
  });

  it('gets a site by id and by any of its domains', async () => {
    for (const ref of ['site2', 'shop.example.net', 'SHOP.EXAMPLE.NET']) {
      const res = await t.http().get(`/v1/sites/${ref}`).set(t.auth('monitor')).expect(200);
      assert.equal(res.body.id, 'site2');
    }
  });

  it('answers 404 for a valid name that does not exist', async () => {
    assertProblem(await t.http().get('/v1/sites/site99').set(t.auth('monitor')), 404, 'site-not-found');
    assertProblem(await t.http().get('/v1/sites/nope.example.com').set(t.auth('monitor')), 404, 'site-not-found');
  });

  it('refuses anything that is not siteN or a domain with 400', async () => {
    const bad = [
      '..',
      '%2e%2e',
      '..%2f..%2fetc',
      'site1%2f..',
      'site0',
      'site01',
      'a%00b',
      'x'.repeat(300),
      'example',
      '-bad-.com',
      'site1;rm',
      '%252e%252e',
    ];
    for (const ref of bad) {
      const res = await t.http().get(`/v1/sites/${ref}`).set(t.auth('monitor'));
      assertProblem(res, 400, 'invalid-site-reference');
    }
  });

  it('validates list query parameters', async () => {
    for (const query of ['limit=0', 'limit=501', 'limit=abc', 'cursor=***', 'domain=..', 'unknown=1']) {
      const res = await t.http().get(`/v1/sites?${query}`).set(t.auth('monitor'));
      assertProblem(res, 400, 'validation-failed');
      assert.ok(Array.isArray(res.body.errors) || res.body.detail, 'names the bad field');
    }
    const res = await t.http().get('/v1/sites?limit=0').set(t.auth('monitor'));
    assert.equal(res.body.errors[0].field, 'query.limit');
    const forged = await t.http().get('/v1/sites?cursor=bm9wZQ').set(t.auth('monitor'));
    assertProblem(forged, 400, 'validation-failed');
  });

  it('sees a site created a moment ago at once by name, and in the list within a second', async () => {
    await t.http().get('/v1/sites').set(t.auth('monitor')).expect(200);
    makeSites(t.config.virtualRoot, [{ n: 42, domain: 'new.example.com' }]);
    const byName = await t.http().get('/v1/sites/new.example.com').set(t.auth('monitor'));
    assert.equal(byName.status, 200, JSON.stringify(byName.body));
    assert.equal(byName.body.id, 'site42');
    const listed = await t.http().get('/v1/sites?domain=new.example.com').set(t.auth('monitor')).expect(200);
    assert.deepEqual(
      listed.body.items.map((site: { id: string }) => site.id),
      ['site42'],
    );
  });

  it('serves the same page body from its cache as a fresh build, with a JSON content type', async () => {
    const first = await t.http().get('/v1/sites?limit=2').set(t.auth('monitor')).expect(200);
    const again = await t.http().get('/v1/sites?limit=2').set(t.auth('monitor')).expect(200);
    assert.match(String(again.headers['content-type']), /^application\/json/);
    assert.equal(again.text, first.text);
    assert.deepEqual(
      first.body.items.map((site: { id: string }) => site.id),
      ['site1', 'site2'],
    );
  });
});
