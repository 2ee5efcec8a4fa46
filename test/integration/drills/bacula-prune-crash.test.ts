import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jobIdOf } from '../../../src/providers/bacula/bacula-restore-points';
import { parseTable } from '../../../src/providers/bacula/bconsole-output';
import { startBacula, type BaculaHarness } from '../../support/bacula-harness';
import type { JobBody } from '../../support/jobs';
import { makeSites } from '../../support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../../support/service-process';
import { diffSnapshots, snapshotTree, type TreeSnapshot } from '../../support/site-tree';
import { tempDir, TOKENS, writeTokensFile } from '../../support/test-app';
import { isAlive, processEnv, randomFile, runServiceJob, waitForServiceJob, waitUntil } from './drill-support';

interface Point {
  id: string;
  level: string;
  state: string;
}

/** The prune metrics as /metrics shows them. */
async function pruneMetrics(service: ServiceProcess): Promise<{ removed: number; freed: number; kept: number }> {
  const res = await fetch(`${service.url}/metrics`, { headers: { Authorization: `Bearer ${TOKENS.monitor}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);
  return {
    removed: value(/^apiscp_backup_prune_points_removed_total\{provider="bacula"\} (\d+)$/m),
    freed: value(/^apiscp_backup_prune_bytes_freed_total\{provider="bacula"\} (\d+)$/m),
    kept: value(/^apiscp_backup_prune_points_kept\{site="site1",provider="bacula"\} (\d+)$/m),
  };
}

/**
 * Drill: the service SIGKILLed in the middle of a Bacula prune, after its `delete jobid=…` and before the purge and
 * truncate of the volumes those jobs emptied. A bconsole wrapper (BACULA_BCONSOLE) passes every session to
 * the real bconsole, except that while a flag file exists it holds the first `purge volume=` session (so the kill lands
 * exactly there). After the restart a second prune purges and truncates those volumes, every kept point restores
 * exactly, the next backup works, and the prune metrics (kept in the catalog) survive the restarts.
 */
describe('drill: the service killed during a Bacula prune', () => {
  let bacula: BaculaHarness;
  let service: ServiceProcess | undefined;
  let env: Record<string, string>;
  const root = tempDir('drill-bacula-prune-');
  const virtualRoot = join(root, 'virtual');
  const site = join(virtualRoot, 'site1');
  const bin = join(root, 'bin');
  const holdFlag = join(root, 'hold-purge');
  const heldPid = join(root, 'held.pid');
  const states = new Map<string, TreeSnapshot>();
  let step = 0;

  const call = (method: string, path: string, body?: object) => service!.call(method, path, body);
  /** The complete points, once the listing is scanned (a killed prune leaves it to be scanned again). */
  const points = async (): Promise<Point[]> => {
    const res = await waitUntil('a scanned listing', async () => {
      const listed = await call('GET', '/v1/sites/site1/restore-points');
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      const states = (listed.body.listings as Array<{ state: string }>).map((listing) => listing.state);
      return states.every((state) => state === 'scanned') ? listed : null;
    });
    return (res.body.items as Point[]).filter((point) => point.state === 'complete');
  };
  /** One backup of new content; the content is remembered for its point. */
  const backup = async (level: 'full' | 'incremental'): Promise<string> => {
    step += 1;
    writeFileSync(join(site, 'shadow', 'index.html'), `<h1>step ${step}</h1>\n`);
    randomFile(join(site, 'shadow', `data${step}.bin`), 1);
    const job = await runServiceJob(service!, '/v1/sites/site1/backups', { level, exportDatabases: false });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const point = job.result?.restorePoint as string;
    states.set(point, await snapshotTree(site, ['shadow']));
    return point;
  };
  const volumesOf = async (point: string): Promise<string[]> =>
    parseTable(await bacula.bconsole([`list jobmedia jobid=${jobIdOf(point)}`]))
      .map((row) => row.VolumeName)
      .filter((name) => name);
  const volume = async (name: string): Promise<Record<string, string>> => {
    const rows = parseTable(await bacula.bconsole([`list volumes pool=${bacula.env.BACULA_POOL}`]));
    const row = rows.find((r) => r.VolumeName === name);
    assert.ok(row, `volume ${name} is listed`);
    return row;
  };
  const prune = async (): Promise<JobBody> => {
    const job = await runServiceJob(service!, '/v1/sites/site1/prune', { provider: 'bacula' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    return job;
  };

  before(async () => {
    bacula = await startBacula({ maximumVolumeJobs: 1 });
    makeSites(virtualRoot, [{ n: 1, domain: 'one.example' }]);
    mkdirSync(bin);
    const real = execFileSync('sh', ['-c', 'command -v bconsole'], { encoding: 'utf8' }).trim();
    // `exec sleep` keeps the pid written, so the test can end the held session it started. An open session (its first
    // line is the provider's `@#` marker, and it writes as it goes) streams through.
    writeFileSync(
      join(bin, 'bconsole'),
      `#!/bin/sh
IFS= read -r first
case "$first" in
  "@# "*) { printf '%s\\n' "$first"; exec cat; } | '${real}' "$@"; exit $? ;;
esac
input=$(printf '%s\\n' "$first"; cat)
case "$input" in
  *"purge volume="*) if [ -e '${holdFlag}' ]; then rm -f '${holdFlag}'; echo $$ > '${heldPid}'; exec sleep 600; fi ;;
esac
printf '%s\\n' "$input" | exec '${real}' "$@"
`,
    );
    chmodSync(join(bin, 'bconsole'), 0o755);
    env = processEnv({
      ...bacula.env,
      BACULA_BCONSOLE: join(bin, 'bconsole'),
      PROVIDERS: 'bacula',
      VIRTUAL_ROOT: virtualRoot,
      DATA_DIR: join(root, 'data'),
      API_TOKENS_FILE: writeTokensFile(root),
      DUPLICITY_TARGET: `file://${root}/target`,
    });
    service = await startServiceProcess(env);
    const policy = await call('POST', '/v1/policies', {
      name: 'newest-chain',
      provider: 'bacula',
      schedules: {},
      retention: { fullDays: 0, minFulls: 1, differentialDays: 0, incrementalDays: 0 },
      exportDatabases: false,
    });
    assert.equal(policy.status, 201, JSON.stringify(policy.body));
    const assigned = await call('PUT', '/v1/sites/site1/policy', { policy: policy.body.id });
    assert.equal(assigned.status, 200, JSON.stringify(assigned.body));
  });

  after(async () => {
    const held = existsSync(heldPid) ? Number(readFileSync(heldPid, 'utf8')) : 0;
    if (held > 0 && isAlive(held)) process.kill(held, 'SIGKILL');
    await service?.stop('SIGTERM');
    await bacula?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('a prune killed between delete and purge is finished by the next; kept points restore; metrics survive', async () => {
    // A first, whole prune: the first chain goes, so the counters have something to keep across restarts.
    const a = await backup('full');
    await backup('incremental');
    const b = await backup('full');
    const first = await prune();
    assert.equal((first.result?.removed as unknown[]).length, 2, JSON.stringify(first.result));
    assert.ok(!(await points()).some((p) => p.id === a));
    const counted = await pruneMetrics(service!);
    assert.equal(counted.removed, 2);
    assert.ok(counted.freed > 0, `bytes freed counted: ${JSON.stringify(counted)}`);

    // Chain B (the full just made, one incremental), then chain C: the prune expires chain B.
    const b1 = await backup('incremental');
    const c = await backup('full');
    const c1 = await backup('incremental');
    const expired = [...(await volumesOf(b)), ...(await volumesOf(b1))];
    assert.equal(expired.length, 2, `one volume per job: ${expired.join(', ')}`);

    writeFileSync(holdFlag, '');
    const started = await call('POST', '/v1/sites/site1/prune', { provider: 'bacula' });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.id as string;
    await waitUntil(
      'the prune to reach its purge',
      async () => {
        if (existsSync(heldPid)) return true;
        const job = (await call('GET', `/v1/jobs/${id}`)).body as JobBody;
        assert.ok(['queued', 'running'].includes(job.status), `the prune ended first: ${JSON.stringify(job)}`);
        return false;
      },
      120_000,
    );
    await service!.stop('SIGKILL');
    const held = Number(readFileSync(heldPid, 'utf8'));
    if (isAlive(held)) process.kill(held, 'SIGKILL');

    // Midway for real: the expired jobs are gone from the catalog, their volumes still hold their bytes.
    for (const name of expired) {
      const row = await volume(name);
      assert.notEqual(row.VolStatus, 'Purged', `${name} not purged yet`);
      assert.ok(Number(row.VolBytes.replace(/,/g, '')) > 64 * 1024, `${name} still holds data: ${row.VolBytes}`);
    }
    assert.deepEqual(
      parseTable(await bacula.bconsole(['list jobmedia'])).filter((r) => expired.includes(r.VolumeName)),
      [],
    );

    service = await startServiceProcess(env);
    const killed = await waitForServiceJob(service, id, () => true);
    assert.equal(killed.status, 'interrupted', JSON.stringify(killed));
    assert.deepEqual(
      (await points()).map((p) => p.id).sort(),
      [c, c1].sort(),
      'the killed prune removed the expired chain and nothing kept',
    );

    const second = await prune();
    assert.deepEqual(second.result?.removed, [], 'nothing left to remove but the volumes');
    const notes = (second.result?.notes as string[]).join('\n');
    assert.match(notes, /^2 point\(s\) a killed prune removed are counted now$/m);
    for (const name of expired) {
      assert.match(notes, new RegExp(`volume ${name} emptied, purged and truncated`));
      const row = await volume(name);
      assert.equal(row.VolStatus, 'Purged', `${name} purged`);
      assert.ok(Number(row.VolBytes.replace(/,/g, '')) < 64 * 1024, `${name} truncated: ${row.VolBytes}`);
    }
    assert.ok((second.result?.bytesFreed as number) > 0, JSON.stringify(second.result));
    const third = await prune();
    assert.deepEqual(third.result?.notes, ['nothing to remove'], 'the work was finished once');

    for (const point of await points()) {
      const restore = await runServiceJob(service, '/v1/sites/site1/restores', { restorePoint: point.id });
      assert.equal(restore.status, 'succeeded', JSON.stringify(restore));
      const restored = await snapshotTree(restore.result?.destination as string, ['shadow']);
      assert.deepEqual(diffSnapshots(states.get(point.id)!, restored), [], point.id);
    }
    const next = await backup('incremental');
    assert.ok((await points()).some((p) => p.id === next));

    // The killed prune's removals are counted (by the next prune), and a restart (the kill above, an orderly one now)
    // does not reset the counters.
    const before = await pruneMetrics(service);
    assert.equal(before.removed, counted.removed + 2, JSON.stringify({ counted, before }));
    assert.ok(before.freed > counted.freed, JSON.stringify({ counted, before }));
    assert.equal(before.kept, 2);
    await service.stop('SIGTERM');
    service = await startServiceProcess(env);
    assert.deepEqual(await pruneMetrics(service), before, 'the prune metrics survive a restart');
  });
});
