import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppConfig } from '../../../src/config/app-config';
import { JobFailure } from '../../../src/jobs/job-failure';
import { RetryTimer, TargetGate } from '../../../src/jobs/target-gate';

/** A timer that records each wait and lets the test decide when it ends. */
class FakeTimer extends RetryTimer {
  readonly waits: number[] = [];
  private pending: Array<() => void> = [];
  override sleep(ms: number): Promise<void> {
    this.waits.push(ms);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  /** Ends every wait started so far, then lets the awaiting code run. */
  async elapse(): Promise<void> {
    const due = this.pending;
    this.pending = [];
    due.forEach((resolve) => resolve());
    await new Promise((resolve) => setImmediate(resolve));
  }
  get waiting(): number {
    return this.pending.length;
  }
}

const unreachable = () => new JobFailure('target-unreachable', 'Connection refused');

function gateWith(attempts: number, maxSeconds: number): { gate: TargetGate; timer: FakeTimer } {
  const timer = new FakeTimer();
  const config = { targetRetry: { attempts, maxSeconds } } as AppConfig;
  return { gate: new TargetGate(config, timer), timer };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

describe('TargetGate', () => {
  it('retries an unreachable target with a doubling wait capped at TARGET_RETRY_MAX_SECONDS, then succeeds', async () => {
    const { gate, timer } = gateWith(5, 5);
    let tries = 0;
    const lines: string[] = [];
    const run = gate.run(
      'duplicity',
      () => {
        tries += 1;
        return tries < 4 ? Promise.reject(unreachable()) : Promise.resolve('done');
      },
      { log: (line) => lines.push(line) },
    );
    for (let i = 0; i < 3; i++) {
      await until(() => timer.waiting === 1);
      assert.equal(gate.isHeld('duplicity'), true, 'jobs needing the target are held while it is probed');
      await timer.elapse();
    }
    assert.equal(await run, 'done');
    assert.deepEqual(timer.waits, [2000, 4000, 5000]);
    assert.equal(gate.isHeld('duplicity'), false);
    assert.match(lines[0], /unreachable \(try 1 of 5\); trying again in 2 s/);
  });

  it('gives up after TARGET_RETRY_ATTEMPTS tries, saying so, and releases the held jobs', async () => {
    const { gate, timer } = gateWith(3, 60);
    let released = 0;
    gate.onChange(() => (released += 1));
    const run = gate
      .run('duplicity', () => Promise.reject(unreachable()), { log: () => undefined })
      .then(
        () => null,
        (error: unknown) => error,
      );
    await until(() => timer.waiting === 1);
    await timer.elapse();
    await until(() => timer.waiting === 1);
    await timer.elapse();
    const error = (await run) as JobFailure;
    assert.ok(error instanceof JobFailure);
    assert.equal(error.code, 'target-unreachable');
    assert.match(error.message, /gave up after 3 tries/);
    assert.deepEqual(timer.waits, [2000, 4000]);
    assert.equal(gate.isHeld('duplicity'), false);
    assert.equal(released, 1);
  });

  it('does not retry what a retry cannot cure', async () => {
    const { gate, timer } = gateWith(5, 60);
    let tries = 0;
    const refused = new JobFailure('target-auth-refused', 'Authentication failed.');
    await assert.rejects(
      gate.run(
        'duplicity',
        () => {
          tries += 1;
          return Promise.reject(refused);
        },
        { log: () => undefined },
      ),
      refused,
    );
    assert.equal(tries, 1);
    assert.deepEqual(timer.waits, []);
  });
});
