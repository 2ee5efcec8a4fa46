import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuplicityTarget, localTargetPath } from '../../../src/providers/duplicity/duplicity-target';
import { FakeRunner } from '../../support/fake-runner';

describe('duplicity target listing', () => {
  const root = mkdtempSync(join(tmpdir(), 'duplicity-target-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads a file:/// target with no helper process, regular files only', async () => {
    const target = join(root, 'with space%');
    mkdirSync(join(target, 'subdir'), { recursive: true });
    writeFileSync(join(target, 'duplicity-full.20261129T101010Z.manifest'), 'm');
    writeFileSync(join(target, 'duplicity-full.20261129T101010Z.vol1.difftar.gz'), 'v');
    symlinkSync('/etc/passwd', join(target, 'a-link'));
    const runner = new FakeRunner(() => ({ exitCode: 1 }));
    const names = await new DuplicityTarget(runner.asProcessRunner()).listNames({
      url: `file://${encodeURI(target)}`,
      env: {},
      lockFile: '',
    });
    assert.deepEqual(names.sort(), [
      'duplicity-full.20261129T101010Z.manifest',
      'duplicity-full.20261129T101010Z.vol1.difftar.gz',
    ]);
    assert.equal(runner.requests.length, 0, 'no python helper was started');
  });

  it('answers an empty list for a local target not created yet, as duplicity would create it', async () => {
    const runner = new FakeRunner(() => ({ exitCode: 1 }));
    const names = await new DuplicityTarget(runner.asProcessRunner()).listNames({
      url: `file://${join(root, 'not-yet')}`,
      env: {},
      lockFile: '',
    });
    assert.deepEqual(names, []);
  });

  it('goes through duplicity’s backends for every other scheme', async () => {
    const runner = new FakeRunner(() => ({ stdout: ['["duplicity-full.20261129T101010Z.manifest"]'] }));
    const names = await new DuplicityTarget(runner.asProcessRunner()).listNames({
      url: 'sftp://backup@127.0.0.1:2222/site1',
      env: {},
      lockFile: '',
    });
    assert.deepEqual(names, ['duplicity-full.20261129T101010Z.manifest']);
    assert.equal(runner.requests.length, 1);
    assert.equal(runner.requests[0].args?.at(-1), 'list');
  });

  it('takes only absolute file:/// URLs as local paths', () => {
    assert.equal(localTargetPath('file:///srv/backups/site1'), '/srv/backups/site1');
    assert.equal(localTargetPath('file:///srv/with%20space'), '/srv/with space');
    assert.equal(localTargetPath('file://relative/site1'), undefined);
    assert.equal(localTargetPath('file:///bad%ZZ'), undefined);
    assert.equal(localTargetPath('file:///nul%00byte'), undefined);
    assert.equal(localTargetPath('sftp://host/srv'), undefined);
  });
});
