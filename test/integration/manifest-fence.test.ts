import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { MANIFEST_FENCE_SCRIPT } from '../../src/providers/fs-attributes/manifest-fence';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { isAlive } from '../support/processes';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';
import { nextWholeSecond } from '../support/wait';
import { startWalkerGate, type WalkerGate } from '../support/walker-gate';

/** The fence helper run directly, with its output lines as they come. */
function startFence(directory: string, allowPids: number[]) {
  const child = spawn('/usr/bin/python3', ['-I', '-S', '-c', MANIFEST_FENCE_SCRIPT]);
  const lines: string[] = [];
  const waiters: Array<[string, () => void]> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const [prefix, wake] of waiters) if (line.startsWith(prefix)) wake();
  });
  child.stdin.write(`${JSON.stringify({ directory, allow_pids: allowPids })}\n`);
  const line = (prefix: string): Promise<void> =>
    lines.some((seen) => seen.startsWith(prefix))
      ? Promise.resolve()
      : new Promise((resolve) => waiters.push([prefix, resolve]));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, lines, line, exited };
}

/** `ls` of `directory` in a child, with its exit and output. */
function listInChild(directory: string) {
  const child = spawn('ls', [directory]);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const done = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, output })),
  );
  return { child, done };
}

describe('the manifest fence (fanotify): holds an engine at the manifest until the capture is done', () => {
  it('holds a listing of the directory until released; the service itself passes; a dead service never lets go', async () => {
    const dir = tempDir('fence-');
    writeFileSync(join(dir, 'attributes.dump'), 'complete\n');
    const fence = startFence(dir, [process.pid]);
    await fence.line('armed');
    // The service's own reads (a stale temporary's clean-up) pass at once.
    assert.deepEqual(await readdir(dir), ['attributes.dump']);
    const engine = listInChild(dir);
    await fence.line(`held ${engine.child.pid}`);
    fence.child.stdin.write('release\n');
    await fence.line('released');
    assert.deepEqual(await engine.done, { code: 0, output: 'attributes.dump\n' });
    await fence.exited;

    const orphan = startFence(dir, [process.pid]);
    await orphan.line('armed');
    const stuck = listInChild(dir);
    await orphan.line(`held ${stuck.child.pid}`);
    // stdin closed without `release`: what a service killed mid-capture leaves. The engine stays where it is...
    orphan.child.stdin.end();
    await orphan.line('orphaned');
    assert.equal(stuck.child.exitCode, null, 'the engine is still held');
    assert.equal(orphan.child.exitCode, null, 'the helper still holds it');
    // ...until the restarted service kills the dead job's processes (the helper among them).
    orphan.child.kill('SIGKILL');
    await orphan.exited;
    assert.equal((await stuck.done).code, 0);
  });

  it('marks the directory the service holds, not the name: a tenant swapping the name for a link moves nothing', async () => {
    const site = tempDir('fence-site-');
    const theirs = tempDir('fence-theirs-');
    const manifestDir = join(site, '.apiscp-backup-api');
    mkdirSync(manifestDir);
    writeFileSync(join(manifestDir, 'attributes.dump'), 'complete\n');
    writeFileSync(join(theirs, 'planted'), 'x\n');
    // As the duplicity provider does: the fence is set through the descriptor it verified.
    const held = openSync(manifestDir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      // Between the service's open and the fence, the tenant renames the directory away and puts a link to a
      // directory of theirs at its name (a fence set by name would now land on theirs).
      renameSync(manifestDir, join(site, 'moved'));
      symlinkSync(theirs, manifestDir);
      const fence = startFence(`/proc/${process.pid}/fd/${held}`, [process.pid]);
      await fence.line('armed');
      // Their directory, reached through the name, is not held...
      assert.deepEqual(await listInChild(manifestDir).done, { code: 0, output: 'planted\n' });
      assert.ok(!fence.lines.some((line) => line.startsWith('held ')), fence.lines.join('\n'));
      // ...the one the service holds still is, under its new name.
      const engine = listInChild(join(site, 'moved'));
      await fence.line(`held ${engine.child.pid}`);
      fence.child.stdin.write('release\n');
      assert.deepEqual(await engine.done, { code: 0, output: 'attributes.dump\n' });
      await fence.exited;
    } finally {
      closeSync(held);
    }
  });
});

/**
 * Through the API: the attribute walker is held inside the site (a test gate on one of its directories), so the
 * capture cannot finish; the engine, started beside it, must wait at the manifest's directory, and the point must
 * carry the attributes as they were at this backup, not the previous manifest.
 */
describe('engines started beside the attribute capture, through the API', () => {
  const root = tempDir('fence-api-');
  let t: TestApp;
  let gate: WalkerGate | undefined;
  const site = (rel = ''): string => join(t.config.virtualRoot, 'site1', rel);
  const slowDir = (): string => site('shadow/var/www/slow');

  before(async () => {
    t = await startTestApp(
      {
        PROVIDERS: 'duplicity,restic',
        DUPLICITY_TARGET: `file://${root}/target`,
        RESTIC_REPOSITORY: join(root, 'restic-repo'),
        RESTIC_PASSWORD_FILE: writeSecret(join(root, 'restic-password')),
      },
      root,
    );
    mkdirSync(site('shadow/var/www/html'), { recursive: true });
    mkdirSync(slowDir(), { recursive: true });
    mkdirSync(site('info/current'), { recursive: true });
    writeFileSync(site('info/current/siteinfo'), 'domain = fence.example\n');
    writeFileSync(site('shadow/var/www/html/index.html'), 'index\n');
    writeFileSync(join(slowDir(), 'a.txt'), 'a\n');
    symlinkSync('index.html', site('shadow/var/www/html/link'));
    setXattr(site('shadow/var/www/html/index.html'), 'one');
    setXattr(site('shadow/var/www/html/link'), 'one');
  });
  after(async () => {
    await gate?.release();
    await t.close();
  });

  /**
   * Starts a backup with the walker held, waits until the job log says the engine waits at the manifest (failing
   * if the engine got past the held directory first, where only an engine ahead of the manifest could be), then lets
   * the walker go and returns the finished job.
   */
  async function backUpWithWalkerHeld(provider: string, engine: string, expectEngineAtGate: boolean): Promise<JobBody> {
    await gate?.release(); // a failed test's, whose job would hold the site
    gate = await startWalkerGate(slowDir());
    const started = await t
      .http()
      .post('/v1/sites/site1/backups')
      .set(t.auth('operator'))
      .send({ level: provider === 'duplicity' ? 'incremental' : 'full', provider });
    assert.equal(started.status, 202, started.text);
    await gate.line((line) => /^held \d+ (python|find)/.test(line));
    for (;;) {
      const log = (await t.http().get(`/v1/jobs/${started.body.id}/log`).set(t.auth('monitor')).expect(200)).text;
      if (new RegExp(`${engine} \\(pid \\d+\\) waits at the manifest's directory`).test(log)) break;
      const passed: string[] = gate.lines.filter((line) => line.startsWith('allowed '));
      if (!expectEngineAtGate) assert.deepEqual(passed, [], `${engine} read the site before the manifest was complete`);
      // An engine that went past the held directory and is gone finished without waiting for the manifest.
      const finished = passed.map((line) => Number(line.split(' ')[1])).filter((pid) => !isAlive(pid));
      assert.deepEqual(finished, [], `${engine} ended before the capture was done: it read an incomplete manifest`);
      const job = await waitForJob(t, started.body.id, () => true);
      assert.equal(job.status, 'running', `the job ended with the walker held: ${JSON.stringify(job)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await gate.release();
    gate = undefined;
    return waitForJob(t, started.body.id);
  }

  it('duplicity: waits at the manifest (it sorts first), and the incremental keeps the attributes changed since the full', async () => {
    const full = await runJob(t, '/v1/sites/site1/backups', { level: 'full', provider: 'duplicity' });
    assert.equal(full.status, 'succeeded', JSON.stringify(full));
    await nextWholeSecond();
    setXattr(site('shadow/var/www/html/index.html'), 'two');
    const incremental = await backUpWithWalkerHeld('duplicity', 'duplicity', false);
    assert.equal(incremental.status, 'succeeded', JSON.stringify(incremental));
    assert.equal(incremental.result?.level, 'incremental');
    const restored = await restoreNewest('duplicity');
    assert.equal(getXattr(join(restored, 'shadow/var/www/html/index.html')), 'two');
  });

  it("restic: reaches the manifest (under DATA_DIR, walked last) before the capture ends, waits, and keeps the link's new attribute", async () => {
    const first = await runJob(t, '/v1/sites/site1/backups', { level: 'full', provider: 'restic' });
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    setXattr(site('shadow/var/www/html/link'), 'two');
    const second = await backUpWithWalkerHeld('restic', 'restic', true);
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
    const restored = await restoreNewest('restic');
    assert.equal(getXattr(join(restored, 'shadow/var/www/html/link')), 'two');
  });

  async function restoreNewest(provider: string): Promise<string> {
    const points = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200);
    const newest = (points.body.items as Array<{ id: string; provider: string }>).find(
      (point) => point.provider === provider,
    );
    assert.ok(newest, `a ${provider} point`);
    const job = await runJob(t, '/v1/sites/site1/restores', { restorePoint: newest.id });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    return job.result?.destination as string;
  }
});

function writeSecret(path: string): string {
  writeFileSync(path, 'fence-test-password\n', { mode: 0o600 });
  return path;
}

function setXattr(path: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', 'trusted.fence', '-v', value, path]);
}

function getXattr(path: string): string {
  return execFileSync('getfattr', ['-h', '--only-values', '-n', 'trusted.fence', path], { encoding: 'utf8' });
}
