import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import {
  createMysqlDatabase,
  createPgsqlDatabase,
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  makeSite,
  mysql,
  mysqlFingerprint,
  pgsqlFingerprint,
  psql,
  uniquePrefix,
} from '../../support/databases';
import { runJob, waitForJob, type JobBody } from '../../support/jobs';
import { assertProblem } from '../../support/problem';
import { parsePrometheusText, sampleValue } from '../../support/prometheus';
import { startTestApp, tempDir, type TestApp } from '../../support/test-app';
import { fingerprintTree, laravelTree, nextcloudTree, SiteWebServer, tenantId, wordpressTree } from './webapp-trees';

interface WebappBody {
  id: string;
  path: string;
  type: string;
  version: string | null;
  database: { engine: string; name: string } | null;
  snapshots: { enabled: boolean; count: number; newest: string | null };
}

describe('web apps: detection, snapshots, rollback and Update Assurance through the API', () => {
  let t: TestApp;
  let web: SiteWebServer;
  const prefix = uniquePrefix();
  const foreign = uniquePrefix();
  const uid = tenantId();
  let shadow: string;
  let markerDir: string;
  const apps: Record<'wordpress' | 'nextcloud' | 'laravel', WebappBody> = {} as never;

  const base = (app: WebappBody) => `/v1/sites/site1/webapps/${app.id}`;
  const dirOf = (app: WebappBody) => join(shadow, app.path);
  /** What a rollback must bring back: everything but the type's ignored paths. */
  const wpTree = () =>
    fingerprintTree(dirOf(apps.wordpress), (path) => /^wp-content\/(cache|uploads)(\/|$)/.test(path));

  before(async () => {
    await ensureDatabaseServers();
    const root = tempDir('apiscp-webapps-');
    // The site owner's git must be able to reach its own tree, as on a server.
    chmodSync(root, 0o755);
    markerDir = mkdtempSync(join(tmpdir(), 'apiscp-webapps-markers-'));
    chmodSync(markerDir, 0o1777);

    const site = makeSite(join(root, 'virtual'), 1, { mysql: prefix, pgsql: prefix });
    writeFileSync(join(site.root, 'info', 'current', 'siteinfo'), 'domain = blog.example\n');
    shadow = join(site.root, 'shadow');
    const www = join(shadow, 'var', 'www');
    wordpressTree(join(www, 'html'), `${prefix}wp`);
    nextcloudTree(join(www, 'cloud.example'), `${prefix}nc`);
    laravelTree(join(www, 'shop.example'), `${prefix}shop`);
    wordpressTree(join(www, 'html', 'legacy'), `${foreign}wp`, '5.9.1');
    // Hostile bits: a linked docroot, a FIFO where a config should be, a version file that links elsewhere.
    symlinkSync('/etc', join(www, 'etc-link.example'));
    mkdirSync(join(www, 'fifo.example', 'wp-includes'), { recursive: true });
    writeFileSync(join(www, 'fifo.example', 'wp-includes', 'version.php'), "<?php $wp_version = '1.0';");
    execFileSync('mkfifo', [join(www, 'fifo.example', 'wp-config.php')]);
    execFileSync('chown', ['-R', `${uid}:${uid}`, join(shadow, 'var')]);
    chmodSync(join(root, 'virtual'), 0o755);

    await createMysqlDatabase(`${prefix}wp`);
    await mysql(
      "CREATE TABLE wp_posts (id INT PRIMARY KEY, title VARCHAR(100)); INSERT INTO wp_posts VALUES (1, 'Hello world'), (2, 'Second');",
      `${prefix}wp`,
    );
    await createMysqlDatabase(`${prefix}shop`);
    await mysql(
      "CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(100), price INT); INSERT INTO products VALUES (1, 'Lamp', 20), (2, 'Desk', 150);",
      `${prefix}shop`,
    );
    await createPgsqlDatabase(`${prefix}nc`);
    await psql(
      "create table oc_filecache (fileid serial primary key, path text not null); insert into oc_filecache (path) values ('files/report.txt');",
      `${prefix}nc`,
    );

    web = await SiteWebServer.start(
      new Map([
        ['blog.example', join(www, 'html')],
        ['cloud.example', join(www, 'cloud.example')],
        ['shop.example', join(www, 'shop.example')],
      ]),
    );
    t = await startTestApp({ ...DATABASE_ENV, WEBAPP_CHECK_ORIGIN: web.origin }, root);
  });

  after(async () => {
    await t?.close();
    await web?.close();
    rmSync(markerDir, { recursive: true, force: true });
    await dropDatabasesWithPrefix(prefix);
  });

  it('lists the apps in the docroots with type, version and the site’s own database only', async () => {
    const res = await t.http().get('/v1/sites/blog.example/webapps').set(t.auth('monitor')).expect(200);
    const list = res.body as WebappBody[];
    const byPath = new Map(list.map((app) => [app.path, app]));
    assert.deepEqual(
      [...byPath.keys()].sort(),
      ['var/www/cloud.example', 'var/www/html', 'var/www/html/legacy', 'var/www/shop.example'],
      'no app through the linked docroot or the FIFO config',
    );
    const wp = byPath.get('var/www/html')!;
    assert.equal(wp.type, 'wordpress');
    assert.equal(wp.version, '6.4.2');
    assert.deepEqual(wp.database, { engine: 'mysql', name: `${prefix}wp` });
    assert.deepEqual(wp.snapshots, { enabled: false, includeUploads: false, count: 0, newest: null });
    const legacy = byPath.get('var/www/html/legacy')!;
    assert.equal(legacy.version, '5.9.1');
    assert.equal(legacy.database, null, 'a database outside the site’s prefix is not the site’s');
    const nc = byPath.get('var/www/cloud.example')!;
    assert.equal(nc.type, 'nextcloud');
    assert.equal(nc.version, '27.1.3');
    assert.deepEqual(nc.database, { engine: 'pgsql', name: `${prefix}nc` });
    const shop = byPath.get('var/www/shop.example')!;
    assert.equal(shop.type, 'laravel');
    assert.equal(shop.version, '10.48.4');
    assert.deepEqual(shop.database, { engine: 'mysql', name: `${prefix}shop` });
    Object.assign(apps, { wordpress: wp, nextcloud: nc, laravel: shop });
    const one = await t.http().get(base(wp)).set(t.auth('monitor')).expect(200);
    assert.equal(one.body.path, 'var/www/html');
  });

  it('refuses what it must: unknown apps, snapshots not enabled, roles too low, bad bodies', async () => {
    assertProblem(
      await t.http().get('/v1/sites/site1/webapps/nope-000000').set(t.auth('monitor')),
      404,
      'webapp-not-found',
    );
    assertProblem(
      await t
        .http()
        .post(`${base(apps.wordpress)}/snapshots`)
        .set(t.auth('operator'))
        .send({}),
      409,
      'webapp-snapshots-disabled',
    );
    assertProblem(
      await t
        .http()
        .put(`${base(apps.wordpress)}/snapshots`)
        .set(t.auth('operator'))
        .send({ enabled: true }),
      403,
      'forbidden',
    );
    assertProblem(
      await t
        .http()
        .put(`${base(apps.wordpress)}/snapshots`)
        .set(t.auth('admin'))
        .send({ enabled: 'yes' }),
      400,
      'validation-failed',
    );
    assertProblem(
      await t
        .http()
        .get(`${base(apps.wordpress)}/snapshots/${'a'.repeat(40)}/diff`)
        .set(t.auth('operator')),
      404,
      'snapshot-not-found',
    );
  });

  it('refuses snapshots where the layout is not safe: a root-owned app, an info directory the tenant owns', async () => {
    const virtual = join(shadow, '..', '..');
    const rootOwned = makeSite(virtual, 2, { mysql: prefix });
    wordpressTree(join(rootOwned.root, 'shadow', 'var', 'www', 'html'), `${prefix}wp2`);
    const tenantInfo = makeSite(virtual, 3, { mysql: prefix });
    wordpressTree(join(tenantInfo.root, 'shadow', 'var', 'www', 'html'), `${prefix}wp3`);
    execFileSync('chown', [
      '-R',
      `${uid}:${uid}`,
      join(tenantInfo.root, 'shadow', 'var'),
      join(tenantInfo.root, 'info'),
    ]);
    for (const site of ['site2', 'site3']) {
      const [app] = (await t.http().get(`/v1/sites/${site}/webapps`).set(t.auth('monitor')).expect(200))
        .body as WebappBody[];
      const res = await t
        .http()
        .put(`/v1/sites/${site}/webapps/${app.id}/snapshots`)
        .set(t.auth('admin'))
        .send({ enabled: true });
      assertProblem(res, 422, 'webapp-unsupported');
    }
    assert.ok(!existsSync(join(tenantInfo.root, 'info', 'webapps')), 'nothing made in a tenant-owned info');
    assert.ok(!existsSync(join(tenantInfo.root, 'shadow', 'var', 'backups')), 'nor a repository');
  });

  it('enabling snapshots makes a repository outside the docroot, owned by the site owner, and a root-only state dir', async () => {
    for (const app of Object.values(apps)) {
      const res = await t
        .http()
        .put(`${base(app)}/snapshots`)
        .set(t.auth('admin'))
        .send({ enabled: true })
        .expect(200);
      assert.equal(res.body.snapshots.enabled, true);
      const repo = statSync(join(shadow, 'var', 'backups', 'webapps', `${app.id}.git`));
      assert.equal(repo.uid, uid);
      assert.equal(repo.mode & 0o777, 0o700);
      const state = statSync(join(shadow, '..', 'info', 'webapps', app.id));
      assert.equal(state.uid, 0);
      assert.equal(state.mode & 0o777, 0o700);
      assert.ok(!existsSync(join(dirOf(app), '.git')), 'no .git inside the docroot');
    }
  });

  it('snapshot, change files and rows, rollback: files (content, mode, owner) and tables are as at the snapshot', async () => {
    const wp = apps.wordpress;
    const job = await runJob(t, `${base(wp)}/snapshots`, { message: 'before edits' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const listed = (
      await t
        .http()
        .get(`${base(wp)}/snapshots`)
        .set(t.auth('monitor'))
        .expect(200)
    ).body as Array<{
      id: string;
      message: string;
      filesChanged: number;
      database: { bytes: number } | null;
    }>;
    assert.equal(listed.length, 1);
    assert.equal(listed[0].message, 'before edits');
    assert.ok(listed[0].filesChanged >= 8, JSON.stringify(listed[0]));
    assert.ok(listed[0].database && listed[0].database.bytes > 0);
    const snapshot = listed[0].id;
    const filesBefore = wpTree();
    const tablesBefore = await mysqlFingerprint(`${prefix}wp`);

    const dir = dirOf(wp);
    writeFileSync(join(dir, 'index.php'), 'changed');
    unlinkSync(join(dir, 'wp-content/plugins/hello/hello.php'));
    mkdirSync(join(dir, 'wp-content/plugins/new'));
    writeFileSync(join(dir, 'wp-content/plugins/new/new.php'), 'new plugin');
    writeFileSync(join(dir, 'wp-config.php'), '<?php // rewritten');
    chmodSync(join(dir, 'wp-config.php'), 0o644);
    chmodSync(join(dir, 'bin/cron.sh'), 0o700);
    writeFileSync(join(dir, 'wp-content/uploads/2026/11/photo.jpg'), 'JPEG-BYTES-2');
    execFileSync('chown', ['-R', `${uid}:${uid}`, dir]);
    await mysql("UPDATE wp_posts SET title = 'Edited' WHERE id = 1; CREATE TABLE wp_new (x INT);", `${prefix}wp`);

    const diff = await t
      .http()
      .get(`${base(wp)}/snapshots/${snapshot}/diff`)
      .set(t.auth('operator'))
      .expect(200);
    assert.deepEqual(
      { added: diff.body.added, modified: diff.body.modified, deleted: diff.body.deleted },
      { added: 1, modified: 2, deleted: 1 },
      JSON.stringify(diff.body),
    );
    assertProblem(
      await t
        .http()
        .post(`${base(wp)}/snapshots/${snapshot}/rollback`)
        .set(t.auth('operator')),
      403,
      'forbidden',
    );

    const rollback = await runJob(t, `${base(wp)}/snapshots/${snapshot}/rollback`, {}, 'admin');
    assert.equal(rollback.status, 'succeeded', JSON.stringify(rollback));
    assert.deepEqual(wpTree(), filesBefore);
    assert.deepEqual(await mysqlFingerprint(`${prefix}wp`), tablesBefore);
    assert.equal(
      readFileSync(join(dir, 'wp-content/uploads/2026/11/photo.jpg'), 'utf8'),
      'JPEG-BYTES-2',
      'uploads are left out of snapshots and left alone by rollbacks',
    );
    const after = (
      await t
        .http()
        .get(`${base(wp)}/snapshots`)
        .set(t.auth('monitor'))
    ).body as Array<{ kind: string }>;
    assert.equal(after[0].kind, 'pre-rollback', 'the state before the rollback is kept as a snapshot');
  });

  it('a rollback whose database import fails leaves files and database as they were before it', async () => {
    const shop = apps.laravel;
    const job = await runJob(t, `${base(shop)}/snapshots`, { message: 'shop v1' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const snapshot = (job.result!.snapshot as { id: string }).id;
    writeFileSync(join(dirOf(shop), 'index.php'), '<title>Shop</title> v2');
    writeFileSync(join(dirOf(shop), 'vendor/laravel/framework/src/Application.php'), '<?php // framework v11');
    execFileSync('chown', ['-R', `${uid}:${uid}`, dirOf(shop)]);
    await mysql(
      "UPDATE products SET price = 99 WHERE id = 1; INSERT INTO products VALUES (3, 'Chair', 40);",
      `${prefix}shop`,
    );
    const files = fingerprintTree(dirOf(shop));
    const tables = await mysqlFingerprint(`${prefix}shop`);

    // The snapshot's export cut in the middle of a statement: the import starts, then fails.
    const dump = join(shadow, '..', 'info', 'webapps', shop.id, `${snapshot}.mysql.sql.gz`);
    const sql = gunzipSync(readFileSync(dump)).toString('utf8');
    const cut = sql.indexOf('INSERT INTO `products`') + 30;
    assert.ok(cut > 30, 'the export holds the rows');
    writeFileSync(dump, gzipSync(sql.slice(0, cut)));

    const rollback = await runJob(t, `${base(shop)}/snapshots/${snapshot}/rollback`, {}, 'admin');
    assert.equal(rollback.status, 'failed', JSON.stringify(rollback));
    assert.equal(rollback.error?.code, 'database-import-failed');
    assert.deepEqual(fingerprintTree(dirOf(shop)), files, 'files as before the rollback');
    assert.deepEqual(await mysqlFingerprint(`${prefix}shop`), tables, 'tables as before the rollback');
  });

  it('Update Assurance: a good update is confirmed; a broken one (500, fatal error) is rolled back, files and rows', async () => {
    const hook = await t
      .http()
      .post('/v1/webhooks')
      .set(t.auth('admin'))
      .send({ url: `${web.origin}/hook`, events: ['webapp.update-confirmed', 'webapp.update-rolled-back'] })
      .expect(201);

    const start = async (app: WebappBody): Promise<string> => {
      const res = await t
        .http()
        .post(`${base(app)}/assurance`)
        .set(t.auth('operator'))
        .send({});
      assert.equal(res.status, 202, res.text);
      const id = res.body.assurance.id as string;
      assert.equal(res.headers.location, `${base(app)}/assurance/${id}`);
      const job = await waitForJob(t, res.body.job.id);
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      const assurance = (
        await t
          .http()
          .get(`${base(app)}/assurance/${id}`)
          .set(t.auth('monitor'))
          .expect(200)
      ).body;
      assert.equal(assurance.status, 'ready');
      assert.equal(assurance.baseline.status, 200);
      assert.ok(assurance.baseline.title);
      return id;
    };
    const confirm = async (app: WebappBody, id: string): Promise<JobBody> => {
      const res = await t
        .http()
        .post(`${base(app)}/assurance/${id}/confirm`)
        .set(t.auth('admin'));
      assert.equal(res.status, 202, res.text);
      return waitForJob(t, res.body.id);
    };

    // A good update: new version, same page.
    const wp = apps.wordpress;
    const good = await start(wp);
    writeFileSync(join(dirOf(wp), 'wp-includes/version.php'), "<?php\n$wp_version = '6.5.0';\n");
    const confirmed = await confirm(wp, good);
    assert.equal(confirmed.status, 'succeeded', JSON.stringify(confirmed));
    assert.equal((confirmed.result!.assurance as { outcome: string }).outcome, 'confirmed');
    assert.equal(readFileSync(join(dirOf(wp), 'wp-includes/version.php'), 'utf8').includes('6.5.0'), true);
    assertProblem(
      await t
        .http()
        .post(`${base(wp)}/assurance/${good}/confirm`)
        .set(t.auth('admin')),
      409,
      'assurance-not-ready',
    );

    // A broken update: the page answers 500, and the update had changed rows.
    const shop = apps.laravel;
    const shopFiles = fingerprintTree(dirOf(shop));
    const shopTables = await mysqlFingerprint(`${prefix}shop`);
    const broken = await start(shop);
    writeFileSync(join(dirOf(shop), 'index.php'), '<title>Shop</title> HTTP-500');
    writeFileSync(join(dirOf(shop), 'vendor/laravel/framework/src/Application.php'), '<?php // framework v12');
    await mysql('ALTER TABLE products ADD COLUMN stock INT DEFAULT 0', `${prefix}shop`);
    const rolledBack = await confirm(shop, broken);
    assert.equal(rolledBack.status, 'succeeded', JSON.stringify(rolledBack));
    const outcome = rolledBack.result!.assurance as { outcome: string; reasons: string[] };
    assert.equal(outcome.outcome, 'rolled-back');
    assert.ok(
      outcome.reasons.some((reason) => reason.includes('status 500')),
      JSON.stringify(outcome),
    );
    assert.deepEqual(fingerprintTree(dirOf(shop)), shopFiles);
    assert.deepEqual(await mysqlFingerprint(`${prefix}shop`), shopTables);

    // A broken update on PostgreSQL: a fatal error printed with status 200.
    const nc = apps.nextcloud;
    const ncFiles = fingerprintTree(dirOf(nc));
    const ncTables = await pgsqlFingerprint(`${prefix}nc`);
    const fatal = await start(nc);
    writeFileSync(
      join(dirOf(nc), 'index.php'),
      '<title>Files - Nextcloud</title><b>Fatal error</b>: Uncaught Error in /lib/base.php' + 'x'.repeat(3000),
    );
    await psql("insert into oc_filecache (path) values ('files/new.txt')", `${prefix}nc`);
    const ncJob = await confirm(nc, fatal);
    assert.equal(ncJob.status, 'succeeded', JSON.stringify(ncJob));
    assert.equal((ncJob.result!.assurance as { outcome: string }).outcome, 'rolled-back');
    assert.deepEqual(fingerprintTree(dirOf(nc)), ncFiles);
    assert.deepEqual(await pgsqlFingerprint(`${prefix}nc`), ncTables);

    const deliveries = (await t.http().get(`/v1/webhooks/${hook.body.id}/deliveries`).set(t.auth('admin')).expect(200))
      .body.items as Array<{ event: string }>;
    assert.deepEqual(deliveries.map((delivery) => delivery.event).sort(), [
      'webapp.update-confirmed',
      'webapp.update-rolled-back',
      'webapp.update-rolled-back',
    ]);
    const metrics = parsePrometheusText((await t.http().get('/metrics').set(t.auth('monitor'))).text);
    assert.equal(sampleValue(metrics, 'apiscp_backup_webapp_assurances_total', { outcome: 'confirmed' }), 1);
    assert.equal(sampleValue(metrics, 'apiscp_backup_webapp_assurances_total', { outcome: 'rolled-back' }), 2);
  });

  it('a git hook and core.fsmonitor planted by the tenant never run as root', async () => {
    const wp = apps.wordpress;
    const repo = join(shadow, 'var', 'backups', 'webapps', `${wp.id}.git`);
    const marker = join(markerDir, 'ran-as');
    const script = join(markerDir, 'planted.sh');
    writeFileSync(script, `#!/bin/sh\nid -u >> ${marker}\nexit 0\n`, { mode: 0o755 });
    for (const name of ['pre-commit', 'post-commit', 'post-checkout', 'reference-transaction', 'post-index-change']) {
      writeFileSync(join(repo, 'hooks', name), `#!/bin/sh\nexec ${script}\n`, { mode: 0o755 });
    }
    writeFileSync(
      join(repo, 'config'),
      `${readFileSync(join(repo, 'config'), 'utf8')}[core]\n\tfsmonitor = ${script}\n\thooksPath = ${join(repo, 'hooks')}\n`,
    );
    // A .git of the tenant's own inside the docroot, with the same traps.
    mkdirSync(join(dirOf(wp), '.git', 'hooks'), { recursive: true });
    writeFileSync(join(dirOf(wp), '.git', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(dirOf(wp), '.git', 'config'), `[core]\n\tfsmonitor = ${script}\n`);
    // And the lock a git killed mid-run (a cancelled job) leaves behind: the next job must not be stuck on it.
    writeFileSync(join(repo, 'index.lock'), '');
    execFileSync('chown', ['-R', `${uid}:${uid}`, repo, join(dirOf(wp), '.git')]);

    const job = await runJob(t, `${base(wp)}/snapshots`, { message: 'with traps' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const snapshot = (job.result!.snapshot as { id: string }).id;
    const diff = await t
      .http()
      .get(`${base(wp)}/snapshots/${snapshot}/diff`)
      .set(t.auth('operator'));
    assert.equal(diff.status, 200, diff.text);
    const rollback = await runJob(t, `${base(wp)}/snapshots/${snapshot}/rollback`, {}, 'admin');
    assert.equal(rollback.status, 'succeeded', JSON.stringify(rollback));
    const ran = existsSync(marker) ? readFileSync(marker, 'utf8').split('\n').filter(Boolean) : [];
    assert.ok(!ran.includes('0'), `a planted script ran as root: ${ran.join(',')}`);

    // The traps are live: git run as root the naive way on that repository does run them as root.
    execFileSync('git', ['-c', 'safe.directory=*', '--git-dir', repo, '--work-tree', dirOf(wp), 'status', '--short'], {
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' },
      stdio: 'ignore',
    });
    assert.ok(
      readFileSync(marker, 'utf8').split('\n').includes('0'),
      'the planted fsmonitor runs for a naive root git',
    );
    chownSync(marker, 0, 0);
  });

  it('a tenant swapping a directory for a link to a root-owned one while a rollback runs changes nothing outside the site', async () => {
    const wp = apps.wordpress;
    const victim = join(markerDir, 'victim');
    mkdirSync(join(victim, 'hello'), { recursive: true, mode: 0o755 });
    writeFileSync(join(victim, 'hello', 'hello.php'), 'root’s own file', { mode: 0o644 });
    chmodSync(markerDir, 0o755);
    const victimBefore = fingerprintTree(victim);
    const snapshot = (
      await t
        .http()
        .get(`${base(wp)}/snapshots`)
        .set(t.auth('monitor'))
    ).body.at(-1).id as string;
    const plugins = join(dirOf(wp), 'wp-content', 'plugins');
    const aside = join(dirOf(wp), 'wp-content', 'plugins-aside');
    writeFileSync(join(plugins, 'hello', 'hello.php'), 'changed by the tenant');

    const res = await t
      .http()
      .post(`${base(wp)}/snapshots/${snapshot}/rollback`)
      .set(t.auth('admin'));
    assert.equal(res.status, 202, res.text);
    let swaps = 0;
    let done = false;
    const racer = (async () => {
      while (!done) {
        try {
          renameSync(plugins, aside);
          symlinkSync(victim, plugins);
          await setImmediate();
          unlinkSync(plugins);
          renameSync(aside, plugins);
          swaps++;
        } catch {
          // the rollback moved something under us: keep racing
        }
        await setImmediate();
      }
    })();
    const job = await waitForJob(t, res.body.id);
    done = true;
    await racer;
    assert.ok(['succeeded', 'failed'].includes(job.status), JSON.stringify(job));
    assert.ok(swaps > 0, 'the racer ran');
    assert.deepEqual(fingerprintTree(victim), victimBefore, 'nothing written, moved or chowned outside the site');
    chmodSync(markerDir, 0o1777);
  });
});
