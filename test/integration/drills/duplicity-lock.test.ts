import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJob, type JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { duplicityRuns, filesIn, isAlive, randomFile, sha256Of, sleep, waitUntil } from './drill-support';

const SITE_MB = 120;

/** Splits a command line as ProcessRunner.describe writes it (plain words, or single-quoted with '\'' inside). */
function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  const pattern = /'((?:[^']|'\\'')*)'|(\S+)/g;
  for (let m = pattern.exec(line); m; m = pattern.exec(line)) {
    words.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]);
  }
  return words;
}

/** Whether some process holds a POSIX or flock lock on `file` (duplicity's fasteners lock). */
function lockHeld(file: string): boolean {
  if (!existsSync(file)) return false;
  const inode = statSync(file).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((line) => line.split(/\s+/).some((field) => field.endsWith(`:${inode}`)));
}

/**
 * Drill: the archive lock of a duplicity run that died, and of one still alive. duplicity 0.8.22 locks
 * `<archive>/<name>/lockfile` with fcntl (fasteners), so a lockfile nobody holds blocks nothing, and a run killed
 * mid-backup leaves a lockfile, a `.part` manifest and half a volume that the next run cleans up. A live run that
 * holds the lock makes the API's backup fail at once with `duplicity-locked`, and the next one succeeds once it ends.
 */
describe('drill: a duplicity archive lock left behind', () => {
  let t: TestApp;
  let archive: string;
  let lockfile: string;
  let site: string;
  let serviceCommand: string[];
  let foreign: ChildProcess | undefined;
  const finished: JobBody[] = [];

  const backup = async (level: 'full' | 'incremental'): Promise<JobBody> => {
    const job = await runJob(t, '/v1/sites/site1/backups', { level, exportDatabases: false });
    finished.push(job);
    return job;
  };
  const pointsOf = async (): Promise<Array<{ id: string; state: string }>> =>
    (await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor'))).body.items as Array<{
      id: string;
      state: string;
    }>;

  /** The service's own duplicity command line of a finished backup job, without its log fd. */
  const commandOf = async (job: JobBody): Promise<string[]> => {
    const log = (await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor'))).text;
    const line = log.split('\n').find((entry) => /\$ duplicity (full|incremental) /.test(entry));
    assert.ok(line, log);
    const words = splitCommandLine(line.slice(line.indexOf('$ duplicity ') + 2));
    const fd = words.indexOf('--log-fd');
    words.splice(fd, 2);
    // The set time the service gave that run: a later run by hand must take its own (the same time would overwrite
    // the finished full's volumes under their names).
    const time = words.indexOf('--current-time');
    if (time >= 0) words.splice(time, 2);
    return words;
  };

  /** Starts the service's full backup by hand, as a run of a dead service would have been, in a process group of its own. */
  const startForeignRun = (): ChildProcess => {
    const [command, ...args] = serviceCommand;
    const child = spawn(command, ['full', ...args.slice(1)], {
      stdio: 'ignore',
      detached: true,
      env: { PATH: process.env.PATH, HOME: join(t.config.dataDir, 'duplicity'), TMPDIR: t.root },
    });
    foreign = child;
    return child;
  };
  const killForeignRun = async (): Promise<void> => {
    if (!foreign?.pid || !isAlive(foreign.pid)) return;
    const pid = foreign.pid;
    process.kill(-pid, 'SIGKILL');
    await waitUntil('the foreign duplicity to die', () => !isAlive(pid), 10_000);
  };

  before(async () => {
    const root = tempDir('drill-lock-');
    t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/target` }, root);
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'one.example' }]);
    site = join(t.config.virtualRoot, 'site1');
    writeFileSync(join(site, 'shadow', 'index.html'), '<h1>before</h1>\n');
    randomFile(join(site, 'shadow', 'big.bin'), SITE_MB);
    archive = join(t.config.dataDir, 'duplicity', 'archive', 'site1');
    lockfile = join(archive, 'lockfile');
    const first = await backup('full');
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    serviceCommand = await commandOf(first);
  });

  after(async () => {
    await killForeignRun();
    await t?.close();
  });

  it('a lockfile nobody holds, created while the service runs: the next backup succeeds', async () => {
    writeFileSync(lockfile, '');
    writeFileSync(join(site, 'shadow', 'index.html'), '<h1>after a stale lockfile</h1>\n');
    const job = await backup('incremental');
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.result?.level, 'incremental');
  });

  it('a run SIGKILLed mid-backup (lockfile, .part manifest, half a volume): the next backup succeeds and restores', async () => {
    // duplicity names sets by the second: a set started in the same second as the last one trips its own assertions.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    startForeignRun();
    await waitUntil(
      'the hand-started run to write a partial set',
      () =>
        filesIn(archive).some((name) => name.endsWith('.manifest.part')) &&
        filesIn(join(t.root, 'target', 'site1')).some((name) => /^duplicity-full\..*\.vol1\.difftar/.test(name)),
      60_000,
      20,
    );
    await killForeignRun();
    assert.ok(existsSync(lockfile), 'the dead run left its lockfile');
    assert.ok(!lockHeld(lockfile), 'nobody holds it');
    assert.deepEqual(duplicityRuns('site1', t.config.dataDir), []);

    // duplicity sees a change only in a file's whole-second mtime: rewrite it in a later second than the last time.
    await sleep(1100);
    writeFileSync(join(site, 'shadow', 'index.html'), '<h1>after a killed run</h1>\n');
    const job = await backup('incremental');
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const points = await pointsOf();
    for (const earlier of finished.slice(0, -1)) {
      const point = points.find((p) => p.id === earlier.result?.restorePoint);
      assert.equal(point?.state, 'complete', `${String(earlier.result?.restorePoint)} is still complete`);
    }
    const restore = await runJob(t, '/v1/sites/site1/restores', { restorePoint: job.result?.restorePoint });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const restored = restore.result?.destination as string;
    assert.equal(readFileSync(join(restored, 'shadow', 'index.html'), 'utf8'), '<h1>after a killed run</h1>\n');
    assert.equal(await sha256Of(join(restored, 'shadow', 'big.bin')), await sha256Of(join(site, 'shadow', 'big.bin')));
  });

  it('a live run holding the lock: the backup fails at once with duplicity-locked, the next succeeds when it ends', async (ctx) => {
    const holder = startForeignRun();
    await waitUntil('the hand-started run to hold the archive lock', () => lockHeld(lockfile), 30_000, 20);
    // Stopped, it keeps its lock and stays alive however long the refused job takes on a loaded machine (it could
    // otherwise finish its small backup first); SIGKILL below ends it stopped or not.
    assert.ok(holder.pid);
    process.kill(-holder.pid, 'SIGSTOP');
    const started = Date.now();
    const refused = await runJob(t, '/v1/sites/site1/backups', { level: 'incremental', exportDatabases: false });
    const took = Date.now() - started;
    ctx.diagnostic(`locked archive: ${refused.status} [${refused.error?.code}] after ${took} ms`);
    assert.ok(foreign?.pid && isAlive(foreign.pid), 'the other run was still going: the drill is valid');
    assert.equal(refused.status, 'failed', JSON.stringify(refused));
    assert.equal(refused.error?.code, 'duplicity-locked', JSON.stringify(refused.error));
    assert.match(refused.error.message, /Another duplicity process is using this archive/);
    assert.ok(took < 20_000, `refused after ${took} ms`);
    await killForeignRun();

    const job = await backup('incremental');
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const ready = await t.http().get('/readyz');
    assert.equal(ready.status, 200, ready.text);
    const points = await pointsOf();
    for (const earlier of finished) {
      const point = points.find((p) => p.id === earlier.result?.restorePoint);
      assert.equal(point?.state, 'complete', `${String(earlier.result?.restorePoint)} is still complete`);
    }
  });
});
