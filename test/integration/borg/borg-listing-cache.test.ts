import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { BorgListingCache, commitsBetween } from '../../../src/providers/borg/borg-listing-cache';
import { tempDir } from '../../support/test-app';

/** The commit counting of borg-listing-cache.ts against repositories real borg 1.2 wrote. */
describe('BorgListingCache against a real borg repository', () => {
  const root = tempDir('borg-listing-cache-');
  const repository = join(root, 'repo');
  const source = join(root, 'source');
  const cache = new BorgListingCache();
  const borg = (...args: string[]): void => {
    execFileSync('borg', args, { env: { PATH: process.env.PATH, BORG_BASE_DIR: join(root, 'base') }, stdio: 'pipe' });
  };
  const archive = (name: string) => ({ name, time: new Date().toISOString() });

  before(() => {
    mkdirSync(source);
    writeFileSync(join(source, 'a'), 'a\n');
    borg('init', '--encryption', 'none', repository);
    borg('create', `${repository}::first`, source);
  });

  it('counts one commit for a backup, and two when a delete by hand slipped in before it', async () => {
    const start = (await cache.transactionOf(repository))!;
    borg('create', `${repository}::second`, source);
    const afterBackup = (await cache.transactionOf(repository))!;
    assert.ok(afterBackup.number > start.number);
    assert.equal(await commitsBetween(repository, start, afterBackup), 1);
    borg('delete', `${repository}::first`);
    borg('create', `${repository}::third`, source);
    assert.equal(await commitsBetween(repository, afterBackup, (await cache.transactionOf(repository))!), 2);
  });

  it('adds a backup to the listing it follows, and forgets the listing when anything else committed', async () => {
    let now = (await cache.transactionOf(repository))!;
    cache.remember(repository, now, [archive('second'), archive('third')]);
    assert.deepEqual(
      cache.lookup(repository, now)?.map((a) => a.name),
      ['second', 'third'],
    );
    borg('create', `${repository}::fourth`, source);
    let after = await cache.transactionOf(repository);
    await cache.added(repository, now, after, archive('fourth'));
    assert.deepEqual(
      cache.lookup(repository, after)?.map((a) => a.name),
      ['second', 'third', 'fourth'],
    );

    now = after!;
    borg('delete', `${repository}::second`);
    borg('create', `${repository}::fifth`, source);
    after = await cache.transactionOf(repository);
    await cache.added(repository, now, after, archive('fifth'));
    assert.equal(cache.lookup(repository, after), null, 'listed again: "second" is gone');
  });

  it('tells a repository made again at the same path from the old one at the same transaction number', async () => {
    const again = join(root, 'again');
    borg('init', '--encryption', 'none', again);
    const first = await cache.transactionOf(again);
    cache.remember(again, first!, [archive('gone')]);
    rmSync(again, { recursive: true, force: true });
    borg('init', '--encryption', 'none', again);
    const second = await cache.transactionOf(again);
    assert.equal(first!.number, second!.number, 'the same transaction number');
    assert.equal(cache.lookup(again, second), null);
  });
});
