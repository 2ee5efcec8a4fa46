import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { runJob } from '../support/jobs';
import { siteSelectionByHand } from '../support/duplicity-by-hand';
import { makeSites } from '../support/sample-sites';
import { startTestApp, tempDir } from '../support/test-app';

const run = promisify(execFile);
const FILES = 20_000;

/** The paths a duplicity target's newest point holds (list-current-files), relative to the backup's source. */
async function listed(target: string, archive: string, home: string): Promise<Set<string>> {
  const { stdout } = await run(
    'duplicity',
    ['list-current-files', '--no-encryption', '--archive-dir', archive, '--name', 'list', `file://${target}`],
    { env: { PATH: process.env.PATH, HOME: home }, maxBuffer: 256 * 1024 * 1024 },
  );
  // Lines are `<mtime as ctime()> <path>`: the path starts after the fifth space-separated field.
  return new Set(
    stdout
      .split('\n')
      .filter((line) => /^\w{3} \w{3} /.test(line))
      .map((line) => line.split(' ').filter(Boolean).slice(5).join(' ')),
  );
}

describe('many inodes through the API', () => {
  it(`a ${FILES}-file site: the API's backup holds exactly the files the hand command's backup holds`, async () => {
    const root = tempDir();
    const t = await startTestApp({ DUPLICITY_TARGET: `file://${root}/api-target` }, root);
    try {
      makeSites(t.config.virtualRoot, [{ n: 1, domain: 'inodes.example' }]);
      const site = join(t.config.virtualRoot, 'site1');
      for (let i = 0; i < FILES; i++) {
        const dir = join(site, 'shadow/var/www/html', `d${Math.floor(i / 1000)}`, `e${Math.floor(i / 100)}`);
        if (i % 100 === 0) mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `f${i % 100}.php`), `<?php // ${i}\n`);
      }
      mkdirSync(join(site, 'shadow/var/lib/mysql/shop'), { recursive: true });
      writeFileSync(join(site, 'shadow/var/lib/mysql/shop/t.ibd'), 'raw');

      const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full' });
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      // By hand: the command the README gives an operator for one site.
      await run(
        'duplicity',
        [
          'full',
          '--no-encryption',
          '--archive-dir',
          join(root, 'hand-archive'),
          '--name',
          'site1',
          ...siteSelectionByHand(site),
          site,
          `file://${root}/hand-target`,
        ],
        { env: { PATH: process.env.PATH, HOME: root } },
      );

      const api = await listed(join(root, 'api-target/site1'), join(root, 'list-archive'), root);
      const hand = await listed(join(root, 'hand-target'), join(root, 'list-archive'), root);
      // The API's backup also carries its attribute manifest, in the site's own root-owned directory.
      const manifestDir = '.apiscp-backup-api';
      const own = (path: string) => path === manifestDir || path.startsWith(`${manifestDir}/`);
      const apiFiles = [...api].filter((path) => !own(path));
      assert.ok(hand.size > FILES, `the hand backup lists every file (${hand.size})`);
      assert.deepEqual(
        apiFiles.filter((path) => !hand.has(path)),
        [],
        'nothing in the API backup that the hand backup lacks',
      );
      assert.deepEqual(
        [...hand].filter((path) => !api.has(path)),
        [],
        'nothing in the hand backup that the API backup lacks',
      );
      assert.ok(api.has(`${manifestDir}/attributes.dump`), 'the attribute manifest is in the API backup');
      assert.ok(![...api].some((path) => path.includes('shadow/var/lib')), 'shadow/var/lib is never backed up');
    } finally {
      await t.close();
    }
  });
});
