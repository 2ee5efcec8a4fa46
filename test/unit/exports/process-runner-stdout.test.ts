import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { ProcessRunner } from '../../../src/common/process/process-runner';
import { waitUntil } from '../../support/wait';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ProcessRunner stdoutTo: raw stdout bytes for dumps', () => {
  const runner = new ProcessRunner();

  it('delivers stdout byte for byte (binary, no line splitting) and ends the stream', async () => {
    const chunks: Buffer[] = [];
    let finished = false;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
      final(callback) {
        finished = true;
        callback();
      },
    });
    const lines: string[] = [];
    const result = await runner.run({
      command: 'sh',
      args: ['-c', "printf 'a\\r\\nb\\000\\377no newline'; echo err >&2"],
      stdoutTo: sink,
      onLine: (stream, line) => lines.push(`${stream}:${line}`),
    });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from('a\r\nb\u0000\u00ffno newline', 'latin1'));
    assert.equal(finished, true, 'the sink was ended before run() returned');
    assert.deepEqual(lines, ['stderr:err'], 'stdout is not line-read when it goes to stdoutTo');
    assert.equal(result.stdoutError, undefined);
  });

  it('applies backpressure: a paused consumer holds the child back instead of buffering its output', async () => {
    let received = 0;
    let release: (() => void) | undefined;
    const hash = createHash('sha256');
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        hash.update(chunk);
        if (received > 1024 * 1024 && !release) release = callback;
        else callback();
      },
    });
    let pid = 0;
    const running = runner.run({
      command: 'head',
      args: ['-c', String(64 * 1024 * 1024), '/dev/zero'],
      stdoutTo: sink,
      onSpawn: (p) => (pid = p),
    });
    // Once the consumer holds back, whatever the child writes stays in the pipes: no fixed delay to wait out.
    await waitUntil(() => release !== undefined, { what: 'the consumer to pause' });
    assert.ok(release, 'the consumer is paused');
    assert.ok(alive(pid), 'the child is still running: blocked on its pipe');
    assert.ok(received < 4 * 1024 * 1024, `only what the pipes hold moved on (${received} bytes)`);
    release();
    const result = await running;
    assert.equal(result.exitCode, 0);
    assert.equal(received, 64 * 1024 * 1024);
  });

  it('a failing consumer stops the process group and is reported as stdoutError', async () => {
    let writes = 0;
    const sink = new Writable({
      write(_chunk: Buffer, _encoding, callback) {
        writes++;
        callback(writes > 3 ? new Error('ENOSPC: no space left on device') : null);
      },
    });
    // The command never ends by itself: that the run returns at all shows the group was stopped.
    const result = await runner.run({
      command: 'sh',
      args: ['-c', 'while true; do head -c 65536 /dev/zero; done'],
      stdoutTo: sink,
      killGraceMs: 500,
    });
    assert.match(result.stdoutError ?? '', /ENOSPC/);
    assert.notEqual(result.exitCode, 0);
  });

  it('cancel stops the child; what it wrote so far still reaches the consumer, which is ended', async () => {
    const controller = new AbortController();
    let received = 0;
    let ended = false;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received > 100_000) controller.abort();
        callback();
      },
      final(callback) {
        ended = true;
        callback();
      },
    });
    const result = await runner.run({
      command: 'sh',
      args: ['-c', 'while true; do head -c 65536 /dev/zero; done'],
      stdoutTo: sink,
      signal: controller.signal,
    });
    assert.equal(result.cancelled, true);
    assert.equal(result.stdoutError, undefined);
    assert.equal(ended, true);
  });
});
