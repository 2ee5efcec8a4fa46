import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freeListenPort } from '../support/ports';
import { makeSites } from '../support/sample-sites';
import { tempDir, writeTokensFile, TOKENS } from '../support/test-app';
import { eventually } from '../support/wait';

const MAIN = join(__dirname, '..', '..', '..', 'dist', 'main.js');

/** Runs `npm start`'s entry point as a separate process, configured only by the README's environment variables. */
describe('the built service', () => {
  it('starts from environment variables alone and becomes ready', async () => {
    assert.ok(existsSync(MAIN), 'dist/main.js exists (npm run build)');
    const root = tempDir();
    makeSites(join(root, 'virtual'), [{ n: 1, domain: 'example.com' }]);
    const port = String(await freeListenPort());
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        PORT: port,
        HOST: '127.0.0.1',
        VIRTUAL_ROOT: join(root, 'virtual'),
        DATA_DIR: join(root, 'data'),
        API_TOKENS_FILE: writeTokensFile(root),
        DUPLICITY_TARGET: `file://${root}/backups`,
        MAX_CONCURRENT_JOBS: '2',
        NODE_ENV: 'production',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      // Ready when it says so (or dead): start-up on a loaded machine may take a while.
      const ready = await eventually(
        'the service to answer /readyz or exit',
        async () =>
          child.exitCode !== null
            ? 'exited'
            : fetch(`http://127.0.0.1:${port}/readyz`).then(
                (res) => (res.status === 200 ? 'ready' : null),
                () => null,
              ),
        { timeoutMs: 120_000, intervalMs: 100 },
      );
      assert.equal(ready, 'ready', `the service became ready; output:\n${output}`);
      const sites = await fetch(`http://127.0.0.1:${port}/v1/sites`, {
        headers: { Authorization: `Bearer ${TOKENS.monitor}` },
      });
      assert.equal(sites.status, 200);
      // Production logs are JSON, one object per line.
      const firstLine = output.split('\n').find(Boolean)!;
      assert.doesNotThrow(() => JSON.parse(firstLine), `JSON log line: ${firstLine}`);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('refuses to start on a bad configuration, naming each bad variable', async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: 'eighty', MAX_CONCURRENT_JOBS: '0', VIRTUAL_ROOT: 'relative/path' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 78);
    assert.match(stderr, /PORT/);
    assert.match(stderr, /MAX_CONCURRENT_JOBS/);
    assert.match(stderr, /VIRTUAL_ROOT must be an absolute path/);
  });
});
