import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJob, waitForJob } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';

/** Rounds of back-to-back backups in the suite; `npm run drill` runs more (DRILL_CHAIN_ROUNDS). */
const ROUNDS = Number(process.env.DRILL_CHAIN_ROUNDS ?? 3);

type Point = { id: string; state: string; time: string; level: string };

/**
 * duplicity names a set by the second it starts in: two backups of one small site queued back to back used to make
 * two sets end in one second, and every later duplicity run of the site failed (AssertionError). Here backups are
 * queued in pairs (incremental then full, full then incremental); each succeeds, and every point restores what the
 * site held when it was made. Then a target seeded with that broken state and a killed run's leftovers is repaired.
 */
describe('drill: duplicity chains stay usable (same-second sets, killed runs)', () => {
  let t: TestApp;
  let target: string;
  let index: string;

  const points = async (): Promise<Point[]> => {
    const res = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'));
    assert.equal(res.status, 200, res.text);
    return res.body.items as Point[];
  };
  const restoredIndex = async (point: string): Promise<string> => {
    const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: point, paths: ['shadow'] });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    return readFileSync(join(restore.result?.destination as string, 'shadow', 'index.html'), 'utf8');
  };
  /** A content and an mtime of its own, so an incremental sees the change whatever second it runs in. */
  const writeMarker = (marker: string, second: number): void => {
    writeFileSync(index, `${marker}\n`);
    utimesSync(index, 1_700_000_000 + second, 1_700_000_000 + second);
  };

  before(async () => {
    const root = tempDir('drill-chain-');
    target = join(root, 'target');
    t = await startTestApp({ DUPLICITY_TARGET: `file://${target}`, MAX_CONCURRENT_JOBS: '2' }, root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.example' }]);
    index = join(t.config.virtualRoot, 'site1', 'shadow', 'index.html');
  });
  after(() => t.close());

  it(`${ROUNDS} rounds of two backups queued back to back: all succeed, every point restores exactly`, async (ctx) => {
    const made: Array<{ point: string; marker: string }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const marker = `round ${round}`;
      writeMarker(marker, round);
      const levels = round % 2 === 0 ? ['incremental', 'full'] : ['full', 'incremental'];
      const started = [];
      for (const level of levels) {
        const res = await t
          .http()
          .post('/v1/sites/site1/backups')
          .set(t.auth('operator'))
          .send({ level, exportDatabases: false });
        assert.equal(res.status, 202, res.text);
        started.push(res.body.id as string);
      }
      for (const id of started) {
        const job = await waitForJob(t, id);
        if (job.status !== 'succeeded') {
          const log = await t.http().get(`/v1/jobs/${id}/log`).set(t.auth('operator'));
          assert.fail(`round ${round}: ${JSON.stringify(job)}\njob log:\n${log.text}`);
        }
        made.push({ point: job.result?.restorePoint as string, marker });
      }
    }
    const ids = made.map((m) => m.point);
    assert.equal(new Set(ids).size, ids.length, `every backup made its own point: ${ids.join(', ')}`);
    const listed = await points();
    for (const id of ids) assert.equal(listed.find((p) => p.id === id)?.state, 'complete', id);
    const times = listed.map((p) => p.time);
    assert.equal(new Set(times).size, times.length, 'no two points share a second');
    for (const { point, marker } of made) assert.equal(await restoredIndex(point), `${marker}\n`, point);
    ctx.diagnostic(`${made.length} back-to-back backups, ${made.length} exact restores`);
  });

  it('a target with two sets in one second and a killed run’s leftovers is repaired, then backs up and restores', async () => {
    const full = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(full.status, 'succeeded', JSON.stringify(full));
    writeMarker('before the damage', 100);
    const inc = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
    assert.equal(inc.status, 'succeeded', JSON.stringify(inc));
    const fullTime = (full.result?.restorePoint as string).replace('duplicity-', '');
    const incTime = (inc.result?.restorePoint as string).replace('duplicity-', '');
    const site = join(target, 'site1');
    const archive = join(t.config.dataDir, 'duplicity', 'archive', 'site1');

    // The broken state of the issue: a full set named by the second the incremental ended in (copies of the first full).
    for (const name of readdirSync(site).filter(
      (n) => n.startsWith(`duplicity-full.${fullTime}.`) || n.startsWith(`duplicity-full-signatures.${fullTime}.`),
    )) {
      copyFileSync(join(site, name), join(site, name.replace(fullTime, incTime)));
    }
    // A killed incremental after it: a volume and signatures on the target, no manifest; a .part manifest locally.
    const killed = `${incTime}.to.20991231T235959Z`;
    const incVolume = readdirSync(site).find((n) => n.startsWith(`duplicity-inc.`) && n.includes('.vol1.'))!;
    copyFileSync(join(site, incVolume), join(site, `duplicity-inc.${killed}.vol1.difftar.gz`));
    writeFileSync(join(site, `duplicity-new-signatures.${killed}.sigtar.gz`), 'cut short');
    writeFileSync(join(archive, `duplicity-inc.${killed}.manifest.part`), 'cut short');

    const restorableBefore = (await points()).filter((p) => p.state === 'complete').map((p) => p.id);
    writeMarker('after the repair', 200);
    const next = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
    const notes = (next.result?.notes as string[]).join('\n');
    assert.match(notes, new RegExp(`full set ${incTime} shared its second.*renamed`));
    assert.match(notes, /killed run left without a manifest/);
    assert.deepEqual(
      readdirSync(site).filter((n) => n.includes('20991231T235959Z')),
      [],
      'the killed run’s files are gone from the target',
    );
    assert.ok(!existsSync(join(archive, `duplicity-inc.${killed}.manifest.part`)), 'and from the archive dir');

    const listed = await points();
    const times = listed.map((p) => p.time);
    assert.equal(new Set(times).size, times.length, 'no two points share a second');
    for (const id of restorableBefore.filter((id) => id !== `duplicity-${incTime}`)) {
      assert.equal(listed.find((p) => p.id === id)?.state, 'complete', `${id} stays restorable`);
    }
    assert.equal(await restoredIndex(next.result?.restorePoint as string), 'after the repair\n');
    assert.equal(await restoredIndex(`duplicity-${incTime}`), 'before the damage\n');
    const renamed = listed.find(
      (p) => p.level === 'full' && p.time > new Date(Date.parse(isoOf(incTime))).toISOString(),
    );
    assert.ok(renamed, `the renamed full is listed: ${JSON.stringify(listed)}`);
    assert.equal(renamed.state, 'complete');
    await restoredIndex(renamed.id);
    const after = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(after.status, 'succeeded', JSON.stringify(after));
  });
});

function isoOf(time: string): string {
  return time.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
}
