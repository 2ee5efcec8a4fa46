import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load-config';
import { identityOf, ProcessIdentityStore } from '../../src/jobs/process-identity';
import { JobRepository } from '../../src/jobs/job.repository';
import { ProviderRegistry } from '../../src/providers/provider-registry';
import { SCAN_CONCURRENCY } from '../../src/restore-points/restore-points.service';
import { fingerprint, plantSentinel } from '../support/hostile-tenant';
import { makeSites } from '../support/sample-sites';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('security: start-up refusals, secrets, recovery and read routes', () => {
  it('refuses a DUPLICITY_TARGET with a password, says how to pass it, and never prints it', () => {
    assert.throws(
      () => loadConfig({ DUPLICITY_TARGET: 'sftp://backup:s3cr3t-pass@backup.example/srv' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const text = error.problems.join('\n');
        assert.match(text, /DUPLICITY_TARGET_PASSWORD_FILE/);
        assert.match(text, /FTP_PASSWORD/);
        assert.doesNotMatch(text, /s3cr3t-pass/);
        assert.doesNotMatch(error.message, /s3cr3t-pass/);
        return true;
      },
    );
    const ok = loadConfig({
      DUPLICITY_TARGET: 'sftp://backup@backup.example/srv',
      DUPLICITY_TARGET_PASSWORD_FILE: '/etc/pw',
    });
    assert.equal(ok.duplicity.targetPasswordFile, '/etc/pw');
  });

  it('refuses raw database directories in SERVER_BACKUP_EXTRA_PATHS however they are spelled', () => {
    const root = tempDir('sec-extra-');
    symlinkSync('/var/lib/mysql', join(root, 'mysql-link'));
    for (const spelled of [
      '/var/lib//mysql/x',
      '/var/lib/mysq?/shop',
      '/var/lib/./mysql',
      '/var/lib',
      '/var/lib/*/ibdata1',
      join(root, 'mysql-link'),
    ]) {
      assert.throws(() => loadConfig({ SERVER_BACKUP_EXTRA_PATHS: spelled }), ConfigError, spelled);
    }
    assert.deepEqual(loadConfig({ SERVER_BACKUP_EXTRA_PATHS: '/etc/exim4' }).serverBackup.extraPaths, ['/etc/exim4']);
  });

  it('start-up empties the private directory of credential files a killed export left', async () => {
    const root = tempDir('sec-private-');
    mkdirSync(join(root, 'data', 'private', 'mysql-abc'), { recursive: true });
    writeFileSync(join(root, 'data', 'private', 'mysql-abc', 'client.cnf'), '[client]\npassword="left behind"\n');
    const t = await startTestApp({}, root);
    try {
      assert.equal(existsSync(join(root, 'data', 'private', 'mysql-abc')), false);
    } finally {
      await t.close();
    }
  });

  it('recovery kills a stored pid only when its start time and boot id match', async () => {
    const root = tempDir('sec-recover-');
    const first = await startTestApp({}, root);
    const repository = first.app.get(JobRepository);
    const store = new ProcessIdentityStore(first.config.dataPath('pids'));
    const stranger = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    const ours = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    const running = (pid: number) => {
      const job = repository.insert({
        kind: 'backup',
        site: null,
        provider: 'duplicity',
        level: 'full',
        params: {},
        requestedBy: 'test',
      });
      assert.ok(repository.transition(job.id, ['queued'], 'running'));
      repository.savePid(job.id, pid);
      return job.id;
    };
    try {
      // A pid reused by a stranger: the identity stored for it is another process's (other start time).
      const strangerJob = running(stranger.pid!);
      mkdirSync(first.config.dataPath('pids'), { recursive: true });
      writeFileSync(
        join(first.config.dataPath('pids'), `${strangerJob}.json`),
        JSON.stringify({ ...identityOf(stranger.pid!)!, startTicks: '1' }),
      );
      const oursJob = running(ours.pid!);
      store.save(oursJob, ours.pid!);
      await first.app.close();
      const exited = once(ours, 'exit');
      const second = await startTestApp({}, root);
      try {
        await exited;
        assert.equal(alive(stranger.pid!), true, 'the stranger lives');
        assert.equal(second.app.get(JobRepository).get(strangerJob)?.status, 'interrupted');
        assert.equal(second.app.get(JobRepository).get(oursJob)?.status, 'interrupted');
      } finally {
        await second.close();
      }
    } finally {
      stranger.kill('SIGKILL');
      ours.kill('SIGKILL');
    }
  });

  describe('read routes', () => {
    let t: TestApp;
    const outside = join(tempDir('sec-reads-out-'), 'outside');
    let sentinel: string[];
    before(async () => {
      await plantSentinel(outside);
      sentinel = await fingerprint(outside);
      t = await startTestApp({ DUPLICITY_TARGET: 'file:///nonexistent-target' });
      makeSites(
        t.config.virtualRoot,
        Array.from({ length: 12 }, (_, i) => ({ n: i + 1 })),
      );
    });
    after(() => t.close());

    it('GET restore-points answers from the catalog at once; scans run under a small limit, once, and a failure is remembered', async () => {
      const provider = t.app.get(ProviderRegistry).get('duplicity');
      let started = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let allScanned!: () => void;
      const scanned = new Promise<void>((resolve) => (allScanned = resolve));
      const siteCount = 12;
      const real = provider.scanRestorePoints.bind(provider);
      provider.scanRestorePoints = async () => {
        started++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await gate;
          throw new Error('the target does not answer');
        } finally {
          inFlight--;
          if (started === siteCount && inFlight === 0) allScanned();
        }
      };
      try {
        const sites = Array.from({ length: siteCount }, (_, i) => `site${i + 1}`);
        const burst = await Promise.all(
          [...sites, ...sites, ...sites].map((site) =>
            t.http().get(`/v1/sites/${site}/restore-points`).set(t.auth('monitor')),
          ),
        );
        for (const res of burst) {
          assert.equal(res.status, 200, res.text);
          assert.deepEqual(res.body.items, []);
          assert.ok(['scanning', 'not-yet-scanned'].includes(res.body.listings[0].state), res.text);
        }
        assert.ok(started <= SCAN_CONCURRENCY, `${started} scans started at once`);
        release();
        await scanned;
        await new Promise((resolve) => setImmediate(resolve));
        await t.http().get('/readyz').expect(200);
        // Every site scanned exactly once, never more than SCAN_CONCURRENCY together.
        assert.equal(started, sites.length);
        assert.ok(maxInFlight <= SCAN_CONCURRENCY);
        const again = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200);
        assert.equal(again.body.listings[0].state, 'scan-failed');
        assert.match(again.body.listings[0].error, /does not answer/);
        assert.equal(started, sites.length, 'a remembered failure starts no new scan');
      } finally {
        provider.scanRestorePoints = real;
      }
    });

    it('an export listing never follows a planted manifest link, never hangs on a FIFO, and /readyz keeps answering', async () => {
      const dir = join(t.config.virtualRoot, 'site2', 'shadow/var/backups/databases');
      mkdirSync(join(dir, 'mysql'), { recursive: true, mode: 0o700 });
      mkdirSync(join(dir, 'pgsql'), { recursive: true, mode: 0o700 });
      writeFileSync(
        join(outside, '..', 'foreign-manifest.json'),
        JSON.stringify({
          version: 1,
          engine: 'mysql',
          exports: [
            { file: 'shadow/var/www/index.html', database: 'x', sha256: 'f', createdAt: '2026-01-01T00:00:00Z' },
          ],
        }),
      );
      mkdirSync(join(t.config.virtualRoot, 'site2', 'shadow/var/www'), { recursive: true });
      writeFileSync(join(t.config.virtualRoot, 'site2', 'shadow/var/www/index.html'), 'x');
      symlinkSync(join(outside, '..', 'foreign-manifest.json'), join(dir, 'mysql', 'manifest.json'));
      execFileSync('mkfifo', [join(dir, 'pgsql', 'manifest.json')]);
      // A tenant-owned engine directory is not the service's: ignored whatever it holds.
      const tenantDir = join(t.config.virtualRoot, 'site3', 'shadow/var/backups/databases/mysql');
      mkdirSync(tenantDir, { recursive: true });
      chownSync(tenantDir, 1000, 1000);
      execFileSync('mkfifo', [join(tenantDir, 'manifest.json')]);
      const answers = await Promise.all([
        ...Array.from({ length: 8 }, (_, i) =>
          t
            .http()
            .get(`/v1/sites/site${2 + (i % 2)}/exports`)
            .set(t.auth('monitor')),
        ),
        t.http().get('/readyz'),
      ]);
      for (const res of answers) assert.equal(res.status, 200, res.text);
      for (const res of answers.slice(0, 8)) assert.deepEqual(res.body.items ?? res.body, []);
      assert.deepEqual(await fingerprint(outside), sentinel);
    });
  });
});
