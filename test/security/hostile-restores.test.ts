import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Clock } from '../../src/common/clock';
import { JobEngine } from '../../src/jobs/job-engine';
import * as siteSwap from '../../src/restores/site-swap';
import { fingerprint, plantSentinel, startSwapRacer } from '../support/hostile-tenant';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { assertProblem } from '../support/problem';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';

/**
 * A site owner against restores: live directories swapped for links to a tree outside every site, a backup taken
 * while a directory was a link, a racer swapping a directory while an in-place restore runs. The outside tree must be
 * byte-identical afterwards, and the service must still answer. Also: the staging lifecycle (delete, expiry, free
 * space), a cancel that comes during the swap, and restore paths that are refused up front.
 */
describe('security: restores against a hostile site owner', () => {
  const root = tempDir('sec-restores-');
  const outside = join(root, 'outside');
  let t: TestApp;
  let sentinel: string[];
  let point: string;

  const site = (n: number, rel = ''): string => join(t.config.virtualRoot, `site${n}`, rel);
  const write = (path: string, text: string): void => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
  };
  const makeSite = (n: number): void => {
    write(site(n, 'shadow/var/www/html/index.html'), `site${n} web\n`);
    write(site(n, 'shadow/var/lib/mysql/ibdata1'), 'raw database files\n');
    write(site(n, 'info/current/siteinfo'), `domain = site${n}.example\n`);
  };
  const untouched = async (): Promise<void> => {
    assert.deepEqual(await fingerprint(outside), sentinel, 'the tree outside every site is unchanged');
    assert.equal((await t.http().get('/readyz')).status, 200, 'the service still answers');
  };
  const backup = async (n: number): Promise<string> => {
    const job = await runJob(t, `/v1/sites/site${n}/backups`, { level: 'full' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    return job.result?.restorePoint as string;
  };
  const restore = (n: number, body: object, role: 'operator' | 'admin' = 'admin'): Promise<JobBody> =>
    runJob(t, `/v1/sites/site${n}/restores`, body, role);

  before(async () => {
    await plantSentinel(outside);
    mkdirSync(join(outside, 'www', 'html'), { recursive: true });
    writeFileSync(join(outside, 'www', 'html', 'index.html'), 'outside web root\n');
    sentinel = await fingerprint(outside);
    t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target` }, root);
    for (const n of [1, 2, 3, 4]) makeSite(n);
    point = await backup(1);
  });
  after(() => t.close());

  it('an in-place restore over a live shadow/var swapped for a link never touches what the link points to', async () => {
    renameSync(site(1, 'shadow/var'), site(1, 'shadow/var.real'));
    symlinkSync(outside, site(1, 'shadow/var'));
    const job = await restore(1, { restorePoint: point, target: 'in-place' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(readFileSync(site(1, 'shadow/var/www/html/index.html'), 'utf8'), 'site1 web\n');
    await untouched();
  });

  it('a path restore through a linked parent is refused and the outside directory stays as it was', async () => {
    const p2 = await backup(2);
    renameSync(site(2, 'shadow/var'), site(2, 'shadow/var.real'));
    symlinkSync(outside, site(2, 'shadow/var'));
    const job = await restore(2, { restorePoint: p2, target: 'in-place', paths: ['shadow/var/www/html'] });
    assert.equal(job.status, 'failed', JSON.stringify(job));
    assert.match(job.error?.message ?? '', /not a plain directory/);
    await untouched();
  });

  it('a backup taken while shadow/var was a link, restored in place, neither deletes outside nor moves the raw database out', async () => {
    renameSync(site(3, 'shadow/var'), site(3, 'shadow/var.real'));
    symlinkSync(outside, site(3, 'shadow/var'));
    const linked = await backup(3);
    // The owner puts the real directory back (with its raw database files) before the restore.
    renameSync(site(3, 'shadow/var'), site(3, 'shadow/var.link'));
    renameSync(site(3, 'shadow/var.real'), site(3, 'shadow/var'));
    const job = await restore(3, { restorePoint: linked, target: 'in-place' });
    assert.equal(job.status, 'failed', JSON.stringify(job));
    assert.equal(readFileSync(site(3, 'shadow/var/lib/mysql/ibdata1'), 'utf8'), 'raw database files\n');
    assert.equal(readFileSync(site(3, 'shadow/var/www/html/index.html'), 'utf8'), 'site3 web\n');
    await untouched();
  });

  it('a racer swapping shadow/var for a link hundreds of times during an in-place restore never redirects it', async () => {
    const p4 = await backup(4);
    const racer = await startSwapRacer(site(4, 'shadow/var'), outside, { maxMs: 60_000 });
    let job: JobBody;
    try {
      job = await restore(4, { restorePoint: p4, target: 'in-place' });
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
    }
    assert.ok(['succeeded', 'failed'].includes(job.status), JSON.stringify(job));
    assert.equal(existsSync(site(4, 'shadow')), true);
    await untouched();
  });

  it('restore paths with a control character, or one inside another, are refused up front', async () => {
    for (const paths of [
      ['shadow/var/www/line\nbreak'],
      ['shadow/var/www/tab\there'],
      ['shadow/var', 'shadow/var/www'],
    ]) {
      const res = await t
        .http()
        .post('/v1/sites/site1/restores')
        .set(t.auth('operator'))
        .send({ restorePoint: point, paths });
      assertProblem(res, 400, 'validation-failed');
    }
  });

  it('a cancel that arrives once the swap has begun ends the job as what happened to the site, not cancelled', async () => {
    const engine = t.app.get(JobEngine);
    const exports = siteSwap as unknown as Record<string, unknown>;
    const original = siteSwap.swapIntoSite;
    exports.swapIntoSite = async (siteRoot: string, restored: string, paths: string[], aside: string) => {
      const jobId = /\.restore-([0-9a-f-]{36})$/.exec(restored)![1];
      engine.cancel(jobId, 'a test, during the swap');
      return original(siteRoot, restored, paths, aside);
    };
    try {
      writeFileSync(site(1, 'shadow/var/www/html/index.html'), 'changed after the backup\n');
      const job = await restore(1, { restorePoint: point, target: 'in-place', paths: ['shadow/var/www/html'] });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      assert.match(String(job.result?.cancelTooLate), /too late/);
      assert.equal(readFileSync(site(1, 'shadow/var/www/html/index.html'), 'utf8'), 'site1 web\n');
    } finally {
      exports.swapIntoSite = original;
    }
  });

  it('staging restores can be deleted, expire after RESTORE_STAGING_TTL_HOURS, and are refused without free space', async () => {
    const first = await restore(1, { restorePoint: point }, 'operator');
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    const staged = first.result?.destination as string;
    assert.ok(existsSync(staged));
    const del = (id: string) => t.http().delete(`/v1/sites/site1/restores/${id}`).set(t.auth('operator'));
    assertProblem(
      await t.http().delete(`/v1/sites/site1/restores/${first.id}`).set(t.auth('monitor')),
      403,
      'forbidden',
    );
    assert.equal((await del(first.id)).status, 204);
    assert.equal(existsSync(staged), false);
    assertProblem(await del(first.id), 404, 'staging-not-found');

    // Expiry: the next restore, 73 hours later, removes the previous staging copy first.
    const second = await restore(1, { restorePoint: point }, 'operator');
    const secondDir = second.result?.destination as string;
    assert.ok(existsSync(secondDir));
    const clock = t.app.get(Clock);
    const realNow = clock.now.bind(clock);
    clock.now = () => new Date(realNow().getTime() + 73 * 3600_000);
    try {
      const third = await restore(1, { restorePoint: point }, 'operator');
      assert.equal(third.status, 'succeeded');
      assert.equal(existsSync(secondDir), false, 'the expired staging copy is gone');
    } finally {
      clock.now = realNow;
    }

    // Free space: a reserve no filesystem can leave refuses the restore before it starts.
    const tight = await startTestApp(
      { DUPLICITY_TARGET: `file://${root}/target`, DATA_DIR_MIN_FREE: '100%' },
      tempDir('sec-restores-full-'),
    );
    try {
      mkdirSync(join(tight.config.virtualRoot, 'site1', 'shadow'), { recursive: true });
      const res = await tight
        .http()
        .post('/v1/sites/site1/restores')
        .set(tight.auth('operator'))
        .send({ restorePoint: point });
      assertProblem(res, 507, 'insufficient-storage');
      assert.match(res.body.detail, /DATA_DIR_MIN_FREE/);
    } finally {
      await tight.close();
    }
  });

  it('the service is still whole: a last staging restore of every site works', async () => {
    const job = await waitForJob(
      t,
      (await t.http().post('/v1/sites/site1/restores').set(t.auth('operator')).send({ restorePoint: point })).body.id,
    );
    assert.equal(job.status, 'succeeded');
    await untouched();
  });
});
