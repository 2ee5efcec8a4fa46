import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { holdBorgLock, writeSecretFile } from '../../support/deduplicating-engines';
import { runJob } from '../../support/jobs';
import { addSampleSite } from '../../support/site-tree';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { describeDeduplicatingEngine } from '../../support/deduplicating-engine-suite';

const SECRET = 'borg-secret-correct-horse-battery';

/** borg 1.2 with real repositories (one per site) on this machine, driven through the HTTP API. */
describeDeduplicatingEngine({
  provider: 'borg',
  secret: SECRET,
  lockedCode: 'borg-repository-locked',
  wrongSecretCode: 'borg-wrong-passphrase',
  env: (root) => ({
    BORG_REPOSITORY_ROOT: join(root, 'repos'),
    BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'passphrase'), SECRET),
  }),
  wrongSecretEnv: (root) => ({
    BORG_REPOSITORY_ROOT: join(root, 'repos'),
    BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'wrong-passphrase'), 'not-the-passphrase'),
  }),
  unreachableEnv: (root) => ({
    // An ssh server that refuses connections.
    BORG_REPOSITORY_ROOT: 'ssh://backup@127.0.0.1:1/srv/borg',
    BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'passphrase'), SECRET),
  }),
  walksFromOpenedDirectories: true,
  isLocked: (t) => existsSync(join(t.config.borg.repositoryRoot, 'site1', 'lock.exclusive')),
  describeLocks: (t) => {
    const roster = join(t.config.borg.repositoryRoot, 'site1', 'lock.roster');
    return existsSync(roster) ? `lock.roster: ${readFileSync(roster, 'utf8')}` : 'no lock.roster';
  },
  holdLock: (t, host) =>
    holdBorgLock(
      join(t.config.borg.repositoryRoot, 'site1'),
      t.config.borg.passphraseFile!,
      join(t.root, 'lock-holder-borg'),
      host,
    ),
});

/** The listing after a backup (borg-listing-cache.ts): no `borg list` when the repository changed only by the backup. */
describe('borg: the restore points after a backup', () => {
  let t: TestApp;
  let root: string;
  const jobLog = async (id: string): Promise<string> =>
    (await t.http().get(`/v1/jobs/${id}/log`).set(t.auth('monitor')).expect(200)).text;
  const listed = async (): Promise<string[]> =>
    (
      (await t.http().get('/v1/sites/site1/restore-points?provider=borg').set(t.auth('monitor')).expect(200)).body
        .items as Array<{ id: string }>
    ).map((point) => point.id);

  before(async () => {
    root = tempDir();
    t = await startTestApp(
      {
        PROVIDERS: 'borg',
        BORG_REPOSITORY_ROOT: join(root, 'repos'),
        BORG_PASSPHRASE_FILE: writeSecretFile(join(root, 'passphrase'), SECRET),
      },
      root,
    );
    await addSampleSite(t.config.virtualRoot, { largeFileBytes: 1024 });
  });
  after(() => t?.close());

  it('a backup adds its archive to the listing the service had, without listing the repository again', async () => {
    const first = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    // The first listing of a repository asks borg.
    assert.match(await jobLog(first.id), /\$ borg list /);
    const second = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
    assert.doesNotMatch(await jobLog(second.id), /\$ borg list /);
    assert.deepEqual(await listed(), [second.result?.restorePoint, first.result?.restorePoint]);
  });

  it('an archive deleted by hand is gone from the listing after the next backup', async () => {
    const [newest, oldest] = await listed();
    execFileSync('borg', ['delete', `${join(root, 'repos', 'site1')}::${oldest.replace(/^borg-/, '')}`], {
      env: {
        PATH: process.env.PATH,
        BORG_BASE_DIR: join(root, 'borg-by-hand'),
        BORG_PASSCOMMAND: `cat ${join(root, 'passphrase')}`,
      },
    });
    const third = await runJob(t, '/v1/sites/site1/backups', { level: 'full', exportDatabases: false });
    assert.equal(third.status, 'succeeded', JSON.stringify(third));
    assert.match(await jobLog(third.id), /\$ borg list /);
    assert.deepEqual(await listed(), [third.result?.restorePoint, newest]);
  });
});
