import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JobRepository } from '../../../src/jobs/job.repository';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';

/**
 * Where a crash can stop an in-place restore's swap of `shadow` and `info` (restores/site-swap.ts), as the files are
 * left on disk: each step is one rename, so a SIGKILL lands between two of them. `shadow/var/lib` (raw database files,
 * never in a backup) is carried from the live tree into the restored one before `shadow` is swapped.
 */
const CRASH_POINTS = [
  'restored, nothing swapped yet',
  'shadow/var/lib carried into the restored tree',
  'live shadow moved aside',
  'shadow swapped in',
  'live info moved aside',
  'info swapped in, not committed',
  'committed (aside renamed away)',
] as const;
type CrashPoint = (typeof CRASH_POINTS)[number];

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

function move(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  renameSync(from, to);
}

/** The files that matter, relative to the site: its web root, its info and its raw database file. */
function stateOf(site: string): Record<string, string | null> {
  const read = (rel: string) => (existsSync(join(site, rel)) ? readFileSync(join(site, rel), 'utf8') : null);
  return {
    web: read('shadow/var/www/index.html'),
    info: read('info/current/siteinfo'),
    raw: read('shadow/var/lib/mysql/ibdata1'),
  };
}

/**
 * Drill: the service killed while an in-place restore swaps the restored tree into the site. At the next start the
 * restore is interrupted and the site is as it was before the restore (or, when the swap had committed, as restored),
 * always with its raw database files, and no `.restore-*` directory is left.
 */
describe('drill: the service killed during an in-place restore swap', () => {
  const root = tempDir('drill-swap-');
  const virtualRoot = join(root, 'virtual');
  const env = { DUPLICITY_TARGET: `file://${root}/target` };
  const jobs = new Map<CrashPoint, { id: string; site: string }>();
  let second: TestApp | undefined;

  before(async () => {
    const first = await startTestApp(env, root);
    const repository = first.app.get(JobRepository);
    for (const [index, point] of CRASH_POINTS.entries()) {
      const key = `site${index + 1}`;
      const site = join(virtualRoot, key);
      write(join(site, 'shadow/var/www/index.html'), 'live web');
      write(join(site, 'info/current/siteinfo'), 'domain = live.example\n');
      write(join(site, 'shadow/var/lib/mysql/ibdata1'), 'raw database files');
      const job = repository.insert({
        kind: 'restore',
        site: key,
        provider: 'duplicity',
        level: 'full',
        params: { restorePoint: 'duplicity-20261126T000000Z', paths: [], target: 'in-place' },
        requestedBy: 'drill',
        steps: ['restore', 'swap'],
      });
      assert.ok(repository.transition(job.id, ['queued'], 'running'));
      jobs.set(point, { id: job.id, site: key });

      // The restore step's result, then the swap's renames up to the crash point.
      const restored = join(virtualRoot, `.restore-${job.id}`);
      const aside = `${restored}-previous`;
      write(join(restored, 'shadow/var/www/index.html'), 'restored web');
      write(join(restored, 'info/current/siteinfo'), 'domain = restored.example\n');
      const reached = (step: CrashPoint) => CRASH_POINTS.indexOf(point) >= CRASH_POINTS.indexOf(step);
      if (reached('shadow/var/lib carried into the restored tree')) {
        mkdirSync(aside, { recursive: true });
        move(join(site, 'shadow/var/lib'), join(restored, 'shadow/var/lib'));
      }
      if (reached('live shadow moved aside')) move(join(site, 'shadow'), join(aside, 'shadow'));
      if (reached('shadow swapped in')) move(join(restored, 'shadow'), join(site, 'shadow'));
      if (reached('live info moved aside')) move(join(site, 'info'), join(aside, 'info'));
      if (reached('info swapped in, not committed')) move(join(restored, 'info'), join(site, 'info'));
      if (reached('committed (aside renamed away)')) move(aside, `${aside}.discarded`);
    }
    // Not t.close(): that removes the files. The jobs stay running in the catalog, as after a SIGKILL.
    await first.app.close();
    second = await startTestApp(env, root);
  });

  after(async () => {
    await second?.close();
    rmSync(root, { recursive: true, force: true });
  });

  for (const point of CRASH_POINTS) {
    it(`crash after "${point}": interrupted, the site whole with its raw database files, nothing left over`, async () => {
      const { id, site } = jobs.get(point)!;
      const job = (await second!.http().get(`/v1/jobs/${id}`).set(second!.auth('monitor'))).body;
      assert.equal(job.status, 'interrupted', JSON.stringify(job));
      const committed = point === 'committed (aside renamed away)';
      assert.deepEqual(stateOf(join(virtualRoot, site)), {
        web: committed ? 'restored web' : 'live web',
        info: committed ? 'domain = restored.example\n' : 'domain = live.example\n',
        raw: 'raw database files',
      });
      assert.deepEqual(
        readdirSync(virtualRoot).filter((name) => name.includes(id)),
        [],
        'no .restore-* directory is left',
      );
    });
  }
});
