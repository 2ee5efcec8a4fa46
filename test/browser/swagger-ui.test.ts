import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { launchChromium, type HeadlessBrowser } from '../support/browser';
import { waitForJob } from '../support/jobs';
import { makeSites } from '../support/sample-sites';
import { startTestApp, tempDir, TOKENS, type TestApp } from '../support/test-app';

interface LiveResponse {
  status: number;
  body: Record<string, unknown>;
  /** `name: value` lines as the UI lists them. */
  headers: string[];
}

/** One operation's block; Swagger UI gives it the id `operations-<tag>-<operationId>`. */
function operation(page: Page, tag: string, operationId: string): Locator {
  return page.locator(`#operations-${tag}-${operationId}`);
}

/** Expands the operation and presses "Try it out", as a person would. */
async function tryItOut(op: Locator): Promise<void> {
  await op.locator('.opblock-summary').first().click();
  await op.locator('button.try-out__btn', { hasText: 'Try it out' }).click();
  await op.locator('button.execute').waitFor();
}

/** Presses "Execute" and reads the server response the UI renders (after clearing the previous one). */
async function execute(op: Locator): Promise<LiveResponse> {
  const row = op.locator('.live-responses-table tr.response');
  if ((await row.count()) > 0) {
    await op.locator('button.btn-clear').click();
    await row.waitFor({ state: 'detached' });
  }
  await op.locator('button.execute').click();
  await row.locator('.highlight-code code').first().waitFor();
  const status = Number((await row.locator('td.response-col_status').textContent())?.trim());
  const body = JSON.parse((await row.locator('.highlight-code code').first().textContent()) ?? '') as Record<
    string,
    unknown
  >;
  const headers = (await row.locator('.headerline').allTextContents()).map((line) => line.trim());
  return { status, body, headers };
}

/** The operation from its title down to the server response the UI shows (not the documented examples below). */
function responseOf(op: Locator): { from: Locator; through: Locator } {
  return { from: op, through: op.locator('.live-responses-table') };
}

function header(response: LiveResponse, name: string): string | undefined {
  const line = response.headers.find((entry) => entry.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

describe('Swagger UI at /docs in headless Chromium', { timeout: 600_000 }, () => {
  let t: TestApp | undefined;
  let browser: HeadlessBrowser | undefined;
  let docsUrl = '';
  let root = '';

  before(async () => {
    root = tempDir('apiscp-swagger-ui-');
    t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target` }, root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.example' }]);
    writeFileSync(join(t.config.virtualRoot, 'site1', 'shadow', 'index.html'), '<h1>one.example</h1>\n');
    await t.app.listen(0, '127.0.0.1');
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    docsUrl = `http://127.0.0.1:${port}/docs`;
    browser = await launchChromium();
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await t?.close();
    }
  });

  /** The browser's page; a failed step leaves a screenshot of what the page showed. */
  async function step(name: string, body: (page: Page) => Promise<void>): Promise<void> {
    assert.ok(browser, 'the browser started');
    try {
      await body(browser.page);
    } catch (error) {
      await browser.screenshot(`swagger-ui-failed-${name}`).catch(() => undefined);
      throw error;
    }
  }

  it('loads the docs and authorizes with a bearer token', { timeout: 120_000 }, () =>
    step('authorize', async (page) => {
      await page.goto(docsUrl);
      await page.locator('.scheme-container button.authorize').click();
      const modal = page.locator('.modal-ux');
      await modal.locator('#auth-bearer-value').fill(TOKENS.operator);
      await modal.locator('button.authorize', { hasText: 'Authorize' }).click();
      await modal.locator('h6', { hasText: 'Authorized' }).waitFor();
      await modal.locator('button', { hasText: 'Logout' }).waitFor();
      await browser!.screenshot('swagger-ui-authorized', { from: modal.locator('.modal-ux-inner') });
      await modal.locator('button.btn-done').click();
      await modal.waitFor({ state: 'detached' });
      // The lock icons turn to "locked" once a scheme is authorized.
      await page.locator('.scheme-container button.authorize.locked').waitFor();
    }),
  );

  it('lists the sites with "Try it out" on GET /v1/sites', { timeout: 120_000 }, () =>
    step('list-sites', async (page) => {
      const op = operation(page, 'sites', 'Sites_list');
      await tryItOut(op);
      const response = await execute(op);
      assert.equal(response.status, 200, JSON.stringify(response));
      const items = response.body.items as Array<{ id: string; domain: string }>;
      assert.deepEqual(
        items.map((site) => [site.id, site.domain]),
        [['site1', 'one.example']],
      );
      assert.match(header(response, 'content-type') ?? '', /^application\/json/);
      await browser!.screenshot('swagger-ui-sites-list', responseOf(op));
    }),
  );

  it('starts a backup of site1 from the UI and the job succeeds', { timeout: 300_000 }, async () => {
    let jobId = '';
    await step('start-backup', async (page) => {
      const op = operation(page, 'backups', 'Backups_start');
      await tryItOut(op);
      await op.locator('tr[data-param-name="site"] input').fill('site1');
      await op.locator('textarea.body-param__text').fill('{"level":"full"}');
      const response = await execute(op);
      assert.equal(response.status, 202, JSON.stringify(response));
      jobId = String(response.body.id);
      assert.match(jobId, /^[0-9a-f-]{36}$/, JSON.stringify(response.body));
      assert.equal(response.body.site, 'site1');
      assert.equal(response.body.level, 'full');
      assert.equal(header(response, 'location'), `/v1/jobs/${jobId}`);
      await browser!.screenshot('swagger-ui-backup-started', responseOf(op));
    });
    // The outcome comes from the API itself, not from what the page shows.
    const job = await waitForJob(t!, jobId);
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const chain = readdirSync(join(root, 'target', 'site1'));
    assert.ok(
      chain.some((file) => /^duplicity-full\..+\.manifest/.test(file)),
      `a full backup landed in the target: ${chain.join(', ')}`,
    );
  });

  it('shows the problem+json answers to site references that are wrong', { timeout: 120_000 }, () =>
    step('site-errors', async (page) => {
      const op = operation(page, 'sites', 'Sites_get');
      await tryItOut(op);
      // The spec types `{site}` with a pattern, which the UI enforces before sending (`site0`, `..` never leave the
      // browser); a name of the right shape that is still no site reference (an all-digit top-level label) does.
      const cases = [
        { site: 'nope.example', status: 404, code: 'site-not-found', path: '/v1/sites/nope.example' },
        { site: 'shop.123', status: 400, code: 'invalid-site-reference', path: '/v1/sites/shop.123' },
      ];
      for (const expected of cases) {
        await op.locator('tr[data-param-name="site"] input').fill(expected.site);
        const response = await execute(op);
        assert.equal(response.status, expected.status, JSON.stringify(response));
        assert.match(header(response, 'content-type') ?? '', /^application\/problem\+json/);
        assert.equal(response.body.status, expected.status);
        assert.equal(response.body.code, expected.code);
        assert.equal(response.body.type, `urn:apiscp-backup-api:problem:${expected.code}`);
        assert.equal(response.body.instance, expected.path);
        if (expected.code !== 'route-not-found')
          await browser!.screenshot(`swagger-ui-${expected.code}`, responseOf(op));
      }
    }),
  );

  it('never asked for anything outside this machine', () => {
    assert.deepEqual(browser?.externalRequests, []);
  });
});
