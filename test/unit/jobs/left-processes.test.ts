import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { ProcessRunner } from '../../../src/common/process/process-runner';
import { liveProcesses, PROCESS_TAG_ENV, runTagged } from '../../../src/common/process/process-tag';
import { stopLeftProcesses } from '../../../src/jobs/process-identity';
import { eventually } from '../../support/wait';

const tagged = (tag: string) => liveProcesses().filter((found) => found.tag === tag);

describe("a dead run's processes, found by the job's tag", () => {
  const runner = new ProcessRunner();

  it("tags a job's children and their children, and nothing started outside a job", async () => {
    const jobId = randomUUID();
    const inside = await runTagged(jobId, () =>
      runner.run({ command: 'sh', args: ['-c', 'sh -c env'], captureStdout: true }),
    );
    const lines = inside.stdout.split('\n').filter((line) => line === `${PROCESS_TAG_ENV}=${jobId}`);
    assert.equal(lines.length, 1, 'the grandchild inherits the tag');
    const outside = await runner.run({ command: 'env', args: [], captureStdout: true });
    assert.ok(!outside.stdout.includes(PROCESS_TAG_ENV), outside.stdout);
  });

  it('kills every tagged process, even one that left its process group, and waits until they are gone', async () => {
    const jobId = randomUUID();
    const bystanderTag = randomUUID();
    // As a killed service leaves them: a group leader and a child that moved to a session of its own.
    const leftRun = runTagged(jobId, () =>
      runner.run({ command: 'sh', args: ['-c', 'setsid sleep 600 & exec sleep 600'] }),
    );
    const controller = new AbortController();
    const bystander = runTagged(bystanderTag, () =>
      runner.run({ command: 'sleep', args: ['600'], signal: controller.signal }),
    );
    try {
      // Until the forked shell has called setsid, it is still in the leader's group: wait for both groups.
      await eventually('both processes of the dead run, one in a group of its own', () => {
        const found = tagged(jobId);
        return found.length === 2 && found[0].pgrp !== found[1].pgrp;
      });
      await eventually('the bystander', () => tagged(bystanderTag).length === 1);

      const stopped = await stopLeftProcesses(jobId, null, undefined);
      assert.deepEqual(stopped.stillAlive, []);
      assert.equal(stopped.killed, 2);
      assert.deepEqual(tagged(jobId), [], 'nothing of the dead run is left when it returns');
      assert.equal((await leftRun).signal, 'SIGKILL');
      assert.equal(tagged(bystanderTag).length, 1, "another job's process is untouched");
    } finally {
      // Whatever failed above, no sleeper may outlive the test (the test process would wait for it).
      for (const found of [...tagged(jobId), ...tagged(bystanderTag)]) {
        try {
          process.kill(found.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      controller.abort();
      await Promise.allSettled([leftRun, bystander]);
    }
  });

  it('returns at once when nothing is left', async () => {
    assert.deepEqual(await stopLeftProcesses(randomUUID(), null, undefined), { killed: 0, stillAlive: [] });
  });
});
