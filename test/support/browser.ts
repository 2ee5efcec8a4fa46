import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

/** Debian's `chromium` package; scripts/ensure-test-deps.sh installs it. Playwright's own browser downloads are never used. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags for a root user on a machine without outside network: no sandbox (root), no GPU, and nothing that phones home
 * (without the background-networking flags Chromium keeps retrying update, sync and QUIC connections that never answer).
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where screenshots go: `test-artifacts/` of the directory the tests run from (git-ignored), or TEST_ARTIFACTS_DIR. */
export function artifactsDir(): string {
  const dir = process.env.TEST_ARTIFACTS_DIR ?? join(process.cwd(), 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface HeadlessBrowser {
  context: BrowserContext;
  page: Page;
  /** Requests the page tried to send anywhere but loopback; they are aborted, never sent. */
  externalRequests: string[];
  /**
   * Saves `<artifactsDir>/<name>.png` and returns its path: the whole page, or the part from the top of `from` down to
   * the bottom of `through` (default: `from` itself).
   */
  screenshot: (name: string, part?: { from: Locator; through?: Locator }) => Promise<string>;
  /** Closes the browser and removes its profile; safe to call twice and after a failed launch step. */
  close: () => Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Launches headless Debian Chromium on a new, empty profile directory, with one page open. */
export async function launchChromium(): Promise<HeadlessBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'apiscp-chromium-profile-'));
  let context: BrowserContext | undefined;
  const close = async (): Promise<void> => {
    const open = context;
    context = undefined;
    try {
      await open?.close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  };
  try {
    // A persistent context, because Playwright refuses a --user-data-dir argument and this one is ours to remove.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      timeout: 60_000,
    });
    const externalRequests: string[] = [];
    await context.route('**/*', async (route) => {
      const url = new URL(route.request().url());
      if (url.protocol === 'data:' || url.protocol === 'blob:' || LOOPBACK.has(url.hostname)) {
        await route.continue();
      } else {
        externalRequests.push(url.href);
        await route.abort('blockedbyclient');
      }
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    return {
      context,
      page,
      externalRequests,
      screenshot: async (name, part) => {
        const file = join(artifactsDir(), `${name}.png`);
        await page.screenshot({ path: file, fullPage: true, clip: part && (await documentBox(page, part)) });
        return file;
      },
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/** The rectangle, in document coordinates (what a full-page clip takes), spanning `from` down to `through`. */
async function documentBox(
  page: Page,
  { from, through = from }: { from: Locator; through?: Locator },
): Promise<{ x: number; y: number; width: number; height: number }> {
  const top = await from.boundingBox();
  const bottom = await through.boundingBox();
  if (!top || !bottom) throw new Error('the part to screenshot is not visible');
  // boundingBox is relative to the viewport; the clip of a full-page screenshot is relative to the document.
  const scrollY = await page.evaluate<number>('window.scrollY'); // a string: the tests compile without the DOM lib
  return { x: top.x, y: top.y + scrollY, width: top.width, height: bottom.y + bottom.height - top.y };
}
