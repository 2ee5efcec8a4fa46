import assert from 'node:assert/strict';
import { Clock } from '../../../src/common/clock';
import { SchedulerService, type TickSummary } from '../../../src/scheduler/scheduler.service';
import type { JobBody } from '../../support/jobs';
import type { TestApp } from '../../support/test-app';

/**
 * Simulated time for a whole test file: patches Clock's prototype, so an app started afterwards (even its start-up
 * tick) reads it. `restore()` puts the wall clock back.
 */
export class SimulatedTime {
  private now: number;
  private readonly original = Object.getOwnPropertyDescriptor(Clock.prototype, 'now')!;

  constructor(start: string) {
    this.now = Date.parse(start);
    const read = () => new Date(this.now);
    Clock.prototype.now = read;
  }

  set(iso: string): void {
    this.now = Date.parse(iso);
  }

  advance(ms: number): void {
    this.now += ms;
  }

  get iso(): string {
    return new Date(this.now).toISOString();
  }

  restore(): void {
    Object.defineProperty(Clock.prototype, 'now', this.original);
  }
}

/** One scheduler evaluation at the simulated time, then waits until every job it queued has ended. */
export async function tickAndSettle(t: TestApp): Promise<TickSummary> {
  const summary = await t.app.get(SchedulerService).tick();
  await settle(t);
  return summary;
}

/** Waits until no job is queued or running. */
export async function settle(t: TestApp, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const active = [];
    for (const status of ['queued', 'running']) {
      const res = await t.http().get(`/v1/jobs?status=${status}`).set(t.auth('monitor'));
      assert.equal(res.status, 200, res.text);
      active.push(...(res.body.items as JobBody[]));
    }
    if (active.length === 0) return;
    if (Date.now() > deadline) throw new Error(`jobs still active: ${JSON.stringify(active)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every job of a kind for a site, oldest first, through the API. */
export async function jobsOf(t: TestApp, site: string, kind: string): Promise<JobBody[]> {
  const items: JobBody[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; text: string; body: { items: JobBody[]; nextCursor: string | null } } = await t
      .http()
      .get(`/v1/jobs?site=${site}&kind=${kind}&limit=500${cursor ? `&cursor=${cursor}` : ''}`)
      .set(t.auth('monitor'));
    assert.equal(res.status, 200, res.text);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return items.reverse();
}

export async function createPolicy(t: TestApp, body: object, sites: string[]): Promise<{ id: string }> {
  const res = await t.http().post('/v1/policies').set(t.auth('admin')).send(body);
  assert.equal(res.status, 201, res.text);
  for (const site of sites) {
    const assigned = await t.http().put(`/v1/sites/${site}/policy`).set(t.auth('admin')).send({ policy: res.body.id });
    assert.equal(assigned.status, 200, assigned.text);
  }
  return res.body as { id: string };
}
