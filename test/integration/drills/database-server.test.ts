import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { makeSite, uniquePrefix } from '../../support/databases';
import { runJob, waitForJob } from '../../support/jobs';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { dumpRuns, filesIn, PrivateMariadb, sha256Of, waitUntil } from './drill-support';

const BIG_MB = 150;

/**
 * Drill: the MariaDB server crashes (SIGKILL) while an export dumps from it. The job fails within seconds, naming the
 * server and the databases; no partial file and no file with a final name is left; once the server is back the next
 * export succeeds. The server is one of the drill's own (same binary), so the machine's server and any test using it
 * are never disturbed, and it is stopped and removed whatever happens.
 */
describe('drill: the database server stopped during an export', () => {
  const P = uniquePrefix();
  const root = tempDir('drill-dbserver-');
  const server = new PrivateMariadb(tempDir('drill-mariadb-'));
  const big = `${P}big`;
  const small = `${P}small`;
  let t: TestApp;
  let exportDir: string;

  before(async () => {
    await server.install();
    await server.start();
    await server.seedBig(big, BIG_MB);
    await server.sql(`CREATE DATABASE \`${small}\``);
    await server.sql('CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, "kept")', small);
    t = await startTestApp({ ...server.env, DUPLICITY_TARGET: `file://${root}/target` }, root);
    makeSite(t.config.virtualRoot, 1, { mysql: P });
    exportDir = join(t.config.virtualRoot, 'site1', t.config.exports.dir, 'mysql');
  });

  after(async () => {
    await t?.close();
    await server.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  it('crashes mid-dump: the job fails clearly and quickly, nothing partial or final is left', async (ctx) => {
    try {
      const started = await t
        .http()
        .post('/v1/exports')
        .set(t.auth('operator'))
        .send({ sites: ['site1'] });
      assert.equal(started.status, 202, started.text);
      await waitUntil(
        'the dump of the big database to be under way',
        () => {
          const partial = filesIn(exportDir).find((name) => name.endsWith('.partial'));
          return partial && statSync(join(exportDir, partial)).size >= 1024 * 1024 && dumpRuns(big).length > 0;
        },
        60_000,
        20,
      );
      await server.kill();
      const killedAt = Date.now();
      const job = await waitForJob(t, started.body.id as string);
      const took = Date.now() - killedAt;
      ctx.diagnostic(`MariaDB killed: job ${job.status} ${took} ms later: ${job.error?.message}`);

      assert.equal(job.status, 'failed', JSON.stringify(job));
      assert.equal(job.error?.code, 'export-failed');
      assert.ok(took < 30_000, `failed ${took} ms after the crash`);
      assert.match(
        job.error.message,
        new RegExp(`site1/mysql/${big} \\(mariadb-dump failed for MariaDB at ${server.label}`),
      );
      assert.match(job.error.message, /Lost connection|gone away|Can't connect/i);
      const bigStep = job.steps.find((step) => step.name === `export site1/mysql/${big}`);
      assert.equal(bigStep?.status, 'failed', JSON.stringify(job.steps));
      // The database after it finds the server gone too, and says so.
      const smallStep = job.steps.find((step) => step.name === `export site1/mysql/${small}`);
      assert.equal(smallStep?.status, 'failed', JSON.stringify(job.steps));
      assert.match(smallStep.detail ?? '', new RegExp(`MariaDB at ${server.label}`));

      assert.deepEqual(
        filesIn(exportDir).filter((name) => name !== 'manifest.json'),
        [],
        'no partial file and nothing with a final name',
      );
      assert.deepEqual(dumpRuns(big), []);
      assert.deepEqual((await t.http().get('/v1/sites/site1/exports').set(t.auth('monitor'))).body, []);
      assert.equal((await t.http().get('/readyz')).status, 200, 'the service itself stays ready');
    } finally {
      if (!(await server.answers())) await server.start();
    }
  });

  it('once the server is back, the next export succeeds and each file is whole', async () => {
    const job = await runJob(t, '/v1/exports', { sites: ['site1'] });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const files = (await t.http().get('/v1/sites/site1/exports').set(t.auth('monitor'))).body as Array<{
      database: string;
      file: string;
      sha256: string;
    }>;
    assert.deepEqual(files.map((file) => file.database).sort(), [big, small]);
    for (const file of files) {
      const path = join(t.config.virtualRoot, 'site1', file.file);
      assert.equal(await sha256Of(path), file.sha256);
      const text = gunzipSync(readFileSync(path)).toString('latin1');
      assert.match(text.trimEnd().split('\n').pop()!, /^-- Dump completed/);
      if (file.database === small) assert.match(text, /INSERT INTO `notes` VALUES\s*\(1,'kept'\)/);
    }
  });
});
