/**
 * Scheduler benchmark: one evaluation of every site (policy lookup, each level's latest slot with the site's spread
 * offset, the slot cursors from the catalog) for N sites under one default policy, in-process, on a simulated clock.
 *
 *   node dist-test/bench/scheduler-tick.js [--sites 10000] [--runs 7]
 *
 * The first tick records every (site, level) cursor (a site is seen for the first time); the measured ones find
 * nothing due (the steady state between slots), so no backup is started.
 */
import 'reflect-metadata';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Clock } from '../src/common/clock';
import { SchedulerService } from '../src/scheduler/scheduler.service';
import { startTestApp, tempDir } from '../test/support/test-app';
import { median, options, printTable } from './support';

async function main(): Promise<void> {
  const { sites, runs } = options({ sites: 10_000, runs: 7 });
  let now = Date.parse('2026-11-02T12:00:00Z');
  Clock.prototype.now = () => new Date(now);
  const root = tempDir('bench-scheduler-');
  const t = await startTestApp({ SCHEDULE_SPREAD_MINUTES: '30', LOG_LEVEL: 'warn' }, root);
  try {
    for (let n = 1; n <= sites; n++) mkdirSync(join(t.config.virtualRoot, `site${n}`, 'shadow'), { recursive: true });
    const policy = await t
      .http()
      .post('/v1/policies')
      .set(t.auth('admin'))
      .send({
        name: 'weekly',
        provider: 'duplicity',
        default: true,
        schedules: { full: { cron: '0 2 * * 0' }, incremental: { cron: '0 2 * * 1-6' } },
        retention: { fullDays: 60, minFulls: 1, differentialDays: 0, incrementalDays: 14 },
      });
    if (policy.status !== 201) throw new Error(policy.text);
    const scheduler = t.app.get(SchedulerService);
    const firstStart = performance.now();
    const first = await scheduler.tick();
    const firstMs = performance.now() - firstStart;
    if (first.sites !== sites) throw new Error(`evaluated ${first.sites} of ${sites} sites`);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      now += 60_000;
      const start = performance.now();
      const summary = await scheduler.tick();
      times.push(performance.now() - start);
      if (summary.started.length > 0) throw new Error('a backup was due; the benchmark must measure idle ticks');
    }
    const figures = {
      sites,
      runs,
      firstTickMs: Math.round(firstMs),
      tickMedianMs: Math.round(median(times) * 10) / 10,
      perSiteUs: Math.round((median(times) / sites) * 1000 * 10) / 10,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      heapUsedMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    };
    printTable(`scheduler tick, ${sites} sites`, [
      ['first tick (records every cursor)', `${figures.firstTickMs} ms`],
      ['idle tick, median', `${figures.tickMedianMs} ms (${figures.perSiteUs} µs per site)`],
      ['memory', `RSS ${figures.rssMiB} MiB, heap ${figures.heapUsedMiB} MiB`],
    ]);
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    await t.app.close();
    rmSync(root, { recursive: true, force: true });
  }
}

void main();
