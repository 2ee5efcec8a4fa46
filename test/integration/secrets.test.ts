import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Hex } from '../../src/auth/token-store';
import { runJob, type JobBody } from '../support/jobs';
import { expressRoutes, fillPath, listRoutes, RawClient, type RawResponse } from '../support/routes';
import { makeSites } from '../support/sample-sites';
import { startTestApp, tempDir, TOKENS, type TestApp } from '../support/test-app';
import { eventually, nextWholeSecond } from '../support/wait';

const PASSPHRASE = `pass-${randomUUID()}-phrase`;
const SECRETS: Record<string, string> = { passphrase: PASSPHRASE, ...TOKENS };

/** The secrets found in `text`, by name. */
function leaked(text: string | Buffer): string[] {
  const haystack = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  return Object.entries(SECRETS)
    .filter(([, secret]) => haystack.includes(secret))
    .map(([name]) => name);
}

interface ProcessSample {
  pid: string;
  parent: string;
  argv: string;
  /** Secrets found in the process's environment, by name. */
  envSecrets: string[];
}

/**
 * Reads /proc/<pid>/cmdline and /proc/<pid>/environ of this test's processes, as often as the event loop allows,
 * while the jobs run: duplicity and the gpg it starts live for seconds, their helpers for milliseconds. Ours are the
 * descendants of this process (remembered, so a daemon that re-parents to init stays ours) and any process whose
 * environment names the test's directory; other processes on the machine (other test runs) are not looked at.
 */
class ProcSampler {
  readonly argvLeaks = new Map<string, string[]>();
  /** Every distinct process of ours seen, with the secrets in its environment. */
  readonly seen = new Map<string, ProcessSample>();
  sweeps = 0;
  private readonly ours = new Set<string>([String(process.pid)]);
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly marker: string) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        this.sweep();
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.sweep();
  }

  private sweep(): void {
    this.sweeps++;
    const parents = new Map<string, string>();
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        parents.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      } catch {
        // exited
      }
    }
    for (let changed = true; changed;) {
      changed = false;
      for (const [pid, parent] of parents) {
        if (!this.ours.has(pid) && this.ours.has(parent)) {
          this.ours.add(pid);
          changed = true;
        }
      }
    }
    for (const pid of parents.keys()) {
      if (pid === String(process.pid)) continue;
      let cmdline: Buffer;
      let environ: Buffer;
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`);
        environ = readFileSync(`/proc/${pid}/environ`);
      } catch {
        continue; // exited between readdir and read
      }
      if (!this.ours.has(pid)) {
        if (!environ.includes(this.marker)) continue;
        this.ours.add(pid);
      }
      const argv = cmdline.toString('utf8').split('\0').filter(Boolean).join(' ');
      const argvSecrets = leaked(cmdline);
      if (argvSecrets.length > 0) this.argvLeaks.set(argv, argvSecrets);
      const key = `${pid} ${argv}`;
      if (!this.seen.has(key))
        this.seen.set(key, { pid, parent: parents.get(pid)!, argv, envSecrets: leaked(environ) });
    }
  }
}

/** Every file under `root` whose bytes hold a secret. */
function filesHoldingSecrets(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && statSync(full).size < 64 * 1024 * 1024) {
        const secrets = leaked(readFileSync(full));
        if (secrets.length > 0) found.push(`${full}: ${secrets.join(', ')}`);
      }
    }
  };
  walk(root);
  return found;
}

describe('secrets never leak: passphrase and API tokens', () => {
  let t: TestApp;
  let client: RawClient;
  let passphraseFile: string;
  let sampler: ProcSampler;
  const jobs: JobBody[] = [];

  before(async () => {
    const secretsDir = tempDir('apiscp-secrets-');
    passphraseFile = join(secretsDir, 'passphrase');
    writeFileSync(passphraseFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    const root = tempDir();
    t = await startTestApp(
      { DUPLICITY_TARGET: `file://${root}/target`, DUPLICITY_PASSPHRASE_FILE: passphraseFile },
      root,
    );
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'example.com' }]);
    const site = join(t.config.virtualRoot, 'site1');
    mkdirSync(join(site, 'shadow', 'var', 'www', 'html'), { recursive: true });
    for (let i = 0; i < 5; i++)
      writeFileSync(join(site, 'shadow', 'var', 'www', 'html', `page${i}.html`), `<p>${i}</p>\n`);
    writeFileSync(join(site, 'info', 'current', 'users'), 'admin1\n');
    client = await RawClient.listen(t.app);
    sampler = new ProcSampler(root);
  });
  after(async () => {
    await sampler?.stop();
    client?.close();
    await t?.close();
    // gpg-agent daemonises out of the service's process groups and outlives it (see the report): stop ours.
    for (const sample of sampler?.seen.values() ?? []) {
      if (!sample.argv.startsWith('gpg-agent')) continue;
      try {
        if (readFileSync(`/proc/${sample.pid}/environ`).includes(t.root)) process.kill(Number(sample.pid));
      } catch {
        // already gone
      }
    }
  });

  it('runs encrypted backups and a restore while every process is sampled', async () => {
    sampler.start();
    jobs.push(await runJob(t, '/v1/sites/site1/backups', { level: 'full' }));
    // duplicity compares whole-second mtimes.
    await nextWholeSecond();
    writeFileSync(
      join(t.config.virtualRoot, 'site1', 'shadow', 'var', 'www', 'html', 'page0.html'),
      '<p>changed</p>\n',
    );
    jobs.push(await runJob(t, '/v1/sites/example.com/backups', { level: 'incremental' }));
    const points = await t.http().get('/v1/sites/site1/restore-points').set(t.auth('monitor')).expect(200);
    assert.equal(points.body.items.length, 2, points.text);
    jobs.push(await runJob(t, '/v1/sites/site1/restores', { restorePoint: points.body.items[1].id }));
    jobs.push(await runJob(t, '/v1/sites/site1/restores', { restorePoint: points.body.items[0].id }));
    await sampler.stop();
    for (const job of jobs) assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const restored = join(String(jobs[3].result?.destination), 'shadow', 'var', 'www', 'html', 'page0.html');
    assert.equal(readFileSync(restored, 'utf8'), '<p>changed</p>\n', 'the encrypted chain restores');
  });

  it('no argv of any process ever held a secret, and the sampling saw duplicity with its passphrase', (ctx) => {
    assert.deepEqual([...sampler.argvLeaks.entries()], [], 'a secret in a command line');
    const duplicity = [...sampler.seen.values()].filter((sample) => /\bduplicity\b/.test(sample.argv));
    assert.ok(duplicity.length >= 2, `duplicity processes seen in ${sampler.sweeps} sweeps: ${duplicity.length}`);
    assert.ok(
      duplicity.some((sample) => sample.envSecrets.includes('passphrase')),
      'the passphrase reaches duplicity through its environment (else this test saw nothing)',
    );
    // Only duplicity and the gpg processes it starts may hold the passphrase; no process ever holds a token.
    const holders = [...sampler.seen.values()].filter((sample) => sample.envSecrets.length > 0);
    const programs = (samples: ProcessSample[]) =>
      [...new Set(samples.map((sample) => sample.argv.split(' ').slice(0, 2).join(' ')))].join('; ');
    ctx.diagnostic(`${sampler.sweeps} sweeps, ${sampler.seen.size} processes: ${programs([...sampler.seen.values()])}`);
    ctx.diagnostic(`passphrase in the environment of: ${programs(holders)}`);
    const duplicityPids = new Set(duplicity.map((sample) => sample.pid));
    for (const sample of holders) {
      assert.deepEqual(sample.envSecrets, ['passphrase'], `${sample.argv}: ${sample.envSecrets.join(', ')}`);
      // duplicity's own helpers (uname, gpg) inherit its environment.
      assert.ok(
        /duplicity|gpg/.test(sample.argv) || duplicityPids.has(sample.parent),
        `${sample.argv} (parent ${sample.parent}) holds the passphrase`,
      );
    }
    const alive = holders.filter((sample) => {
      try {
        return readFileSync(`/proc/${sample.pid}/environ`).includes(PASSPHRASE);
      } catch {
        return false;
      }
    });
    ctx.diagnostic(`still alive after the jobs: ${programs(alive)}`);
  });

  it('no service log line, job log, stored file or API response holds a secret', async () => {
    const logLeaks = t.logs.filter((line) => leaked(line).length > 0);
    assert.deepEqual(logLeaks, [], 'service log');
    assert.ok(t.logs.length > 20, 'the service did log');

    for (const job of jobs) {
      const log = await t.http().get(`/v1/jobs/${job.id}/log`).set(t.auth('monitor')).expect(200);
      assert.match(log.text, /duplicity/, `job ${job.id} has a log`);
      assert.deepEqual(leaked(log.text), [], `log of job ${job.id}`);
    }

    assert.deepEqual(filesHoldingSecrets(t.config.dataDir), [], 'files under DATA_DIR (catalog, job logs, cache)');

    const routes = listRoutes(t.app).filter((route) => route.method === 'GET');
    assert.ok(routes.length >= 15, 'GET routes found');
    const paths = new Set<string>();
    for (const route of routes) {
      if (route.pathParams.includes('id') && route.path.startsWith('/v1/jobs/')) {
        for (const job of jobs) paths.add(fillPath(route, { id: job.id }));
      } else {
        paths.add(fillPath(route));
      }
    }
    // The spec is served outside Nest, beside the routes.
    for (const layer of expressRoutes(t.app)) if (layer.path === '/openapi.json') paths.add(layer.path);
    const answered: string[] = [];
    for (const path of paths) {
      for (const role of ['monitor', 'admin'] as const) {
        const res: RawResponse = await client.send({ method: 'GET', path, headers: t.auth(role) });
        assert.ok(res.status < 500, `${path}: ${res.status} ${res.text.slice(0, 300)}`);
        assert.deepEqual(leaked(res.text), [], `body of GET ${path} (${role})`);
        assert.deepEqual(leaked(JSON.stringify(res.headers)), [], `headers of GET ${path}`);
        if (res.status === 200) answered.push(`${role} ${path}`);
      }
    }
    assert.ok(answered.length >= 20, `GET routes that answered 200: ${answered.join(', ')}`);
  });

  it('the tokens file holds digests only, never a clear token', () => {
    const raw = readFileSync(t.config.tokensFile, 'utf8');
    assert.deepEqual(leaked(raw), []);
    const entries = JSON.parse(raw) as Array<{ name: string; sha256: string }>;
    assert.deepEqual(
      entries.map((entry) => entry.sha256),
      Object.values(TOKENS).map((token) => sha256Hex(token)),
    );
  });

  it('a request logs the token’s name, never the token or the Authorization header', async () => {
    const ok = await client.send({
      method: 'GET',
      path: '/v1/sites',
      headers: { ...t.auth('operator'), 'x-request-id': 'secrets-log-ok' },
    });
    assert.equal(ok.status, 200);
    const wrongToken = `wrong-${randomUUID()}`;
    const refused = await client.send({
      method: 'GET',
      path: '/v1/sites',
      headers: { authorization: `Bearer ${wrongToken}`, 'x-request-id': 'secrets-log-refused' },
    });
    assert.equal(refused.status, 401);
    // pino writes asynchronously to the test's stream: wait for both requests' lines.
    await eventually('the completion lines of both requests', () =>
      ['secrets-log-ok', 'secrets-log-refused'].every((id) =>
        t.logs.some((line) => line.includes(id) && line.includes('"request completed"')),
      ),
    );

    const lines = (id: string) =>
      t.logs.filter((line) => line.includes(id)).map((line) => JSON.parse(line) as Record<string, unknown>);
    const completed = lines('secrets-log-ok').find((record) => record.msg === 'request completed');
    assert.ok(completed, 'a completion line for the request');
    assert.equal(completed.tokenName, 'operator-bot');
    assert.equal(completed.role, 'operator');
    for (const record of [...lines('secrets-log-ok'), ...lines('secrets-log-refused')]) {
      const text = JSON.stringify(record);
      assert.ok(!/"authorization":"(?!\[REDACTED\])/i.test(text), `an Authorization value is logged: ${text}`);
      assert.ok(!/Bearer [\w-]{8,}/.test(text), `a bearer credential is logged: ${text}`);
    }
    assert.ok(lines('secrets-log-refused').length > 0, 'the refused request is logged');
    assert.deepEqual(
      t.logs.filter((line) => line.includes(wrongToken)),
      [],
      'a presented wrong token is not logged either',
    );
    assert.deepEqual(
      t.logs.filter((line) => leaked(line).length > 0),
      [],
    );
  });
});
