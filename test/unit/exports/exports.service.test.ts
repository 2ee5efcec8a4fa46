import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/load-config';
import type { DatabaseExporter } from '../../../src/exports/database-exporter';
import type { DatabaseServers } from '../../../src/exports/database-servers';
import { ExportError, failedResult, succeededResult } from '../../../src/exports/export-error';
import { ExportStore } from '../../../src/exports/export-store';
import type { DatabaseEngine, ExportEntry, ExportStep } from '../../../src/exports/export.model';
import { ExportsService } from '../../../src/exports/exports.service';
import type { JobContext } from '../../../src/jobs/job-context';
import type { Site } from '../../../src/sites/site';
import { siteWithPrefixes } from '../../support/sample-sites';

const root = mkdtempSync(join(tmpdir(), 'exports-service-'));

const site = (n: number, prefixes: Partial<Record<DatabaseEngine, string>>): Site =>
  siteWithPrefixes(root, n, prefixes);

function context(): JobContext & { logs: string[] } {
  const logs: string[] = [];
  return {
    jobId: 'j',
    signal: new AbortController().signal,
    workDir: root,
    logs,
    log: (line) => logs.push(line),
    progress: () => undefined,
    trackPid: () => undefined,
  };
}

const entryFor = (step: ExportStep): ExportEntry => ({
  engine: step.engine,
  database: step.database,
  file: `x/${step.database}`,
  bytes: 1,
  sha256: '0'.repeat(64),
  createdAt: '2026-11-26T00:00:00.000Z',
  durationMs: 1,
  exporter: 'native',
  format: 'sql-gzip',
});

/** Fails the databases named in `failing`; records what it was asked for. */
class FakeExporter implements DatabaseExporter {
  readonly kind = 'native' as const;
  readonly asked: string[] = [];
  constructor(private readonly failing: string[] = []) {}
  exportSteps(steps: readonly ExportStep[]) {
    return Promise.resolve(
      steps.map((step) => {
        this.asked.push(step.database);
        return this.failing.includes(step.database)
          ? failedResult(step, new ExportError('dump-failed', `no ${step.database}`), 1)
          : succeededResult(step, entryFor(step), 1);
      }),
    );
  }
}

function servers(lists: Partial<Record<DatabaseEngine, string[] | Error>>, calls: string[] = []): DatabaseServers {
  return {
    listDatabases: (engine: DatabaseEngine) => {
      calls.push(engine);
      const list = lists[engine];
      return list instanceof Error ? Promise.reject(list) : Promise.resolve(list ?? []);
    },
  } as unknown as DatabaseServers;
}

const store = new ExportStore(loadConfig({ DATA_DIR: root, LOG_FORMAT: 'json' }));

describe('ExportsService', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('plans site by site, MariaDB before PostgreSQL, asking each server once', async () => {
    const calls: string[] = [];
    const service = new ExportsService(
      new FakeExporter(),
      servers({ mysql: ['b_x', 'a_2', 'a_1', 'ax', 'mysql'], pgsql: ['a_pg', 'b_pg', 'postgres'] }, calls),
      store,
    );
    const plan = await service.planExport([
      site(2, { mysql: 'b_', pgsql: 'b_' }),
      site(1, { mysql: 'a_', pgsql: 'a_' }),
    ]);
    assert.deepEqual(
      plan.steps.map((s) => `${s.site.id} ${s.engine} ${s.database}`),
      ['site2 mysql b_x', 'site2 pgsql b_pg', 'site1 mysql a_1', 'site1 mysql a_2', 'site1 pgsql a_pg'],
    );
    assert.deepEqual(calls, ['mysql', 'pgsql']);
  });

  it('does not ask a server no site has a prefix for', async () => {
    const calls: string[] = [];
    const service = new ExportsService(new FakeExporter(), servers({ mysql: new Error('down') }, calls), store);
    const plan = await service.planExport([site(3, { pgsql: 'c_' })]);
    assert.deepEqual(calls, ['pgsql']);
    assert.deepEqual(plan, { steps: [], unlisted: [] });
  });

  it('runExport: listing failures and failed steps are reported, the other steps still run', async () => {
    const exporter = new FakeExporter(['a_1']);
    const service = new ExportsService(
      exporter,
      servers({
        mysql: ['a_1', 'a_2', 'b_1'],
        pgsql: new ExportError('server-unreachable', 'PostgreSQL at x is down'),
      }),
      store,
    );
    const run = await service.runExport([site(4, { mysql: 'a_', pgsql: 'a_' }), site(5, { mysql: 'b_' })], context());
    assert.deepEqual(exporter.asked, ['a_1', 'a_2', 'b_1']);
    assert.deepEqual(
      run.results.map((r) => `${r.site} ${r.engine} ${r.database} ${r.status} ${r.error?.code ?? '-'}`),
      [
        'site4 pgsql null failed server-unreachable',
        'site4 mysql a_1 failed dump-failed',
        'site4 mysql a_2 succeeded -',
        'site5 mysql b_1 succeeded -',
      ],
    );
    assert.equal(run.failed, true);
    assert.equal(run.cancelled, false);
  });

  it('exportDatabase returns the entry, or throws the step’s error', async () => {
    const service = new ExportsService(new FakeExporter(['bad']), servers({}), store);
    const s = site(6, {});
    assert.equal(
      (await service.exportDatabase({ site: s, engine: 'mysql', database: 'good' }, context())).database,
      'good',
    );
    await assert.rejects(
      service.exportDatabase({ site: s, engine: 'mysql', database: 'bad' }, context()),
      (error: ExportError) =>
        error instanceof ExportError && error.code === 'dump-failed' && error.message === 'no bad',
    );
  });
});
