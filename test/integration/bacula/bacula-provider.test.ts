import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AppError } from '../../../src/common/errors/app-error';
import { ErrorCode } from '../../../src/common/errors/error-code';
import { ProcessRunner } from '../../../src/common/process/process-runner';
import type { AppConfig } from '../../../src/config/app-config';
import { loadConfig } from '../../../src/config/load-config';
import { JobFailure } from '../../../src/jobs/job-failure';
import type { BackupSubject, RestorePoint } from '../../../src/providers/backup-provider';
import type { BackupLevel } from '../../../src/jobs/backup-level';
import type { JobContext, JobProgressUpdate } from '../../../src/jobs/job-context';
import { BaculaProvider } from '../../../src/providers/bacula/bacula.provider';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import { RecordingRunner } from '../../support/fake-runner';
import {
  SITE_TREE,
  buildSiteTree,
  diffSnapshots,
  mutateSiteTree,
  snapshotTree,
  type TreeSnapshot,
} from '../../support/site-tree';
import { eventually } from '../../support/wait';

const run = promisify(execFile);

interface TestContext extends JobContext {
  logs: string[];
  updates: JobProgressUpdate[];
  pids: number[];
  abort(): void;
}

function jobContext(workDir: string): TestContext {
  const controller = new AbortController();
  const logs: string[] = [];
  const updates: JobProgressUpdate[] = [];
  const pids: number[] = [];
  return {
    jobId: `test-${Math.random().toString(16).slice(2)}`,
    signal: controller.signal,
    workDir,
    log: (line) => logs.push(line),
    progress: (update) => updates.push(update),
    trackPid: (pid) => pids.push(pid),
    logs,
    updates,
    pids,
    abort: () => controller.abort(new JobFailure('cancelled', 'cancelled by the test')),
  };
}

function siteSubject(siteRoot: string, key: string): BackupSubject {
  return {
    key,
    root: siteRoot,
    include: [join(siteRoot, 'shadow'), join(siteRoot, 'info')],
    exclude: [join(siteRoot, 'shadow/var/lib')],
  };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

async function rejection(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

describe('BaculaProvider against real Bacula 9.6.7 daemons', () => {
  let harness: BaculaHarness;
  let root: string;
  let config: AppConfig;
  let provider: BaculaProvider;
  const runner = new RecordingRunner();
  let destinations = 0;
  const newDestination = async (): Promise<string> => {
    const dir = join(root, 'restores', String(++destinations));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  };
  const work = (): string => mkdtempSync(join(root, 'work-'));

  before(async () => {
    harness = await startBacula();
    root = mkdtempSync(join(tmpdir(), 'bacula-provider-'));
    config = loadConfig({
      ...harness.env,
      VIRTUAL_ROOT: join(root, 'virtual'),
      DATA_DIR: join(root, 'data'),
      PROVIDERS: 'bacula',
      BACULA_TIMEOUT_SECONDS: '20',
      MAX_CONCURRENT_JOBS: '2',
    });
    provider = new BaculaProvider(runner, config);
  });

  after(async () => {
    await harness?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('reports the director available, with its version', async () => {
    const status = await provider.status();
    assert.equal(status.available, true, status.reason);
    assert.equal(status.version, '9.6.7');
  });

  describe('a site backed up full → differential → incremental → incremental', () => {
    const site = (): string => join(root, 'virtual', 'site1');
    const points: { id: string; level: BackupLevel; snapshot: TreeSnapshot }[] = [];
    let listed: RestorePoint[] = [];

    before(async () => {
      await buildSiteTree(site(), { largeFileBytes: 8 * 1024 * 1024, newlineName: true });
      const subject = siteSubject(site(), 'site1');
      const steps: [BackupLevel, number | null][] = [
        ['full', null],
        ['differential', 1],
        ['incremental', 2],
        ['incremental', 3],
      ];
      for (const [level, mutation] of steps) {
        if (mutation !== null) await mutateSiteTree(site(), mutation);
        const context = jobContext(work());
        const outcome = await provider.backup({ subject, level }, context);
        assert.equal(outcome.level, level, `made ${outcome.level} for ${level}: ${outcome.notes.join('; ')}`);
        assert.deepEqual(outcome.warnings, [], `warnings: ${outcome.warnings.join('; ')}`);
        assert.match(outcome.restorePointId ?? '', /^bacula-\d+$/);
        assert.ok((outcome.files ?? 0) > 0);
        assert.ok(context.updates.some((update) => update.percent === 100));
        points.push({
          id: outcome.restorePointId!,
          level,
          snapshot: await snapshotTree(site(), [...SITE_TREE.paths], [...SITE_TREE.exclude]),
        });
      }
      listed = await provider.scanRestorePoints(subject);
    });

    it('wrote the per-site Job and FileSet the director now shows', async () => {
      const shown = await harness.bconsole(['show fileset=apiscp-site1-fs', 'show job=apiscp-site1']);
      assert.match(shown, new RegExp(`I ${site()}/shadow\\n`));
      assert.match(shown, new RegExp(`I ${site()}/info\\n`));
      assert.match(shown, new RegExp(`E ${site()}/shadow/var/lib\\n`));
      assert.match(shown, /O MAXZ6/, 'MD5 signatures, ACLs, xattrs and GZIP');
      assert.match(shown, /Accurate=1/);
    });

    it('lists every backup as a restore point, newest first, with the chain Bacula replays', () => {
      const [full, differential, incremental1, incremental2] = points.map((point) => point.id);
      assert.deepEqual(
        listed.map((point) => [point.id, point.level, point.chain, point.state]),
        [
          [incremental2, 'incremental', [full, differential, incremental1, incremental2], 'complete'],
          [incremental1, 'incremental', [full, differential, incremental1], 'complete'],
          [differential, 'differential', [full, differential], 'complete'],
          [full, 'full', [full], 'complete'],
        ],
      );
      for (const point of listed) {
        assert.equal(point.provider, 'bacula');
        assert.match(point.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        assert.ok(Math.abs(Date.parse(point.time) - Date.now()) < 10 * 60_000, `time ${point.time} is now-ish`);
        assert.ok((point.files ?? 0) > 0);
      }
    });

    it('restores each point to exactly the tree it saved, xattrs and default ACLs included', async () => {
      for (const saved of points) {
        const point = listed.find((candidate) => candidate.id === saved.id)!;
        const destination = await newDestination();
        const context = jobContext(work());
        const outcome = await provider.restore(
          { subject: siteSubject(site(), 'site1'), point, paths: [], destination },
          context,
        );
        assert.deepEqual(outcome.warnings, []);
        assert.deepEqual((await readdir(destination)).sort(), ['info', 'shadow'], 'no staging left behind');
        const restored = await snapshotTree(destination, [...SITE_TREE.paths], [...SITE_TREE.exclude]);
        assert.deepEqual(diffSnapshots(saved.snapshot, restored), [], `restore of ${saved.level} ${saved.id}`);
        const acl = restored.entries.find((entry) => entry.path === SITE_TREE.defaultAclDir)!.acl!;
        assert.ok(
          acl.some((line) => line.startsWith('default:user:1001:')),
          'the default ACL came back',
        );
        assert.ok(
          restored.entries.some((entry) => entry.xattrs.some((line) => line.startsWith('user.fortify='))),
          'the user.fortify xattr came back',
        );
      }
    });

    it('restores only the paths asked for, even with spaces and wildcard characters in their names', async () => {
      const last = listed[0];
      const destination = await newDestination();
      const paths = ['shadow/var/www/html/renamed with spaces.html', 'shadow/var/www/html/wp-content/cache', 'info'];
      const context = jobContext(work());
      await provider.restore({ subject: siteSubject(site(), 'site1'), point: last, paths, destination }, context);
      assert.match(context.logs.join('\n'), /restorejob=apiscp-backup-api-restore/);
      assert.match(
        await harness.bconsole(['llist jobname=RestoreFiles']),
        /No results to list/,
        "the director's own restore job was never used",
      );
      const restored = await snapshotTree(destination, ['shadow', 'info']);
      const files = restored.entries.filter((entry) => entry.type === 'file').map((entry) => entry.path);
      assert.deepEqual(
        files.sort(),
        [
          'info/current/aliases',
          'info/current/siteinfo',
          'shadow/var/www/html/renamed with spaces.html',
          'shadow/var/www/html/wp-content/cache/page-1.html',
          'shadow/var/www/html/wp-content/cache/page-2.html',
          'shadow/var/www/html/wp-content/cache/page-3.html',
        ].sort(),
      );
      const source = points.at(-1)!.snapshot;
      for (const entry of restored.entries.filter((candidate) => candidate.type === 'file')) {
        const original = source.entries.find((candidate) => candidate.path === entry.path)!;
        assert.deepEqual(entry, original, entry.path);
      }
    });

    it('one file is looked up in the catalog by its path, without the restore tree, and comes back exactly', async () => {
      const destination = await newDestination();
      const context = jobContext(work());
      const path = 'shadow/var/www/html/renamed with spaces.html';
      await provider.restore(
        { subject: siteSubject(site(), 'site1'), point: listed[0], paths: [path], destination },
        context,
      );
      assert.ok(
        context.logs.some((line) => /looked up in the catalog/.test(line)),
        context.logs.join('\n'),
      );
      const restored = await snapshotTree(destination, ['shadow']);
      assert.deepEqual(
        restored.entries.filter((entry) => entry.type === 'file').map((entry) => entry.path),
        [path],
      );
      const original = points.at(-1)!.snapshot.entries.find((entry) => entry.path === path);
      assert.deepEqual(
        restored.entries.find((entry) => entry.path === path),
        original,
      );
    });

    it('one directory goes through the restore tree, and comes back whole', async () => {
      const destination = await newDestination();
      const context = jobContext(work());
      const path = 'shadow/var/www/html/wp-content/cache';
      await provider.restore(
        { subject: siteSubject(site(), 'site1'), point: listed[0], paths: [path], destination },
        context,
      );
      assert.ok(!context.logs.some((line) => /looked up in the catalog/.test(line)), context.logs.join('\n'));
      const restored = await snapshotTree(destination, ['shadow']);
      assert.deepEqual(
        restored.entries
          .filter((entry) => entry.type === 'file')
          .map((entry) => entry.path)
          .sort(),
        [1, 2, 3].map((n) => `${path}/page-${n}.html`),
      );
    });

    it('refuses a path that is not in the restore point, naming it', async () => {
      const destination = await newDestination();
      const error = await rejection(() =>
        provider.restore(
          { subject: siteSubject(site(), 'site1'), point: listed[0], paths: ['shadow/nope', 'info'], destination },
          jobContext(work()),
        ),
      );
      assert.ok(error instanceof JobFailure);
      assert.equal(error.code, 'bacula-restore-path-not-found');
      assert.match(error.message, /"shadow\/nope"/);
      assert.doesNotMatch(error.message, /"info"/);
      assert.deepEqual(await readdir(destination), []);
    });

    it('cancels a restore queued from a selection that went wrong, before anything leaves staging', async () => {
      // `cd` into a missing directory leaves `/` current, where `mark <top>` marks the whole tree: the director queues
      // that restore, and the provider must cancel it and keep nothing of it.
      const top = site().split('/')[1];
      const destination = await newDestination();
      const context = jobContext(work());
      const error = await rejection(() =>
        provider.restore(
          { subject: siteSubject(site(), 'site1'), point: listed[0], paths: [`nope/${top}`], destination },
          context,
        ),
      );
      assert.ok(error instanceof JobFailure);
      assert.equal(error.code, 'bacula-restore-path-not-found');
      assert.ok(
        context.logs.some((line) => /^cancelling Bacula JobId \d+: its file selection/.test(line)),
        context.logs.join('\n'),
      );
      assert.deepEqual(await readdir(destination), []);
      const jobs = await harness.bconsole(['list jobs']);
      assert.doesNotMatch(jobs, /\| R\s+\|[^\n]*\| R\s+\|\s*$/m, 'no restore job still running');
    });

    it('a wildcard character in a path name matches only that name', async () => {
      await writeFile(join(site(), 'shadow/tmp/st*r'), 'star\n');
      await writeFile(join(site(), 'shadow/tmp/stXr'), 'not me\n');
      const subject = siteSubject(site(), 'site1');
      const outcome = await provider.backup({ subject, level: 'incremental' }, jobContext(work()));
      const point = (await provider.scanRestorePoints(subject)).find((p) => p.id === outcome.restorePointId)!;
      const destination = await newDestination();
      await provider.restore({ subject, point, paths: ['shadow/tmp/st*r'], destination }, jobContext(work()));
      assert.deepEqual(await readdir(join(destination, 'shadow/tmp')), ['st*r']);
    });
    it('a file deleted before the point is not restored by its name from an older backup', async () => {
      const subject = siteSubject(site(), 'site1');
      await writeFile(join(site(), 'shadow/tmp/short-lived'), 'here for one backup\n');
      await provider.backup({ subject, level: 'incremental' }, jobContext(work()));
      await rm(join(site(), 'shadow/tmp/short-lived'));
      const outcome = await provider.backup({ subject, level: 'incremental' }, jobContext(work()));
      const point = (await provider.scanRestorePoints(subject)).find((p) => p.id === outcome.restorePointId)!;
      const destination = await newDestination();
      const error = await rejection(() =>
        provider.restore({ subject, point, paths: ['shadow/tmp/short-lived'], destination }, jobContext(work())),
      );
      assert.ok(error instanceof JobFailure, String(error));
      assert.equal(error.code, 'bacula-restore-path-not-found');
      assert.deepEqual(await readdir(destination), []);
    });
  });

  it('backs up two sites at the same time, each reloading the director for its own resources', async () => {
    const sites = ['site8', 'site9'].map((key) => ({ key, root: join(root, 'virtual', key) }));
    for (const site of sites) await buildSiteTree(site.root, { largeFileBytes: 4 * 1024 * 1024 });
    const outcomes = await Promise.all(
      sites.map((site) =>
        provider.backup({ subject: siteSubject(site.root, site.key), level: 'full' }, jobContext(work())),
      ),
    );
    assert.deepEqual(
      outcomes.map((outcome) => [outcome.level, outcome.warnings]),
      [
        ['full', []],
        ['full', []],
      ],
    );
    assert.notEqual(outcomes[0].restorePointId, outcomes[1].restorePointId);
  });

  it('says which file the director rejected when its configuration does not load', async () => {
    const broken = join(harness.includeDir, 'zz-broken.conf');
    // An unknown resource type makes the whole reload fail (an unknown keyword inside a resource only logs an error).
    await writeFile(broken, 'Bogus {\n  Name = broken\n}\n');
    try {
      const site = join(root, 'virtual', 'site10');
      await buildSiteTree(site, { largeFileBytes: 1024 });
      const error = await rejection(() =>
        provider.backup({ subject: siteSubject(site, 'site10'), level: 'full' }, jobContext(work())),
      );
      assert.ok(error instanceof JobFailure, String(error));
      assert.equal(error.code, 'bacula-config-rejected');
      assert.match(error.message, /expected resource name, got: Bogus \(line 1, col \d+ of file .*zz-broken\.conf\)/);
      assert.match(error.message, /Job apiscp-site10 is not defined/);
    } finally {
      await rm(broken, { force: true });
      await harness.bconsole(['reload']);
    }
  });

  it('says so when the director does not include BACULA_INCLUDE_DIR', async () => {
    const elsewhere = loadConfig({
      ...harness.env,
      BACULA_INCLUDE_DIR: join(root, 'not-included.d'),
      DATA_DIR: join(root, 'data'),
    });
    const stray = new BaculaProvider(new ProcessRunner(), elsewhere);
    const site = join(root, 'virtual', 'site11');
    await buildSiteTree(site, { largeFileBytes: 1024 });
    const error = await rejection(() =>
      stray.backup({ subject: siteSubject(site, 'site11'), level: 'full' }, jobContext(work())),
    );
    assert.ok(error instanceof JobFailure, String(error));
    assert.equal(error.code, 'bacula-config-not-loaded');
    assert.match(error.message, /Job apiscp-site11 is not defined.*include .*not-included\.d\/\*\.conf/);
  });

  it('makes an incremental with no full before it as a full, and says so', async () => {
    const site = join(root, 'virtual', 'site3');
    await buildSiteTree(site, { largeFileBytes: 1024 });
    const outcome = await provider.backup(
      { subject: siteSubject(site, 'site3'), level: 'incremental' },
      jobContext(work()),
    );
    assert.equal(outcome.level, 'full');
    assert.match(outcome.notes.join(' '), /made a full backup although incremental was asked for/);
    assert.match(outcome.notes.join(' '), /No prior Full backup Job record found/);
  });

  it('reports a job that ends with warnings as succeeded with those warnings listed', async () => {
    const site = join(root, 'virtual', 'site2');
    await buildSiteTree(site, { largeFileBytes: 1024 });
    const subject = siteSubject(site, 'site2');
    subject.include.push(join(site, 'does-not-exist'));
    const outcome = await provider.backup({ subject, level: 'full' }, jobContext(work()));
    assert.equal(outcome.level, 'full');
    assert.ok(outcome.warnings.length > 0);
    assert.match(outcome.warnings.join('\n'), /Could not stat ".*\/does-not-exist"/);
    const [point] = await provider.scanRestorePoints(subject);
    assert.equal(point.state, 'complete', 'a backup with warnings is still a restore point');
  });

  it('backs up the server subject from globs, leaving out what the globs do not name', async () => {
    const server = join(root, 'server');
    const files = {
      'var/lib/mysql/mysql-grants-1.sql': 'GRANT 1;\n',
      'var/lib/mysql/mysql-grants-2.sql': 'GRANT 2;\n',
      'var/lib/mysql/ibdata1': 'raw',
      'var/lib/mysql/db1/t.ibd': 'raw',
      'var/lib/pgsql/15/backups/globals.sql': 'CREATE ROLE x;\n',
      'var/lib/pgsql/15/data/base/1': 'raw',
      'var/log/mailer_table': 'map\n',
      'var/log/mailer_table.db': 'db\n',
      'var/log/messages': 'log\n',
    };
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(server, path, '..'), { recursive: true });
      await writeFile(join(server, path), content);
    }
    await run('setfattr', ['-n', 'user.kept', '-v', 'yes', join(server, 'var/lib/mysql/mysql-grants-1.sql')]);
    const subject: BackupSubject = {
      key: 'server',
      root: server,
      include: [
        join(server, 'var/lib/mysql/mysql-grants*'),
        join(server, 'var/lib/pgsql/*/backups'),
        join(server, 'var/log/mailer_table*'),
      ],
      exclude: [],
    };
    const outcome = await provider.backup({ subject, level: 'full' }, jobContext(work()));
    assert.deepEqual(outcome.warnings, []);
    const [point] = await provider.scanRestorePoints(subject);
    const destination = await newDestination();
    await provider.restore({ subject, point, paths: [], destination }, jobContext(work()));
    const restored = await snapshotTree(destination, ['var']);
    const restoredFiles = restored.entries.filter((entry) => entry.type === 'file').map((entry) => entry.path);
    assert.deepEqual(restoredFiles.sort(), [
      'var/lib/mysql/mysql-grants-1.sql',
      'var/lib/mysql/mysql-grants-2.sql',
      'var/lib/pgsql/15/backups/globals.sql',
      'var/log/mailer_table',
      'var/log/mailer_table.db',
    ]);
    const grants = restored.entries.find((entry) => entry.path === 'var/lib/mysql/mysql-grants-1.sql')!;
    assert.ok(grants.xattrs.some((line) => line.startsWith('user.kept=')));
  });

  it('cancels the Bacula job when the job context is aborted', async () => {
    const site = join(root, 'virtual', 'site4');
    await buildSiteTree(site, { largeFileBytes: 600 * 1024 * 1024 });
    const subject = siteSubject(site, 'site4');
    const context = jobContext(work());
    const backup = provider.backup({ subject, level: 'full' }, context);
    await eventually('the backup phase', () => context.updates.some((update) => update.phase === 'backup'), {
      timeoutMs: 120_000,
    });
    assert.ok(
      context.updates.some((update) => update.phase === 'backup'),
      'the job got to run',
    );
    const running = context.updates.filter((update) => update.phase === 'backup');
    assert.ok(
      running.some((update) => typeof update.percent === 'number' && update.percent < 100),
      'a percentage while running',
    );
    const cancelledAt = performance.now();
    context.abort();
    const error = await rejection(() => backup);
    const cancelMs = performance.now() - cancelledAt;
    assert.ok(error instanceof JobFailure && error.code === 'cancelled', String(error));
    const jobId = /Bacula JobId (\d+) queued/.exec(context.logs.join('\n'))?.[1];
    assert.ok(jobId);
    const record = await harness.bconsole([`llist jobid=${jobId}`]);
    // Cancelled by the abort (status A, not a 600 MB backup run to its end): the figure is a diagnostic, not timed.
    assert.match(record, /JobStatus: A/);
    console.log(`# cancel: the Bacula job reached status A ${Math.round(cancelMs)} ms after the abort`);
    const points = await provider.scanRestorePoints(subject);
    assert.deepEqual(points, [], 'a cancelled job is no restore point');
    await rm(site, { recursive: true, force: true });
  });

  describe('daemons that cannot be reached', () => {
    const subject = (): BackupSubject => siteSubject(join(root, 'virtual', 'site5'), 'site5');
    before(async () => buildSiteTree(join(root, 'virtual', 'site5'), { largeFileBytes: 1024 }));

    it('file daemon stopped: the backup fails fast, naming the file daemon', async () => {
      await harness.stopDaemon('fd');
      try {
        const status = await provider.status();
        assert.equal(status.available, false);
        assert.match(status.reason ?? '', /file daemon harness-fd .* refuses connections/);
        const {
          value: { value: error, ms },
          requests,
        } = await runner.during('bconsole', () =>
          timed(() => rejection(() => provider.backup({ subject: subject(), level: 'full' }, jobContext(work())))),
        );
        assert.ok(error instanceof AppError, String(error));
        assert.equal(error.code, ErrorCode.ProviderUnavailable);
        assert.match(error.detail, /file daemon harness-fd at 127\.0\.0\.1:\d+ refuses connections/);
        // Fast because refused by the probe before the director is asked to reach it (which it tries for minutes):
        // nothing estimated or run. The time is a diagnostic; a loaded machine stretches it.
        const fed = requests.map((request) => runner.fed(request));
        assert.ok(!fed.some((input) => /^(estimate|run) /m.test(input)), fed.join(' | '));
        console.log(`# file daemon down: backup refused after ${Math.round(ms)} ms`);
      } finally {
        await harness.startDaemon('fd');
      }
    });

    it('storage daemon stopped: status() says so, and a backup and a restore fail at once, naming it', async () => {
      await provider.backup({ subject: subject(), level: 'full' }, jobContext(work()));
      const [point] = await provider.scanRestorePoints(subject());
      assert.ok(point, 'a point to restore');
      const jobCount = async (): Promise<number> =>
        (await harness.bconsole(['list jobs'])).match(/^\|\s+\d+/gm)?.length ?? 0;
      const jobsBefore = await jobCount();
      await harness.stopDaemon('sd');
      try {
        const storageDown = /The Bacula storage daemon harness-file at 127\.0\.0\.1:\d+ refuses connections/;
        const status = await provider.status();
        assert.equal(status.available, false);
        assert.match(status.reason ?? '', storageDown);
        // At once: refused before the director is asked to run anything (it would retry for SD Connect Timeout).
        const { value: error, ms } = await timed(() =>
          rejection(() => provider.backup({ subject: subject(), level: 'full' }, jobContext(work()))),
        );
        assert.ok(error instanceof AppError, String(error));
        assert.equal(error.code, ErrorCode.ProviderUnavailable);
        assert.match(error.detail, storageDown);
        console.log(`# storage daemon down: backup refused after ${Math.round(ms)} ms`);
        const destination = await newDestination();
        const restoreError = await rejection(() =>
          provider.restore({ subject: subject(), point, paths: [], destination }, jobContext(work())),
        );
        assert.ok(restoreError instanceof AppError, String(restoreError));
        assert.equal(restoreError.code, ErrorCode.ProviderUnavailable);
        assert.match(restoreError.detail, storageDown);
        assert.equal(await jobCount(), jobsBefore, 'no Bacula job was run');
      } finally {
        await harness.startDaemon('sd');
      }
    });

    it('director stopped: status() says unavailable and why at once; backups and listings fail fast', async () => {
      await harness.stopDaemon('dir');
      try {
        const {
          value: { value: status, ms },
          requests,
        } = await runner.during('bconsole', () => timed(() => provider.status()));
        assert.equal(status.available, false);
        assert.match(status.reason ?? '', /director at 127\.0\.0\.1:\d+ refuses connections/);
        // At once: the port probe answered, no bconsole (which retries a dead director for 15 s) was started.
        assert.deepEqual(requests, [], 'status() ran no bconsole');
        console.log(`# director down: status() answered in ${Math.round(ms)} ms`);
        const error = await rejection(() => provider.backup({ subject: subject(), level: 'full' }, jobContext(work())));
        assert.ok(error instanceof AppError && error.code === ErrorCode.ProviderUnavailable, String(error));
        const listing = await rejection(() => provider.scanRestorePoints(subject()));
        assert.ok(listing instanceof AppError && listing.code === ErrorCode.ProviderUnavailable);
      } finally {
        await harness.startDaemon('dir');
      }
      const status = await provider.status();
      assert.equal(status.available, true, status.reason);
    });

    it('after the daemons are back, the same site backs up', async () => {
      const outcome = await provider.backup({ subject: subject(), level: 'full' }, jobContext(work()));
      assert.equal(outcome.level, 'full');
      assert.deepEqual(outcome.warnings, []);
    });
  });

  it('lists the restore points of a site with thousands of Bacula jobs, each with its chain', async () => {
    // The backup against hand-run bconsole comparison is bench/bacula-backup.ts; this checks the listing at scale.
    const site = join(root, 'virtual', 'site6');
    await buildSiteTree(site, { largeFileBytes: 1024 * 1024 });
    await provider.backup({ subject: siteSubject(site, 'site6'), level: 'full' }, jobContext(work()));

    // Many jobs, cheaply: copies of this site's job rows straight into the test catalog.
    const jobs = 2000;
    await run('sqlite3', [
      join(harness.workDir, 'bacula.db'),
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${jobs})
       INSERT INTO Job (Job, Name, Type, Level, ClientId, JobStatus, SchedTime, StartTime, EndTime, RealEndTime, JobTDate,
         VolSessionId, VolSessionTime, JobFiles, JobBytes, ReadBytes, JobErrors, JobMissingFiles, PoolId, FileSetId,
         PriorJobId, PurgedFiles, HasBase, HasCache, Reviewed, Comment)
       SELECT 'apiscp-site7.synthetic.' || i, 'apiscp-site7', 'B', CASE WHEN i % 30 = 1 THEN 'F' WHEN i % 7 = 0 THEN 'D' ELSE 'I' END,
         ClientId, 'T', SchedTime, StartTime, EndTime, RealEndTime, JobTDate + i, VolSessionId, VolSessionTime, JobFiles,
         JobBytes, ReadBytes, 0, 0, PoolId, FileSetId, 0, 0, 0, 0, 0, ''
       FROM n, (SELECT * FROM Job WHERE Name = 'apiscp-site6' AND Level = 'F' ORDER BY JobId LIMIT 1)`,
    ]);
    const listing = await timed(() => provider.scanRestorePoints(siteSubject(join(root, 'virtual', 'site7'), 'site7')));
    assert.equal(listing.value.length, jobs);
    const newest = listing.value[0];
    assert.equal(newest.level, 'incremental');
    assert.ok(newest.chain.length >= 2 && newest.chain.length <= 30);
    console.log(`# restore points of a site with ${jobs} jobs listed in ${Math.round(listing.ms)} ms`);
  });
});
