import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  linkSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { childProcesses, fingerprint, plantSentinel, startSwapRacer } from '../support/hostile-tenant';
import { runJob, waitForJob, type JobBody } from '../support/jobs';
import { processesWhere } from '../support/processes';
import { startTestApp, tempDir, type TestApp } from '../support/test-app';

/** An attribute only the tree outside every site carries: it must never appear in a site's or the server's manifest. */
const OUTSIDE_XATTR = 'user.outside-sentinel';

/**
 * A site owner against backups, the attribute capture included (it reads every file's xattrs and ACLs as root), and
 * against a server backup that an operator pointed into a site (SERVER_BACKUP_EXTRA_PATHS): planted links to files
 * and directories outside, a link to /dev/zero, a FIFO, a hardlink to a root file, and a racer swapping a directory
 * of the site for a link to a directory outside (with the same names, carrying xattrs) hundreds of times while
 * backups run. The manifests must never hold the outside attributes, the outside tree must stay byte-identical, every
 * job must end, and the service must still answer.
 */
describe('security: backups and the attribute capture against a hostile site owner', () => {
  const root = tempDir('sec-backups-');
  const outside = join(root, 'outside');
  const server = join(root, 'server');
  let t: TestApp;
  let sentinel: string[];

  const site = (n: number, rel = ''): string => join(t.config.virtualRoot, `site${n}`, rel);
  const write = (path: string, text: string): void => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
  };
  /** `dirs` directories of `files` files each under `dir`, every one of them carrying `xattr` when given. */
  const tree = (dir: string, dirs: number, files: number, xattr?: string): void => {
    for (let d = 0; d < dirs; d++) {
      for (let f = 0; f < files; f++) write(join(dir, `d${d}`, `f${f}`), `${d}/${f}\n`);
    }
    if (xattr) execFileSync('find', [dir, '-exec', 'setfattr', '-n', xattr, '-v', 'outside', '{}', '+']);
  };
  /** The manifest the newest backup carried: in the site's own `.apiscp-backup-api`, or under DATA_DIR for the server. */
  const manifestOf = (key: string): string =>
    readFileSync(
      key === 'server'
        ? join(t.config.dataPath('duplicity', 'attributes', key), 'attributes.dump')
        : join(t.config.virtualRoot, key, '.apiscp-backup-api', 'attributes.dump'),
      'latin1',
    );
  const untouched = async (): Promise<void> => {
    assert.deepEqual(await fingerprint(outside), sentinel, 'the tree outside every site is unchanged');
    assert.equal((await t.http().get('/readyz')).status, 200, 'the service still answers');
    assert.deepEqual(await childProcesses(), [], 'no tool the jobs ran is left running');
  };
  /** Links, a FIFO, a /dev/zero link and a hardlink to a root-only file, planted in `dir`. */
  const plantTraps = (dir: string): void => {
    mkdirSync(dir, { recursive: true });
    symlinkSync(join(outside, 'secret'), join(dir, 'link-to-secret'));
    symlinkSync(join(outside, 'xattrs'), join(dir, 'link-to-dir'));
    symlinkSync('/dev/zero', join(dir, 'zero'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
  };

  before(async () => {
    await plantSentinel(outside);
    tree(join(outside, 'xattrs'), 10, 50, OUTSIDE_XATTR);
    sentinel = await fingerprint(outside);
    write(join(server, 'var/log/mailer_table'), 'user@example.com site1\n');
    execFileSync('setfattr', ['-n', 'user.server', '-v', 'mailer', join(server, 'var/log/mailer_table')]);
    t = await startTestApp(
      {
        DUPLICITY_TARGET: `file://${root}/target`,
        SERVER_BACKUP_ROOT: server,
        SERVER_BACKUP_EXTRA_PATHS: join(root, 'virtual', 'site3', 'shadow', 'var', 'shared'),
      },
      root,
    );
    for (const n of [1, 2, 3]) {
      write(site(n, 'shadow/var/www/html/index.html'), `site${n}\n`);
      write(site(n, 'info/current/siteinfo'), `domain = site${n}.example\n`);
      execFileSync('setfattr', ['-n', 'user.site', '-v', `site${n}`, site(n, 'shadow/var/www/html/index.html')]);
    }
  });
  after(() => t.close());

  it('planted links, a FIFO and a /dev/zero link: the backup ends, links stay links, nothing outside is read', async () => {
    plantTraps(site(1, 'shadow/var/www/html/traps'));
    const job = await runJob(t, '/v1/sites/site1/backups', { level: 'full' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const manifest = manifestOf('site1');
    assert.match(manifest, /^# file: shadow\/var\/www\/html\/index.html\nuser.site=/m, 'the capture ran');
    assert.ok(!manifest.includes(OUTSIDE_XATTR));
    const point = job.result?.restorePoint as string;
    const restore = await runJob(t, '/v1/sites/site1/restores', {
      restorePoint: point,
      paths: ['shadow/var/www/html'],
    });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const staged = join(restore.result?.destination as string, 'shadow/var/www/html/traps');
    for (const name of ['link-to-secret', 'link-to-dir', 'zero']) {
      assert.ok(lstatSync(join(staged, name)).isSymbolicLink(), `${name} is kept as a link, not what it points to`);
    }
    await untouched();
  });

  it('a racer swapping a site directory for a link to an outside tree with xattrs never gets them into the manifest', async () => {
    tree(site(2, 'shadow/var/www/html/sub'), 20, 100);
    const racer = await startSwapRacer(site(2, 'shadow/var/www/html/sub'), join(outside, 'xattrs'), { maxMs: 120_000 });
    const jobs: JobBody[] = [];
    const manifests: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        jobs.push(await runJob(t, '/v1/sites/site2/backups', { level: i === 0 ? 'full' : 'incremental' }));
        manifests.push(manifestOf('site2'));
      }
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
    }
    for (const job of jobs) assert.equal(job.status, 'succeeded', JSON.stringify(job));
    for (const manifest of manifests) {
      assert.match(manifest, /user.site=/, 'the capture ran');
      assert.ok(!manifest.includes(OUTSIDE_XATTR), 'no attribute of a file outside the site is captured');
    }
    await untouched();
  });

  it('the manifest directory in the site root: a planted link, a tenant-owned directory, a FIFO and a racer never redirect a write', async () => {
    const manifestDir = site(4, '.apiscp-backup-api');
    write(site(4, 'shadow/var/www/html/index.html'), 'site4\n');
    write(site(4, 'info/current/siteinfo'), 'domain = site4.example\n');
    execFileSync('setfattr', ['-n', 'user.site', '-v', 'site4', site(4, 'shadow/var/www/html/index.html')]);
    const refused = async (why: string): Promise<void> => {
      const job = await runJob(t, '/v1/sites/site4/backups', { level: 'full' });
      assert.equal(job.status, 'failed', `${why}: ${JSON.stringify(job)}`);
      assert.equal(job.error?.code, 'unsafe-path', why);
      await untouched();
    };

    symlinkSync(join(outside, 'xattrs'), manifestDir);
    await refused('a link where the directory goes');
    rmSync(manifestDir);
    mkdirSync(manifestDir, { mode: 0o700 });
    execFileSync('chown', ['1000:1000', manifestDir]);
    await refused('a directory another user owns');
    rmSync(manifestDir, { recursive: true });

    mkdirSync(manifestDir, { mode: 0o700 });
    execFileSync('mkfifo', [join(manifestDir, 'attributes.dump')]);
    // Names of a killed capture's temporary file, as a link to outside and a FIFO: removed, never followed or opened.
    symlinkSync(join(outside, 'secret'), join(manifestDir, '.attributes.dump.0123456789ab.tmp'));
    execFileSync('mkfifo', [join(manifestDir, '.attributes.dump.ba9876543210.tmp')]);
    const overFifo = await runJob(t, '/v1/sites/site4/backups', { level: 'full' });
    assert.equal(overFifo.status, 'succeeded', JSON.stringify(overFifo));
    assert.ok(lstatSync(join(manifestDir, 'attributes.dump')).isFile(), 'the FIFO was replaced, never opened');
    assert.deepEqual(
      readdirSync(manifestDir).filter((name) => name.endsWith('.tmp')),
      [],
      'the stale temporaries are gone',
    );
    await untouched();
    assert.match(manifestOf('site4'), /^# file: shadow\/var\/www\/html\/index.html\nuser.site=/m);

    const racer = await startSwapRacer(manifestDir, join(outside, 'xattrs'), { maxMs: 120_000 });
    const jobs: JobBody[] = [];
    try {
      for (let i = 0; i < 4; i++) jobs.push(await runJob(t, '/v1/sites/site4/backups', { level: 'incremental' }));
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
    }
    for (const job of jobs) {
      assert.ok(
        job.status === 'succeeded' || (job.status === 'failed' && job.error?.code === 'unsafe-path'),
        JSON.stringify(job),
      );
    }
    await untouched();
    // What the racer left (directories the service made while the name was free, moved aside) is the tenant's mess.
    for (const name of readdirSync(site(4)))
      if (name.startsWith('.apiscp-backup-api.')) rmSync(site(4, name), { recursive: true });
    const last = await runJob(t, '/v1/sites/site4/backups', { level: 'full' });
    assert.equal(last.status, 'succeeded', JSON.stringify(last));
    const restore = await runJob(t, '/v1/sites/site4/restores', { restorePoint: last.result?.restorePoint as string });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const restored = join(restore.result?.destination as string, 'shadow/var/www/html/index.html');
    assert.equal(
      execFileSync('getfattr', ['--only-values', '-n', 'user.site', restored], { encoding: 'utf8' }),
      'site4',
    );
    await untouched();
  });

  it('the manifest directory moved aside while duplicity runs: the backup keeps the manifest it captured', async () => {
    const manifestDir = site(5, '.apiscp-backup-api');
    write(site(5, 'shadow/var/www/html/index.html'), 'site5\n');
    write(site(5, 'info/current/siteinfo'), 'domain = site5.example\n');
    execFileSync('setfattr', ['-n', 'user.site', '-v', 'site5', site(5, 'shadow/var/www/html/index.html')]);
    const started = await t.http().post('/v1/sites/site5/backups').set(t.auth('operator')).send({ level: 'full' });
    assert.equal(started.status, 202, started.text);
    // `duplicity full` starts once the capture is done, and takes a second to start reading the site.
    const backingUp = (argv: string[]): boolean =>
      argv.some((arg) => arg.endsWith('/duplicity')) && argv.includes('full') && argv.includes(site(5));
    for (;;) {
      if (processesWhere(backingUp).length > 0) break;
      const job = await waitForJob(t, started.body.id, () => true);
      assert.equal(job.finishedAt, null, `the job ended before duplicity was seen: ${JSON.stringify(job)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    renameSync(manifestDir, `${manifestDir}.moved`);
    const job = await waitForJob(t, started.body.id);
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    rmSync(`${manifestDir}.moved`, { recursive: true });
    const restore = await runJob(t, '/v1/sites/site5/restores', {
      restorePoint: job.result?.restorePoint as string,
      paths: ['shadow/var/www/html'],
    });
    assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
    const restored = join(restore.result?.destination as string, 'shadow/var/www/html/index.html');
    assert.equal(
      execFileSync('getfattr', ['--only-values', '-n', 'user.site', restored], { encoding: 'utf8' }),
      'site5',
      'the path restore applied the manifest the backup captured',
    );
    await untouched();
  });

  it('a server backup pointed into a site: traps, a hardlink to a root file and a racer never reach outside', async () => {
    const shared = site(3, 'shadow/var/shared');
    plantTraps(shared);
    linkSync(join(outside, 'victim'), join(shared, 'hardlink-to-victim'));
    tree(join(shared, 'sub'), 20, 100);
    const racer = await startSwapRacer(join(shared, 'sub'), join(outside, 'xattrs'), { maxMs: 120_000 });
    const jobs: JobBody[] = [];
    const manifests: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        jobs.push(await runJob(t, '/v1/server/backups', { level: i === 0 ? 'full' : 'incremental' }));
        manifests.push(manifestOf('server'));
      }
    } finally {
      const { rounds } = await racer.stop();
      assert.ok(rounds >= 100, `the racer swapped ${rounds} times`);
      // The tenant's hardlink raises the victim's link count; it is theirs to remove, not a change by the service.
      rmSync(join(shared, 'hardlink-to-victim'));
    }
    for (const job of jobs) assert.equal(job.status, 'succeeded', JSON.stringify(job));
    for (const manifest of manifests) {
      assert.match(manifest, /var\/log\/mailer_table\nuser.server=/, 'the capture ran');
      assert.ok(!manifest.includes(OUTSIDE_XATTR), 'no attribute of a file outside the site is captured');
    }
    assert.ok(existsSync(join(shared, 'sub')), 'the racer put the directory back');
    await untouched();
  });
});
