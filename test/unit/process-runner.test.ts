import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ProcessRunner } from '../../src/common/process/process-runner';
import { waitUntil } from '../support/wait';

/** Running and not a zombie (an orphan waits for init to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('ProcessRunner', () => {
  const runner = new ProcessRunner();

  it('passes arguments as an array, never through a shell', async () => {
    const result = await runner.run({
      command: 'printf',
      args: ['%s|', 'a b', '$(id)', ';rm -rf /'],
      captureStdout: true,
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'a b|$(id)|;rm -rf /|');
  });

  it('gives the child only the environment it is handed', async () => {
    process.env.LEAKY_SECRET = 'should-not-pass';
    const result = await runner.run({ command: 'env', args: [], env: { ONLY: 'this' }, captureStdout: true });
    delete process.env.LEAKY_SECRET;
    assert.match(result.stdout, /^ONLY=this$/m);
    assert.ok(!result.stdout.includes('LEAKY_SECRET'));
  });

  it('streams stdout, stderr and fd 3 as lines, with secrets redacted', async () => {
    const lines: string[] = [];
    const result = await runner.run({
      command: 'sh',
      args: ['-c', 'echo out hunter22; echo err >&2; echo "log line hunter22" >&3'],
      logFd: true,
      secrets: ['hunter22'],
      onLine: (stream, line) => lines.push(`${stream}:${line}`),
    });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(lines.sort(), ['log:log line [REDACTED]', 'stderr:err', 'stdout:out [REDACTED]']);
  });

  it('runs children niced, in a niced scheduling autogroup of their own', async () => {
    // The child reads its own settings after the runner has had a moment to apply them.
    const result = await runner.run({
      command: 'sh',
      args: ['-c', 'sleep 0.3; cut -d" " -f19 /proc/$$/stat; cat /proc/$$/autogroup 2>/dev/null || true'],
      captureStdout: true,
    });
    const [nice, autogroup] = result.stdout.split('\n');
    assert.equal(nice, '10');
    if (existsSync('/proc/self/autogroup')) {
      assert.match(autogroup, /^\/autogroup-\d+ nice 10$/);
      assert.notEqual(autogroup.split(' ')[0], readFileSync('/proc/self/autogroup', 'utf8').split(' ')[0]);
    }
  });

  it('cancel stops the whole process group, grandchildren included', async () => {
    const controller = new AbortController();
    let grandchild = 0;
    const running = runner.run({
      command: 'sh',
      args: ['-c', 'sleep 300 & echo $!; wait'],
      signal: controller.signal,
      onLine: (stream, line) => {
        if (stream === 'stdout') {
          grandchild = Number(line);
          controller.abort();
        }
      },
    });
    const result = await running;
    assert.equal(result.cancelled, true);
    assert.ok(grandchild > 0);
    await waitUntil(() => !alive(grandchild), { what: 'the grandchild sleep to be stopped too' });
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const controller = new AbortController();
    // Cancelled once the shell says its trap is set, not after a guessed delay.
    const result = await runner.run({
      command: 'sh',
      args: ['-c', "trap '' TERM; echo trapped; while true; do sleep 0.05; done"],
      signal: controller.signal,
      killGraceMs: 300,
      onLine: (stream, line) => {
        if (stream === 'stdout' && line === 'trapped') controller.abort();
      },
    });
    assert.equal(result.cancelled, true);
    assert.equal(result.signal, 'SIGKILL');
  });

  it('times out', async () => {
    const result = await runner.run({ command: 'sleep', args: ['10'], timeoutMs: 200 });
    assert.equal(result.timedOut, true);
    assert.notEqual(result.exitCode, 0);
  });

  it('reports a missing binary as exit 127', async () => {
    const result = await runner.run({ command: 'no-such-binary-here', args: [] });
    assert.equal(result.exitCode, 127);
    assert.match(result.stderrTail, /ENOENT|no-such-binary/);
  });

  it('describes a command with secrets redacted and arguments quoted', () => {
    assert.equal(
      runner.describe('duplicity', ['full', 'a b', 'pass=s3cret!'], ['s3cret!']),
      "duplicity full 'a b' 'pass=[REDACTED]'",
    );
  });
});
