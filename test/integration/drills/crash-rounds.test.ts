import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESTORE_JOB } from '../../../src/providers/bacula/bacula-resources';
import { parseApiBlocks } from '../../../src/providers/bacula/bconsole-output';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import {
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  seedMysqlFixture,
  uniquePrefix,
} from '../../support/databases';
import type { JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { tempDir, writeTokensFile } from '../../support/test-app';
import {
  dumpRuns,
  duplicityRuns,
  filesIn,
  processEnv,
  runServiceJob,
  sleep,
  waitForServiceJob,
  waitUntil,
} from './drill-support';

/**
 * Rounds in the suite (issue 11 asks for at least 12; they take about a minute); `npm run drill -- --rounds N` runs
 * more (DRILL_ROUNDS).
 */
const ROUNDS = Number(process.env.DRILL_ROUNDS ?? 12);
/** The kill lands up to this long after the job started running (0: at once). */
const MAX_KILL_DELAY_MS = Number(process.env.DRILL_MAX_KILL_DELAY_MS ?? 2500);

type Provider = 'duplicity' | 'bacula';
type Action = 'full' | 'incremental' | 'export' | 'staging-restore' | 'in-place-restore' | 'prune';
const ACTIONS: Action[] = ['full', 'incremental', 'export', 'staging-restore', 'in-place-restore'];
/** Every PRUNE_EVERY-th round kills a prune (providers in turn), so each run of the suite has prune rounds. */
const PRUNE_EVERY = 4;

/** A small seeded PRNG (mulberry32), so a failing round can be replayed with DRILL_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Drill: SIGKILL of the service at a random moment of a random job (full, incremental, export, staging and in-place
 * restore, prune; duplicity and Bacula), then a restart. Each round then checks that no job is left running or queued,
 * no engine process or Bacula job of the killed one is left, no partial file stands under a final name and no temporary
 * directory is left, and that a backup and a restore of the newest point succeed and restore what the site holds.
 * A prune round first makes a full (so the policy, "the newest chain", expires the older chains), kills the prune,
 * then a second prune must finish the work, every point it keeps must restore, and nothing else may be left listed.
 */
describe('drill: the service killed at random moments of random jobs', () => {
  const P = uniquePrefix();
  const seed = Number(process.env.DRILL_SEED ?? Date.now() % 100000);
  const random = prng(seed);
  const root = tempDir('drill-rounds-');
  const virtualRoot = join(root, 'virtual');
  const dataDir = join(root, 'data');
  const sites: Record<Provider, string> = { duplicity: 'site1', bacula: 'site2' };
  let bacula: BaculaHarness;
  let env: Record<string, string>;
  let service: ServiceProcess | undefined;
  let recovered = 0;
  let marker = 0;
  /** What shadow/index.html held at each restore point the drill made and knows the content of. */
  const indexAt = new Map<string, string>();

  const indexOf = (site: string) => join(virtualRoot, site, 'shadow', 'index.html');
  const call = (method: string, path: string, body?: object) => service!.call(method, path, body);
  const restart = async (): Promise<void> => {
    await service?.stop('SIGKILL');
    service = await startServiceProcess(env);
  };
  const newestPoint = async (site: string, provider: Provider): Promise<string> => {
    const res = await call('GET', `/v1/sites/${site}/restore-points`);
    const points = (res.body.items as Array<{ id: string; provider: string; state: string; time: string }>)
      .filter((p) => p.provider === provider && p.state === 'complete')
      .sort((a, b) => b.time.localeCompare(a.time));
    assert.ok(points.length > 0, `${site} has a complete ${provider} point: ${JSON.stringify(res.body)}`);
    return points[0].id;
  };
  const baculaJobsRunning = async (): Promise<string[]> =>
    parseApiBlocks(await bacula.bconsole(['.api 2', '.status dir running']))
      .filter((block) => block.jobid && (block.name === RESTORE_JOB || block.name?.startsWith('apiscp-')))
      .map((block) => `${block.jobid}:${block.name}`);

  before(async () => {
    await ensureDatabaseServers();
    bacula = await startBacula();
    makeSites(virtualRoot, [
      { n: 1, domain: 'one.example' },
      { n: 2, domain: 'two.example' },
    ]);
    writeFileSync(join(virtualRoot, 'site1', 'info', 'current', 'mysql'), `enabled = 1\ndbaseprefix = ${P}\n`);
    await seedMysqlFixture(`${P}shop`, 'drill', 2000);
    for (const site of Object.values(sites)) {
      writeFileSync(indexOf(site), 'start\n');
      for (let i = 0; i < 30; i++) writeFileSync(join(virtualRoot, site, 'shadow', `page${i}.html`), `${i}\n`);
    }
    env = processEnv({
      ...DATABASE_ENV,
      ...bacula.env,
      PROVIDERS: 'duplicity,bacula',
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: dataDir,
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
    });
    await restart();
    for (const [provider, site] of Object.entries(sites)) {
      const job = await runServiceJob(service!, `/v1/sites/${site}/backups`, {
        level: 'full',
        provider,
        exportDatabases: false,
      });
      assert.equal(job.status, 'succeeded', JSON.stringify(job));
      indexAt.set(job.result?.restorePoint as string, 'start\n');
      // Keep only the newest complete chain: every prune round has older chains to remove.
      const policy = await call('POST', '/v1/policies', {
        name: `drill-${provider}`,
        provider,
        schedules: {},
        retention: { fullDays: 0, minFulls: 1, differentialDays: 0, incrementalDays: 0 },
        exportDatabases: false,
      });
      assert.equal(policy.status, 201, JSON.stringify(policy.body));
      const assigned = await call('PUT', `/v1/sites/${site}/policy`, { policy: policy.body.id });
      assert.equal(assigned.status, 200, JSON.stringify(assigned.body));
    }
  });

  after(async () => {
    await service?.stop('SIGTERM');
    await bacula?.stop();
    await dropDatabasesWithPrefix(P);
    rmSync(root, { recursive: true, force: true });
  });

  /**
   * After a killed prune: a second prune finishes (removing whatever the first left), the complete points listed are
   * exactly the ones it kept, and each of them restores (shadow/index.html as it was, where the drill knows it).
   */
  const checkPrunedSite = async (label: string, site: string, provider: Provider): Promise<string> => {
    const prune = await runServiceJob(service!, `/v1/sites/${site}/prune`, { provider });
    assert.equal(prune.status, 'succeeded', `${label}: ${JSON.stringify(prune)}`);
    const kept = (prune.result?.keep as Array<{ id: string }>).map((point) => point.id).sort();
    const listed = (
      (await call('GET', `/v1/sites/${site}/restore-points`)).body.items as Array<{
        id: string;
        provider: string;
        state: string;
      }>
    )
      .filter((point) => point.provider === provider && point.state === 'complete')
      .map((point) => point.id)
      .sort();
    assert.deepEqual(listed, kept, `${label}: what the prune kept is all that is left`);
    assert.ok(kept.length > 0, `${label}: a complete chain is kept`);
    for (const id of kept) {
      const restore = await runServiceJob(service!, `/v1/sites/${site}/restores`, {
        restorePoint: id,
        paths: ['shadow/index.html'],
      });
      assert.equal(restore.status, 'succeeded', `${label}: kept point ${id}: ${JSON.stringify(restore)}`);
      const restored = readFileSync(join(restore.result?.destination as string, 'shadow', 'index.html'), 'utf8');
      if (indexAt.has(id)) assert.equal(restored, indexAt.get(id), `${label}: kept point ${id}`);
    }
    const removed = (prune.result?.removed as unknown[]).length;
    return `; the next prune removed ${removed} more, kept ${kept.length}, each restored`;
  };

  // One test per round: each stays well within the suite's per-test timeout, and a failing round is named.
  for (let round = 1; round <= ROUNDS; round++) {
    const pruneRound = round % PRUNE_EVERY === 0;
    const drawn: Provider = random() < 0.5 ? 'duplicity' : 'bacula';
    const provider: Provider = pruneRound ? ((round / PRUNE_EVERY) % 2 === 1 ? 'duplicity' : 'bacula') : drawn;
    const drawnAction = ACTIONS[Math.floor(random() * ACTIONS.length)];
    const action: Action = pruneRound ? 'prune' : drawnAction;
    const delay = Math.floor(random() * MAX_KILL_DELAY_MS);
    const site = action === 'export' ? sites.duplicity : sites[provider];
    const label = `round ${round} (seed ${seed}): ${action}${action === 'export' ? '' : ` with ${provider}`}, kill after ${delay} ms`;
    it(`${label}: restarted, no leftovers, the next backup and restore succeed`, async (ctx) => {
      marker += 1;
      writeFileSync(indexOf(site), `marker ${marker}\n`);
      let path: string;
      let body: object;
      if (action === 'export') {
        path = '/v1/exports';
        body = { sites: [site] };
      } else if (action === 'prune') {
        const full = await runServiceJob(service!, `/v1/sites/${site}/backups`, {
          level: 'full',
          provider,
          exportDatabases: false,
        });
        assert.equal(full.status, 'succeeded', `${label}: ${JSON.stringify(full)}`);
        indexAt.set(full.result?.restorePoint as string, `marker ${marker}\n`);
        path = `/v1/sites/${site}/prune`;
        body = { provider };
      } else if (action === 'full' || action === 'incremental') {
        path = `/v1/sites/${site}/backups`;
        body = { level: action, provider, exportDatabases: false };
      } else {
        path = `/v1/sites/${site}/restores`;
        body = {
          restorePoint: await newestPoint(site, provider),
          target: action === 'staging-restore' ? 'staging' : 'in-place',
        };
      }
      const started = await call('POST', path, body);
      assert.equal(started.status, 202, `${label}: ${JSON.stringify(started.body)}`);
      const id = started.body.id as string;
      await waitForServiceJob(service!, id, (job) => job.status !== 'queued', 60_000).catch(() => undefined);
      await sleep(delay);
      await restart();

      const killed = (await call('GET', `/v1/jobs/${id}`)).body as JobBody;
      assert.ok(['interrupted', 'succeeded'].includes(killed.status), `${label}: ${JSON.stringify(killed)}`);
      const active = (await call('GET', '/v1/jobs?status=running')).body.items as JobBody[];
      const queued = (await call('GET', '/v1/jobs?status=queued')).body.items as JobBody[];
      assert.deepEqual([...active, ...queued], [], `${label}: no job left running or queued`);
      assert.deepEqual(duplicityRuns(site, dataDir), [], `${label}: no duplicity left`);
      assert.deepEqual(dumpRuns(`${P}shop`), [], `${label}: no mariadb-dump left`);
      assert.deepEqual(await baculaJobsRunning(), [], `${label}: no Bacula job of ours left on the director`);
      assert.deepEqual(filesIn(join(dataDir, 'work')), [], `${label}: no work directory left`);
      // A restore that finished before the kill keeps its staging copy (that is its result); an interrupted one
      // leaves nothing, work area included.
      assert.deepEqual(
        filesIn(join(dataDir, 'restores')).filter(
          (name) => name.startsWith(id) && (killed.status === 'interrupted' || name !== id),
        ),
        [],
        `${label}: no half-restored staging or work area left`,
      );
      assert.deepEqual(
        filesIn(virtualRoot).filter((name) => name.startsWith('.restore-')),
        [],
        `${label}: no in-place restore directory left`,
      );
      const exportDir = join(virtualRoot, sites.duplicity, 'shadow/var/backups/databases/mysql');
      await waitUntil(`${label}: no partial export`, () => !filesIn(exportDir).some((f) => f.endsWith('.partial')));
      const pruned = action === 'prune' ? await checkPrunedSite(label, site, provider) : '';

      // The site must back up and restore its newest point, with the current content.
      writeFileSync(indexOf(site), `after ${marker}\n`);
      const backup = await runServiceJob(service!, `/v1/sites/${site}/backups`, {
        level: 'incremental',
        provider: action === 'export' ? 'duplicity' : provider,
        exportDatabases: false,
      });
      assert.equal(backup.status, 'succeeded', `${label}: ${JSON.stringify(backup)}`);
      const restore = await runServiceJob(service!, `/v1/sites/${site}/restores`, {
        restorePoint: backup.result?.restorePoint,
        paths: ['shadow/index.html'],
      });
      assert.equal(restore.status, 'succeeded', `${label}: ${JSON.stringify(restore)}`);
      const restored = readFileSync(join(restore.result?.destination as string, 'shadow', 'index.html'), 'utf8');
      assert.equal(restored, `after ${marker}\n`, label);
      indexAt.set(backup.result?.restorePoint as string, restored);
      const archive = join(dataDir, 'duplicity', 'archive', site);
      assert.deepEqual(
        existsSync(archive) ? readdirSync(archive).filter((name) => name.endsWith('.part')) : [],
        [],
        `${label}: no partial duplicity file left once the chain went on`,
      );
      recovered += 1;
      ctx.diagnostic(`killed job ${killed.status}${pruned}; recovered (${recovered} / ${round} so far)`);
    });
  }
});
