import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { allPages, createBackupApiClient, followJob, type BackupApiClient } from '../../clients/typescript/src/index';
import { checkedFetch } from '../support/openapi-validator';
import { makeSites } from '../support/sample-sites';
import { addSampleSite, SITE_TREE } from '../support/site-tree';
import { startTestApp, tempDir, TOKENS, type TestApp } from '../support/test-app';

/**
 * The main flows as an orchestrator writes them with the client generated from the committed spec: page through the
 * sites, back one up, follow the job, list its restore points, restore one to staging; errors come back typed.
 * Every answer also goes through the harness's spec check (checkedFetch).
 */
describe('the generated TypeScript client drives the main flows', () => {
  let t: TestApp;
  let api: BackupApiClient;
  let restorePoint: string;

  before(async () => {
    const root = tempDir();
    // The sites exist before the service starts, as on a server (a listing is a snapshot of a scan).
    const virtualRoot = join(root, 'virtual');
    await addSampleSite(virtualRoot, { largeFileBytes: 256 * 1024 });
    makeSites(virtualRoot, [{ n: 2 }, { n: 3 }, { n: 4 }]);
    t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target` }, root);
    await t.app.listen(0, '127.0.0.1');
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    api = createBackupApiClient({ baseUrl: `http://127.0.0.1:${port}`, token: TOKENS.admin, fetch: checkedFetch });
  });
  after(() => t.close());

  it('pages through every site with cursor and limit, each once, in order', async () => {
    const ids: string[] = [];
    let pages = 0;
    for await (const site of allPages(async (cursor) => {
      pages++;
      const { data, error } = await api.GET('/v1/sites', { params: { query: { limit: 3, cursor } } });
      assert.ok(data, JSON.stringify(error));
      return data;
    })) {
      ids.push(site.id);
    }
    assert.deepEqual(ids, ['site1', 'site2', 'site3', 'site4']);
    assert.equal(pages, 2);
  });

  it('starts a backup, follows it to success and finds its restore point listed', async () => {
    const started = await api.POST('/v1/sites/{site}/backups', {
      params: { path: { site: SITE_TREE.domain } },
      body: { level: 'full', provider: 'duplicity' },
    });
    assert.equal(started.response.status, 202, JSON.stringify(started.error));
    assert.equal(started.response.headers.get('location'), `/v1/jobs/${started.data!.id}`);
    const job = await followJob(api, started.data!.id, { waitSeconds: 30 });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    // The union on `kind` types the result: `restorePoint` is a string here, not `unknown`.
    assert.equal(job.kind, 'backup');
    if (job.kind !== 'backup' || !job.result?.restorePoint) throw new Error(`no restore point: ${JSON.stringify(job)}`);
    restorePoint = job.result.restorePoint;
    assert.equal(job.request.level, 'full');

    const points = await api.GET('/v1/sites/{site}/restore-points', {
      params: { path: { site: 'site1' }, query: { provider: 'duplicity' } },
    });
    assert.ok(points.data, JSON.stringify(points.error));
    assert.deepEqual(
      points.data.items.map((point) => [point.id, point.state, point.chain]),
      [[restorePoint, 'complete', [restorePoint]]],
    );
  });

  it('restores the restore point into staging and the files are there', async () => {
    const started = await api.POST('/v1/sites/{site}/restores', {
      params: { path: { site: 'site1' } },
      body: { restorePoint, paths: ['shadow/var/www/html'] },
    });
    assert.equal(started.response.status, 202, JSON.stringify(started.error));
    const job = await followJob(api, started.data!.id, { waitSeconds: 30 });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    if (job.kind !== 'restore' || !job.result) throw new Error(`not a finished restore: ${JSON.stringify(job)}`);
    assert.equal(job.result.target, 'staging');
    assert.deepEqual(job.result.chain, [restorePoint]);
    const restored = join(job.result.destination, 'shadow/var/www/html/index.php');
    assert.deepEqual(
      readFileSync(restored),
      readFileSync(join(t.config.virtualRoot, 'site1/shadow/var/www/html/index.php')),
    );
  });

  it('answers errors as typed problems: a malformed site, an unknown one, a bad limit', async () => {
    const malformed = await api.GET('/v1/sites/{site}/backups', { params: { path: { site: 'no..such' } } });
    assert.equal(malformed.response.status, 400);
    assert.equal(malformed.error?.code, 'invalid-site-reference');
    assert.equal(malformed.response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    const missing = await api.GET('/v1/sites/{site}/backups', { params: { path: { site: 'nosuch.example' } } });
    assert.equal(missing.response.status, 404);
    assert.equal(missing.error?.code, 'site-not-found');
    const badLimit = await api.GET('/v1/jobs', { params: { query: { limit: 0 } } });
    assert.equal(badLimit.response.status, 400);
    assert.equal(badLimit.error?.code, 'validation-failed');
    assert.deepEqual(
      badLimit.error?.errors?.map((entry) => entry.field),
      ['query.limit'],
    );
  });
});
