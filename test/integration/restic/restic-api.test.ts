import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESTIC_TAG } from '../../../src/providers/restic/restic-output';
import { holdResticLock, writeSecretFile } from '../../support/deduplicating-engines';
import { describeDeduplicatingEngine } from '../../support/deduplicating-engine-suite';
import { runJob, type JobBody } from '../../support/jobs';
import { addSampleSite } from '../../support/site-tree';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';

const SECRET = 'restic-secret-correct-horse-battery';

/** restic 0.14 with a real repository on this machine, driven through the HTTP API. */
describeDeduplicatingEngine({
  provider: 'restic',
  secret: SECRET,
  lockedCode: 'restic-repository-locked',
  wrongSecretCode: 'restic-wrong-password',
  env: (root) => ({
    RESTIC_REPOSITORY: join(root, 'repo'),
    RESTIC_PASSWORD_FILE: writeSecretFile(join(root, 'password'), SECRET),
  }),
  wrongSecretEnv: (root) => ({
    RESTIC_REPOSITORY: join(root, 'repo'),
    RESTIC_PASSWORD_FILE: writeSecretFile(join(root, 'wrong-password'), 'not-the-password'),
  }),
  unreachableEnv: (root) => ({
    // A REST server that refuses connections.
    RESTIC_REPOSITORY: 'rest:http://127.0.0.1:1/',
    RESTIC_PASSWORD_FILE: writeSecretFile(join(root, 'password'), SECRET),
  }),
  walksFromOpenedDirectories: false,
  isLocked: (t) => readdirSync(join(t.config.restic.repository, 'locks')).length > 0,
  describeLocks: (t) => {
    const locks = join(t.config.restic.repository, 'locks');
    const holders = readdirSync(locks).map((name) => {
      const size = statSync(join(locks, name)).size;
      try {
        return `${name} (${size} bytes): ${resticByHand(t, ['cat', 'lock', '--no-lock', name]).replace(/\s+/g, ' ')}`;
      } catch (error) {
        return `${name} (${size} bytes): unreadable: ${String(error)}`;
      }
    });
    return `${holders.join('; ')}; live restic processes: ${liveResticPids().join(', ') || 'none'}`;
  },
  holdLock: (t, host) =>
    holdResticLock(t.config.restic.repository, t.config.restic.passwordFile!, join(t.root, 'lock-holder-cache'), host),
});

/** Every running restic process's pid and arguments (a failure message's evidence). */
function liveResticPids(): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        return argv[0]?.endsWith('restic') ? [`${pid} ${argv.slice(1, 3).join(' ')}`] : [];
      } catch {
        return [];
      }
    });
}

/** restic by hand on the test's repository, as an operator would run it beside the service. */
function resticByHand(t: TestApp, args: string[]): string {
  return execFileSync('restic', args, {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: t.root,
      RESTIC_CACHE_DIR: join(t.root, 'hand-cache'),
      RESTIC_REPOSITORY: t.config.restic.repository,
      RESTIC_PASSWORD_FILE: t.config.restic.passwordFile!,
    },
  });
}

/** The restic commands a job ran, from its log ("$ restic <subcommand> ..."). */
async function resticCommandsOf(t: TestApp, job: JobBody): Promise<string[]> {
  const res = await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor')).expect(200);
  return [...res.text.matchAll(/\$ restic (\S+)/g)].map((match) => match[1]);
}

describe('restic: what each backup runs, and a listing that still sees every snapshot', () => {
  let t: TestApp;
  const points = async (): Promise<Array<{ id: string; time: string }>> => {
    const res = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200);
    return res.body.items as Array<{ id: string; time: string }>;
  };

  before(async () => {
    const root = tempDir();
    t = await startTestApp(
      {
        PROVIDERS: 'restic',
        RESTIC_REPOSITORY: join(root, 'repo'),
        RESTIC_PASSWORD_FILE: writeSecretFile(join(root, 'password'), SECRET),
      },
      root,
    );
    await addSampleSite(t.config.virtualRoot);
  });
  after(() => t?.close());

  it('a backup runs restic once (no repository probe, no listing), and its point is the one restic made', async () => {
    const first = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    assert.deepEqual(
      await resticCommandsOf(t, first),
      ['backup', 'init', 'backup'],
      'no repository yet: made, then used',
    );
    const second = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
    assert.deepEqual(await resticCommandsOf(t, second), ['backup']);

    const listed = await points();
    const byHand = JSON.parse(resticByHand(t, ['snapshots', '--json', '--no-lock'])) as Array<{
      id: string;
      time: string;
    }>;
    assert.equal(byHand.length, 2);
    assert.deepEqual(
      listed.map((point) => [point.id, point.time]).sort(),
      byHand.map((snapshot) => [`restic-${snapshot.id.slice(0, 16)}`, new Date(snapshot.time).toISOString()]).sort(),
      'the listing holds exactly what restic holds, at the times restic recorded',
    );
    assert.equal(second.result?.restorePoint, listed[0].id, 'the backup names the point it made, the newest');
    assert.notEqual(listed[0].time, listed[1].time, 'two snapshots of one site never share a second');
  });

  it('a snapshot made by hand appears after the next backup, and one forgotten by hand disappears', async () => {
    const extra = join(t.root, 'by-hand');
    mkdirSync(extra, { recursive: true });
    writeFileSync(join(extra, 'note.txt'), 'made by hand\n');
    const made = JSON.parse(
      resticByHand(t, ['backup', '--json', '--host', 'site1', '--tag', RESTIC_TAG, extra]).trim().split('\n').pop()!,
    ) as { snapshot_id: string };
    const third = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(third.status, 'succeeded', JSON.stringify(third));
    assert.deepEqual(
      await resticCommandsOf(t, third),
      ['backup', 'snapshots'],
      'an unknown snapshot file: restic is asked',
    );
    const handPoint = (await points()).find((point) => point.id.startsWith(`restic-${made.snapshot_id}`));
    assert.ok(handPoint, 'the hand-made snapshot is listed');

    resticByHand(t, ['forget', made.snapshot_id]);
    const fourth = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(fourth.status, 'succeeded', JSON.stringify(fourth));
    assert.deepEqual(await resticCommandsOf(t, fourth), ['backup'], 'a snapshot file gone needs no listing');
    const listed = await points();
    assert.ok(!listed.some((point) => point.id === handPoint.id), 'the forgotten snapshot is gone');
    assert.equal(listed.length, 4);
  });

  it('a repository removed while the service runs is created again by the next backup, which succeeds', async () => {
    rmSync(t.config.restic.repository, { recursive: true, force: true });
    const next = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(next.status, 'succeeded', JSON.stringify(next));
    assert.deepEqual(
      (await points()).map((point) => point.id),
      [next.result?.restorePoint],
    );
  });
});
