import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createMysqlDatabase,
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  makeSite,
  uniquePrefix,
} from '../support/databases';
import { childProcesses, fingerprint, plantSentinel, startSwapRacer } from '../support/hostile-tenant';
import { runJob, type JobBody } from '../support/jobs';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';

/** A password a tool prints inside URLs: it must reach no job log, job, or service log line. */
const LEAKED = 'hunter2-url-pass';
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/**
 * A site owner against the ApisCP exporter (ApisCP's `backup_dbs.php` writes into the owner-writable
 * `shadow/home/<user>/mysql_backups/`, and the service then stats and hashes what appeared there). The tenant makes
 * the "new exports" links to root-only files, a hardlink to one, a FIFO and a link to /dev/zero, or swaps the
 * directory for a link to a directory outside holding export-named files, hundreds of times while exports run. No
 * size or checksum of a file outside may reach a response, no read may hang, and the tree outside stays unchanged.
 */
describe('security: the ApisCP exporter against a hostile site owner', () => {
  const root = tempDir('sec-apiscp-');
  const outside = join(root, 'outside');
  const apnscp = join(root, 'apnscp');
  const P = uniquePrefix();
  const db = (n: number, name: string): string => `${P}${n}_${name}`;
  let t: TestApp;
  let sentinel: string[];
  let outsideHashes: string[];
  const home = (n: number): string => join(t.config.virtualRoot, `site${n}`, 'shadow/home/admin');

  before(async () => {
    await ensureDatabaseServers();
    await plantSentinel(outside);
    // Export-named files outside every site, dated in the future so they would count as "new" if ever reached.
    mkdirSync(join(outside, 'dumps'));
    for (const name of ['real', 'link', 'hard', 'fifo', 'zero']) {
      const file = join(outside, 'dumps', `${db(2, name)}-20990101000000.sql.gz`);
      writeFileSync(file, `outside dump of ${name}\n`, { mode: 0o600 });
      utimesSync(file, new Date('2099-01-01'), new Date('2099-01-01'));
    }
    sentinel = await fingerprint(outside);
    outsideHashes = [
      ...['victim', 'secret', 'manifest.json'].map((f) => sha256(readFileSync(join(outside, f)))),
      ...['real', 'link', 'hard', 'fifo', 'zero'].map((name) =>
        sha256(readFileSync(join(outside, 'dumps', `${db(2, name)}-20990101000000.sql.gz`))),
      ),
      sha256(Buffer.alloc(0)),
    ];
    // ApisCP's PHP and backup_dbs.php: site1's owner turns four of the five "exports" into traps as they are made;
    // site2's makes nothing (its directory is swapped by the racer).
    mkdirSync(join(apnscp, 'bin', 'scripts'), { recursive: true });
    writeFileSync(join(apnscp, 'bin', 'php'), '#!/bin/sh\nexec /bin/sh "$@"\n');
    chmodSync(join(apnscp, 'bin', 'php'), 0o755);
    const dir = join(root, 'virtual', 'site1', 'shadow/home/admin/mysql_backups');
    writeFileSync(
      join(apnscp, 'bin', 'scripts', 'backup_dbs.php'),
      [
        'set -e',
        `[ -f ${apnscp}/leak ] && { echo "connecting to mysql://root:${LEAKED}@127.0.0.1/ and sftp://u:${LEAKED}@h/x" >&2; }`,
        `[ -f ${apnscp}/plant ] || { echo nothing exported; exit 0; }`,
        'stamp=$(date +%Y%m%d%H%M%S)',
        `mkdir -p ${dir}`,
        `echo real | gzip > ${dir}/${db(1, 'real')}-$stamp.sql.gz`,
        `ln -s ${join(outside, 'secret')} ${dir}/${db(1, 'link')}-$stamp.sql.gz`,
        `ln ${join(outside, 'victim')} ${dir}/${db(1, 'hard')}-$stamp.sql.gz`,
        // Dated now, so that it counts as new (a tenant could not touch a root file; this makes the case harder).
        `touch ${dir}/${db(1, 'hard')}-$stamp.sql.gz`,
        `mkfifo ${dir}/${db(1, 'fifo')}-$stamp.sql.gz`,
        `ln -s /dev/zero ${dir}/${db(1, 'zero')}-$stamp.sql.gz`,
        'echo exported',
        '',
      ].join('\n'),
    );
    t = await startTestApp(DATABASE_ENV, root);
    for (const n of [1, 2]) {
      makeSite(t.config.virtualRoot, n, { mysql: `${P}${n}_` });
      for (const name of ['real', 'link', 'hard', 'fifo', 'zero']) await createMysqlDatabase(db(n, name));
    }
  });
  after(async () => {
    await t.close();
    await dropDatabasesWithPrefix(P);
  });

  /** Everything a monitor can read about a job and a site's exports, as one text. */
  const visible = async (job: JobBody, site: string): Promise<string> => {
    const jobRes = await t.http().get(`/v1/jobs/${job.id}`).set(t.auth('monitor'));
    const log = await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor'));
    const listing = await t.http().get(`/v1/sites/${site}/exports`).set(t.auth('monitor'));
    assert.equal(listing.status, 200, listing.text);
    return `${jobRes.text}\n${log.text}\n${listing.text}`;
  };
  const untouched = async (): Promise<void> => {
    assert.deepEqual(await fingerprint(outside), sentinel, 'the tree outside every site is unchanged');
    assert.equal((await t.http().get('/readyz')).status, 200, 'the service still answers');
    assert.deepEqual(await childProcesses(), [], 'no tool the jobs ran is left running');
  };

  it('links to root-only files, a hardlink, a FIFO and a /dev/zero link are never stat’ed, hashed or hung on', async () => {
    writeFileSync(join(apnscp, 'plant'), '');
    const job = await runJob(t, '/v1/exports', { sites: ['site1'] });
    rmSync(join(apnscp, 'plant'));
    // The planted hardlink raises the outside file's link count (the tenant's doing, not the service's): remove it.
    for (const name of readdirSync(join(home(1), 'mysql_backups')).filter((n) => n.includes('_hard-'))) {
      rmSync(join(home(1), 'mysql_backups', name));
    }
    assert.equal(job.status, 'failed', JSON.stringify(job));
    const text = await visible(job, 'site1');
    for (const hash of outsideHashes) assert.ok(!text.includes(hash), `a hash of a file outside shows: ${hash}`);
    const listing = await t.http().get('/v1/sites/site1/exports').set(t.auth('monitor'));
    const files = JSON.stringify(listing.body);
    assert.match(files, new RegExp(`${db(1, 'real')}-\\d{14}\\.sql\\.gz`), 'the one real export is recorded');
    for (const name of ['link', 'hard', 'fifo', 'zero']) assert.ok(!files.includes(db(1, name)), name);
    assert.match(job.error?.message ?? '', /^4 database export\(s\) failed/);
    for (const name of ['link', 'hard', 'fifo', 'zero']) assert.ok(job.error?.message.includes(db(1, name)), name);
    await untouched();
  });

  it('a racer swapping mysql_backups for a link to export-named files outside never gets them hashed', async () => {
    mkdirSync(join(home(2), 'mysql_backups'), { recursive: true });
    const racer = await startSwapRacer(join(home(2), 'mysql_backups'), join(outside, 'dumps'), { maxMs: 60_000 });
    const jobs: JobBody[] = [];
    try {
      for (let i = 0; i < 5; i++) jobs.push(await runJob(t, '/v1/exports', { sites: ['site2'] }));
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
    }
    for (const job of jobs) {
      // Nothing outside may be recorded as an export: every database has no new file.
      assert.equal(job.status, 'failed', JSON.stringify(job));
      assert.match(job.error?.message ?? '', /^5 database export\(s\) failed/, JSON.stringify(job));
      const text = await visible(job, 'site2');
      for (const hash of outsideHashes) assert.ok(!text.includes(hash), `a hash of a file outside shows: ${hash}`);
    }
    await untouched();
  });

  it('a URL password a tool prints reaches neither the job log a monitor reads, nor the job, nor the service log', async () => {
    writeFileSync(join(apnscp, 'leak'), '');
    const job = await runJob(t, '/v1/exports', { sites: ['site2'] });
    rmSync(join(apnscp, 'leak'));
    const log = await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor'));
    assert.equal(log.status, 200);
    assert.match(log.text, /mysql:\/\/root:\[REDACTED\]@127\.0\.0\.1\/ and sftp:\/\/u:\[REDACTED\]@h\/x/);
    const text = `${await visible(job, 'site2')}\n${t.logs.join('\n')}`;
    assert.ok(!text.includes(LEAKED), 'the password shows somewhere');
  });
});
