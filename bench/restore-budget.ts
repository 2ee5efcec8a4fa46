/**
 * Restore-time budget benchmark (issue 15): two identical sites back up daily with duplicity for N simulated days
 * through the scheduler, one under a policy without a budget (a full, then N incrementals), one with `maxChain` (the
 * scheduler makes a full when the next incremental would replay more sets). Then the newest point of each is restored
 * through the API, side by side: what the restore replays (sets, bytes) and how long it takes.
 *
 *   node dist-test/bench/restore-budget.js [--days 30] [--files 2000] [--fileKiB 4] [--changed 100] [--maxChain 7]
 *     [--runs 3]
 *
 * Days are simulated (the scheduler's clock and the files' mtimes); every duplicity run and restore is real.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Clock } from '../src/common/clock';
import { SchedulerService } from '../src/scheduler/scheduler.service';
import { runJob, type JobBody } from '../test/support/jobs';
import { startTestApp, tempDir, type TestApp } from '../test/support/test-app';
import { median, options, printTable } from './support';

const DAY = 86_400_000;
const START = Date.parse('2026-11-02T02:00:30Z');

interface Point {
  id: string;
  level: string;
  state: string;
  replay: { sets: number; bytes: number | null };
}

function writeFiles(dir: string, names: number[], fileKiB: number, at: number): void {
  for (const n of names) {
    const file = join(dir, `f${n}.bin`);
    writeFileSync(file, randomBytes(fileKiB * 1024));
    utimesSync(file, at / 1000, at / 1000);
  }
}

async function settle(t: TestApp): Promise<void> {
  for (;;) {
    let active = 0;
    for (const status of ['queued', 'running']) {
      const res = await t.http().get(`/v1/jobs?status=${status}`).set(t.auth('monitor'));
      active += (res.body.items as unknown[]).length;
    }
    if (active === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  const { days, files, fileKiB, changed, maxChain, runs } = options({
    days: 30,
    files: 2000,
    fileKiB: 4,
    changed: 100,
    maxChain: 7,
    runs: 3,
  });
  let now = START - 3_600_000;
  Clock.prototype.now = () => new Date(now);
  const root = tempDir('bench-restore-budget-');
  const t = await startTestApp(
    { DUPLICITY_TARGET: `file://${root}/target`, SCHEDULE_SPREAD_MINUTES: '0', LOG_LEVEL: 'warn' },
    root,
  );
  const sites = { without: 'site1', with: 'site2' } as const;
  try {
    const all = Array.from({ length: files }, (_, i) => i);
    for (const site of Object.values(sites)) {
      mkdirSync(join(t.config.virtualRoot, site, 'info'), { recursive: true });
      const data = join(t.config.virtualRoot, site, 'shadow', 'data');
      mkdirSync(data, { recursive: true });
      writeFiles(data, all, fileKiB, now);
    }
    // Nothing is pruned: the sites keep every point the days make.
    const base = {
      provider: 'duplicity',
      schedules: { incremental: { cron: '0 2 * * *' } },
      retention: { fullDays: 36500, minFulls: 1, differentialDays: 0, incrementalDays: 36500 },
      exportDatabases: false,
    };
    for (const [name, site] of Object.entries(sites)) {
      const body = { ...base, name: `bench-${name}`, ...(name === 'with' ? { budget: { maxChain } } : {}) };
      const policy = await t.http().post('/v1/policies').set(t.auth('admin')).send(body);
      if (policy.status !== 201) throw new Error(policy.text);
      const assigned = await t
        .http()
        .put(`/v1/sites/${site}/policy`)
        .set(t.auth('admin'))
        .send({ policy: policy.body.id });
      if (assigned.status !== 200) throw new Error(assigned.text);
    }
    const scheduler = t.app.get(SchedulerService);
    await scheduler.tick(); // a new policy starts at its next slot
    // Day 0 makes the full (no chain yet); days 1..N the incrementals (or, under the budget, fulls where due).
    for (let day = 0; day <= days; day++) {
      now = START + day * DAY;
      if (day > 0) {
        const touched = Array.from({ length: Math.min(changed, files) }, (_, i) => (day * changed + i) % files);
        for (const site of Object.values(sites)) {
          writeFiles(join(t.config.virtualRoot, site, 'shadow', 'data'), touched, fileKiB, now - 10_000);
        }
      }
      const summary = await scheduler.tick();
      if (summary.started.length !== 2) throw new Error(`day ${day}: ${summary.started.length} backups started`);
      await settle(t);
      process.stderr.write(`day ${day} of ${days} backed up\n`);
    }

    const figures: Record<string, unknown> = { days, files, fileKiB, changed, maxChain, runs };
    for (const [name, site] of Object.entries(sites)) {
      const backups = (await t.http().get(`/v1/jobs?site=${site}&kind=backup&limit=500`).set(t.auth('monitor'))).body
        .items as JobBody[];
      const failed = backups.filter((job) => job.status !== 'succeeded');
      if (failed.length > 0) throw new Error(`${site}: ${JSON.stringify(failed[0])}`);
      const points = (await t.http().get(`/v1/sites/${site}/restore-points`).set(t.auth('monitor'))).body
        .items as Point[];
      const newest = points[0];
      const times: number[] = [];
      for (let run = 0; run < runs; run++) {
        const start = performance.now();
        const job = await runJob(t, `/v1/sites/${site}/restores`, { restorePoint: newest.id });
        times.push(performance.now() - start);
        if (job.status !== 'succeeded') throw new Error(`${site} restore: ${JSON.stringify(job)}`);
        rmSync(job.result?.destination as string, { recursive: true, force: true });
      }
      figures[name] = {
        fulls: backups.filter((job) => job.result?.level === 'full').length,
        newestLevel: newest.level,
        replaySets: newest.replay.sets,
        replayMiB: Math.round(((newest.replay.bytes ?? 0) / 2 ** 20) * 10) / 10,
        restoreMedianMs: Math.round(median(times)),
      };
    }
    const row = (name: 'without' | 'with'): string => {
      const f = figures[name] as Record<string, number | string>;
      return `${f.restoreMedianMs} ms, replays ${f.replaySets} sets / ${f.replayMiB} MiB (${f.fulls} full(s) made)`;
    };
    printTable(`restore of the newest point after ${days} daily backups (${files} × ${fileKiB} KiB, duplicity)`, [
      ['without a budget', row('without')],
      [`with maxChain ${maxChain}`, row('with')],
    ]);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await t.app.close();
    rmSync(root, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
