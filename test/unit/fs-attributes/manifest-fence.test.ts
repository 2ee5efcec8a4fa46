import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunRequest } from '../../../src/common/process/process-runner';
import { ManifestFence } from '../../../src/providers/fs-attributes/manifest-fence';
import { JobFailure } from '../../../src/jobs/job-failure';
import { FakeRunner } from '../../support/fake-runner';

/** What the fake helpers were told on stdin. */
const fed: string[] = [];

/** A helper that arms, then holds until it is told `release` on stdin (or its run is aborted). */
function armedHelper(request: RunRequest): Promise<object> {
  request.onLine?.('stdout', 'armed');
  return new Promise((resolve) => {
    request.stdin?.on('data', (chunk: Buffer | string) => {
      fed.push(String(chunk));
      if (String(chunk).includes('release')) {
        request.onLine?.('stdout', 'released');
        resolve({});
      }
    });
    request.signal?.addEventListener('abort', () => resolve({ cancelled: true, exitCode: null, signal: 'SIGTERM' }));
  });
}

function deferred<T>() {
  let resolve: (value: T) => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** besideEngine's options for a duplicity run that goes on until its signal stops it (`job`: the job's own signal). */
function engineUntilStopped(job = new AbortController().signal) {
  let engineSignal: AbortSignal | undefined;
  return {
    engine: (signal: AbortSignal): Promise<never> => {
      engineSignal = signal;
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped'))));
    },
    engineName: 'duplicity',
    signal: job,
    log: () => undefined,
    stopped: () => engineSignal?.aborted === true,
  };
}

describe('ManifestFence.besideEngine', () => {
  it('without fanotify: the capture first, then the engine; the helper is not asked again', async () => {
    const runner = new FakeRunner(() => ({ stdout: ['unavailable fanotify_init: Operation not permitted'] }));
    const fence = new ManifestFence(runner.asProcessRunner());
    for (let run = 0; run < 2; run++) {
      const order: string[] = [];
      const outcome = await fence.besideEngine({
        directory: '/manifests/site1',
        capture: async () => {
          order.push('capture');
          await Promise.resolve();
          order.push('captured');
          return 'manifest';
        },
        engine: () => {
          order.push('engine');
          return Promise.resolve('backup');
        },
        engineName: 'duplicity',
        signal: new AbortController().signal,
        log: () => undefined,
      });
      assert.deepEqual(outcome, { captured: 'manifest', engine: 'backup' });
      assert.deepEqual(order, ['capture', 'captured', 'engine']);
    }
    assert.equal(runner.requests.length, 1);
  });

  it('armed: the engine starts while the capture runs, and the fence is released only once the capture is done', async () => {
    const runner = new FakeRunner(armedHelper);
    const fence = new ManifestFence(runner.asProcessRunner());
    const capture = deferred<string>();
    const engineStarted = deferred<void>();
    const log: string[] = [];
    fed.length = 0;
    const outcome = fence.besideEngine({
      directory: '/proc/1/fd/9',
      capture: () => capture.promise,
      engine: () => {
        engineStarted.resolve();
        return Promise.resolve('backup');
      },
      engineName: 'restic',
      signal: new AbortController().signal,
      log: (line) => log.push(line),
    });
    await engineStarted.promise;
    assert.equal(log.length, 0, 'nothing released before the capture is done');
    assert.ok(!fed.join('').includes('release'), 'the fence still holds');
    capture.resolve('manifest');
    assert.deepEqual(await outcome, { captured: 'manifest', engine: 'backup' });
    assert.match(log.join('\n'), /restic started beside the attribute capture/);
    assert.deepEqual(JSON.parse(fed.join('').split('\n')[0]), { directory: '/proc/1/fd/9', allow_pids: [process.pid] });
    assert.match(fed.join(''), /\nrelease\n$/);
  });

  it('a failed capture stops the engine and is what the job fails with', async () => {
    const runner = new FakeRunner(armedHelper);
    const fence = new ManifestFence(runner.asProcessRunner());
    const engine = engineUntilStopped();
    await assert.rejects(
      fence.besideEngine({
        directory: '/manifests/site1',
        capture: () => Promise.reject(new Error('walk failed')),
        ...engine,
      }),
      /walk failed/,
    );
    assert.equal(engine.stopped(), true);
  });

  it('a helper that exits before it is released fails the job and stops the engine', async () => {
    // Arms, then exits at once: whatever waited at the fence went through unchecked.
    const runner = new FakeRunner(() => ({ stdout: ['armed'], exitCode: null, signal: 'SIGKILL' }));
    const fence = new ManifestFence(runner.asProcessRunner());
    const engine = engineUntilStopped();
    const capture = deferred<string>();
    const outcome = fence.besideEngine({
      directory: '/manifests/site1',
      capture: () => capture.promise,
      ...engine,
    });
    await new Promise((resolve) => setImmediate(resolve));
    capture.resolve('manifest');
    await assert.rejects(outcome, (error) => error instanceof JobFailure && error.code === 'attribute-fence-failed');
    assert.equal(engine.stopped(), true);
  });

  it('a job cancelled during the capture ends as the engine reports the cancel, not as a broken fence', async () => {
    // The helper runs under the job's signal, so a cancel stops it too: that is no early exit of the fence.
    const runner = new FakeRunner(armedHelper);
    const fence = new ManifestFence(runner.asProcessRunner());
    const job = new AbortController();
    const engine = engineUntilStopped(job.signal);
    const capture = deferred<string>();
    const outcome = fence.besideEngine({ directory: '/manifests/site1', capture: () => capture.promise, ...engine });
    await new Promise((resolve) => setImmediate(resolve));
    job.abort();
    await new Promise((resolve) => setImmediate(resolve));
    capture.resolve('manifest');
    await assert.rejects(outcome, (error) => !(error instanceof JobFailure) && (error as Error).message === 'stopped');
    assert.equal(engine.stopped(), true);
  });
});
