import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJob, type JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { randomFile, sha256Of, sleep, TmpfsMount } from './drill-support';

/** duplicity runs with `--num-retries 2 --backend-retry-delay 3`: a dead target must fail a job within seconds. */
const FAIL_WITHIN_MS = 30_000;

/**
 * Drill: the duplicity target on a real filesystem that turns read-only, then fills up (a 4 MB tmpfs, a 20 MB
 * incompressible file). Each backup fails quickly with a code that says why, the restore points made before stay
 * listed and restorable, and once the target is writable and has room the next backup succeeds.
 */
describe('drill: the backup target read-only or full', () => {
  let t: TestApp;
  let mount: TmpfsMount;
  let site: string;
  let full: JobBody;

  const backup = async (): Promise<{ job: JobBody; ms: number }> => {
    const started = Date.now();
    const job = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
    return { job, ms: Date.now() - started };
  };

  /** The first backup is still listed, complete, and restores what it held. */
  const assertFirstPointIntact = async (): Promise<void> => {
    const points = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items as Array<{
      id: string;
      state: string;
    }>;
    const point = points.find((p) => p.id === full.result?.restorePoint);
    assert.equal(point?.state, 'complete', JSON.stringify(points));
    const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point.id, paths: ['shadow'] });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const restored = join(restore.result?.destination as string, 'shadow', 'index.html');
    assert.equal(readFileSync(restored, 'utf8'), '<h1>first</h1>\n');
  };

  before(async () => {
    const root = tempDir('drill-target-');
    mount = new TmpfsMount(join(root, 'mnt'));
    await mount.mount(4);
    t = await startTestApp({ DUPLICITY_TARGET: `file://${mount.dir}/target` }, root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.example' }]);
    site = join(t.config.virtualRoot, 'site1');
    writeFileSync(join(site, 'shadow', 'index.html'), '<h1>first</h1>\n');
    full = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(full.status, 'succeeded', JSON.stringify(full));
  });

  after(async () => {
    // Unmount before the app's cleanup removes the temporary tree the mount point is in.
    await mount?.unmount();
    await t?.close();
  });

  it('a read-only target: the backup fails quickly and clearly, earlier points stay restorable', async (ctx) => {
    await mount.remount('ro');
    try {
      // duplicity sees a change only in a file's whole-second mtime: rewrite it in a later second.
      await sleep(1100);
      writeFileSync(join(site, 'shadow', 'index.html'), '<h1>second</h1>\n');
      const { job, ms } = await backup();
      assert.equal(job.status, 'failed', JSON.stringify(job));
      ctx.diagnostic(`read-only target: ${job.status} [${job.error?.code}] after ${ms} ms`);
      assert.equal(job.error?.code, 'target-read-only', JSON.stringify(job.error));
      assert.match(job.error.message, /^The backup target is read-only.*Read-only file system/);
      assert.ok(ms < FAIL_WITHIN_MS, `failed after ${ms} ms`);
      assert.equal(job.steps.find((step) => step.name === 'backup')?.status, 'failed');
      await assertFirstPointIntact();
    } finally {
      await mount.remount('rw');
    }
  });

  it('a full target: the backup fails quickly with target-full, earlier points stay restorable', async (ctx) => {
    randomFile(join(site, 'shadow', 'big.bin'), 20);
    const { job, ms } = await backup();
    assert.equal(job.status, 'failed', JSON.stringify(job));
    ctx.diagnostic(`full target: ${job.status} [${job.error?.code}] after ${ms} ms`);
    assert.equal(job.error?.code, 'target-full', JSON.stringify(job.error));
    assert.match(job.error.message, /full.*No space left on device/s);
    assert.ok(ms < FAIL_WITHIN_MS, `failed after ${ms} ms`);
    await assertFirstPointIntact();
  });

  it('with room again, the next backup succeeds and holds what did not fit', async () => {
    await mount.remount('size=64m');
    const { job } = await backup();
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: job.result?.restorePoint });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const restored = restore.result?.destination as string;
    assert.equal(await sha256Of(join(restored, 'shadow', 'big.bin')), await sha256Of(join(site, 'shadow', 'big.bin')));
    assert.equal(readFileSync(join(restored, 'shadow', 'index.html'), 'utf8'), '<h1>second</h1>\n');
    const points = (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items as Array<{
      id: string;
      state: string;
    }>;
    assert.equal(points.find((p) => p.id === full.result?.restorePoint)?.state, 'complete');
    assert.equal((await t.http().get('/readyz')).status, 200);
  });
});
