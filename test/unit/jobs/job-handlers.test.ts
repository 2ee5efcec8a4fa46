import assert from 'node:assert/strict';
import { Injectable } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { describe, it } from 'node:test';
import { Clock } from '../../../src/common/clock';
import { loadConfig } from '../../../src/config/load-config';
import { JobEngine } from '../../../src/jobs/job-engine';
import type { JobLogStore } from '../../../src/jobs/job-log.store';
import { indexJobHandlers, JobHandler } from '../../../src/jobs/job-handler';
import type { JobRepository } from '../../../src/jobs/job.repository';

const run = () => Promise.resolve({});

@JobHandler('backup')
@Injectable()
class BackupHandler implements JobHandler {
  run = run;
}
@JobHandler('restore')
@Injectable()
class RestoreHandler implements JobHandler {
  run = run;
}
@JobHandler('export')
@Injectable()
class ExportHandler implements JobHandler {
  run = run;
}
@JobHandler('prune')
@Injectable()
class PruneHandler implements JobHandler {
  run = run;
}
@JobHandler('webapp')
@Injectable()
class WebappHandler implements JobHandler {
  run = run;
}
@JobHandler('backup')
@Injectable()
class SecondBackupHandler implements JobHandler {
  run = run;
}
@JobHandler('archive')
@Injectable()
class ArchiveHandler implements JobHandler {
  run = run;
}
@Injectable()
class NotAHandler {}

const ALL = [BackupHandler, RestoreHandler, ExportHandler, PruneHandler, WebappHandler];

/** Starts the engine's discovery over a Nest module holding `providers`, as the application's start-up does. */
async function discover(providers: Array<new () => object>): Promise<JobEngine> {
  const module = await Test.createTestingModule({ imports: [DiscoveryModule], providers }).compile();
  const engine = new JobEngine(
    {} as JobRepository,
    {} as JobLogStore,
    loadConfig({ DATA_DIR: '/nonexistent/job-handlers-test', LOG_FORMAT: 'json' }),
    new Clock(),
    module.get(DiscoveryService),
  );
  engine.onModuleInit();
  return engine;
}

describe('@JobHandler discovery', () => {
  it('finds one handler per engine kind, and ignores providers that are none', async () => {
    const engine = await discover([...ALL, NotAHandler]);
    const handlers = (engine as unknown as { handlers: Map<string, object> }).handlers;
    assert.deepEqual([...handlers.keys()].sort(), ['backup', 'export', 'prune', 'restore', 'webapp']);
    assert.ok(handlers.get('backup') instanceof BackupHandler);
    assert.ok(handlers.get('webapp') instanceof WebappHandler);
  });

  it('fails start-up when a kind has no handler', async () => {
    await assert.rejects(
      discover(ALL.filter((handler) => handler !== PruneHandler)),
      /Job handlers are miswired: no provider is marked @JobHandler\('prune'\)\./,
    );
  });

  it('fails start-up when a kind has two handlers, naming both', async () => {
    await assert.rejects(
      discover([...ALL, SecondBackupHandler]),
      /2 providers are marked @JobHandler\('backup'\): BackupHandler, SecondBackupHandler/,
    );
  });

  it('fails start-up when a kind that runs in its request gets a handler', async () => {
    await assert.rejects(discover([...ALL, ArchiveHandler]), /'archive' jobs run in their request.*ArchiveHandler/);
  });

  it('reports every problem at once', () => {
    assert.throws(
      () => indexJobHandlers([]),
      (error: Error) =>
        ['backup', 'export', 'restore', 'prune', 'webapp'].every((kind) =>
          error.message.includes(`@JobHandler('${kind}')`),
        ),
    );
  });
});
