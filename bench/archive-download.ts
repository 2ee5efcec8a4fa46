/**
 * Downloads through the API against GNU tar by hand, on the same generated tree; the service's memory while it
 * streams; then browse latency on a restore point of that tree (its first listing reads duplicity and indexes it).
 *
 *   node dist-test/bench/archive-download.js [--sizeMiB 2048] [--files 100000] [--runs 2] [--browse 1] [--requests 200]
 *
 * "By hand" is `tar -c --xattrs --acls` of the tree piped to `cat > /dev/null` (GNU tar writing to /dev/null itself
 * skips reading file data, so that figure is shown too but is not a fair baseline). The API download is read by curl.
 * Rounds interleave the two (alternating which goes first) and the ratio is the median of each round's own ratio, so
 * the figure holds on a loaded machine; the absolute times do not. Peak RSS is per round (VmHWM reset before each),
 * next to the idle service's RSS.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startServiceProcess } from '../test/support/service-process';
import { TOKENS } from '../test/support/test-app';
import { makeSites } from '../test/support/sample-sites';
import {
  benchServiceEnv,
  median,
  memoryOf,
  options,
  percentile,
  printTable,
  timeCommand,
  timedApiBackup,
} from './support';

/** `files` files in directories of 1000, `sizeMiB` in all, random bytes; a few xattrs and ACLs on the way. */
function makeTree(dir: string, sizeMiB: number, files: number): void {
  const script = `
import os, sys
root, size, count = sys.argv[1], int(sys.argv[2]) * 1024 * 1024, int(sys.argv[3])
per = max(1, size // count)
for i in range(count):
    d = os.path.join(root, 'd%03d' % (i // 1000))
    if i % 1000 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%06d.bin' % i), 'wb') as f: f.write(os.urandom(per))
    if i % 1000 == 0:
        os.setxattr(os.path.join(d, 'f%06d.bin' % i), 'user.bench', b'x')
`;
  execFileSync('python3', ['-c', script, dir, String(sizeMiB), String(files)]);
  execFileSync('setfacl', ['-R', '-m', 'u:1001:rwx', join(dir, 'd000')]);
}

/** Resets the process's peak RSS (VmHWM) so each round reports its own. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

async function main(): Promise<void> {
  const opts = options({ sizeMiB: 2048, files: 100_000, runs: 2, browse: 1, requests: 200 });
  const root = mkdtempSync(join(tmpdir(), 'bench-archive-'));
  try {
    const virtualRoot = join(root, 'virtual');
    makeSites(virtualRoot, [{ n: 1, domain: 'bench.example' }]);
    const data = join(virtualRoot, 'site1', 'shadow', 'data');
    execFileSync('mkdir', ['-p', data]);
    makeTree(data, opts.sizeMiB, opts.files);
    const tarArgs = ['--format=pax', '--xattrs', '--xattrs-include=*', '--acls', '-cf', '-', '-C', data, '.'];

    const service = await startServiceProcess({ ...benchServiceEnv(root), DUPLICITY_TARGET: `file://${root}/target` });
    const pid = service.child.pid!;
    try {
      // The idle service: what the Nest app holds before any download (its baseline, not the download's cost).
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const idleMiB = memoryOf(pid).rssMiB;
      const hand = () => timeCommand('sh', ['-c', 'tar "$@" | cat > /dev/null', 'tar', ...tarArgs], {}, 0);
      // The service's tar writes 64 KiB records (directory-tar.ts); the same by hand shows what that alone is worth.
      const handRecords = () =>
        timeCommand('sh', ['-c', 'tar "$@" | cat > /dev/null', 'tar', '--blocking-factor=128', ...tarArgs], {}, 0);
      const api = () =>
        timeCommand(
          'curl',
          [
            '-sSf',
            '-o',
            '/dev/null',
            '-H',
            `Authorization: Bearer ${TOKENS.operator}`,
            `${service.url}/v1/sites/site1/archive?path=shadow/data`,
          ],
          {},
          0,
        );
      // Both at niceness 0: the service runs a download's tar unniced (it is interactive), and so does this.
      const handMs: number[] = [];
      const handRecordsMs: number[] = [];
      const apiMs: number[] = [];
      const ratios: number[] = [];
      const peaks: number[] = [];
      const devNullMs = await timeCommand('sh', ['-c', 'tar "$@" > /dev/null', 'tar', ...tarArgs], {}, 0);
      for (let round = 0; round < opts.runs; round++) {
        // Interleaved, the order alternating, so a change in the machine's load hits both sides alike.
        let handRound = 0;
        let apiRound = 0;
        const measureApi = async () => {
          resetPeak(pid);
          apiRound = await api();
          peaks.push(memoryOf(pid).peakMiB);
        };
        if (round % 2 === 0) {
          handRound = await hand();
          await measureApi();
        } else {
          await measureApi();
          handRound = await hand();
        }
        handRecordsMs.push(await handRecords());
        handMs.push(handRound);
        apiMs.push(apiRound);
        ratios.push(handRound / apiRound);
        process.stderr.write(
          `round ${round + 1}: tar ${Math.round(handRound)} ms, API ${Math.round(apiRound)} ms, ` +
            `ratio ${(handRound / apiRound).toFixed(3)}, peak RSS ${Math.round(peaks.at(-1)!)} MiB\n`,
        );
      }
      const mib = opts.sizeMiB;
      const figures: Record<string, number> = {
        sizeMiB: mib,
        files: opts.files,
        rounds: opts.runs,
        handMedianMs: Math.round(median(handMs)),
        handRecords64KiBMedianMs: Math.round(median(handRecordsMs)),
        tarToDevNullMs: Math.round(devNullMs),
        apiMedianMs: Math.round(median(apiMs)),
        // The median of each round's own ratio: both sides of a round ran back to back under the same load.
        throughputRatio: Number(median(ratios).toFixed(3)),
        apiMiBps: Math.round(mib / (median(apiMs) / 1000)),
        serviceIdleRssMiB: Math.round(idleMiB),
        servicePeakRssMiB: Math.round(Math.max(...peaks)),
      };
      printTable(`download of ${mib} MiB in ${opts.files} files, ${opts.runs} interleaved rounds`, [
        ['tar -c | cat > /dev/null (median)', `${figures.handMedianMs} ms  ${JSON.stringify(handMs.map(Math.round))}`],
        [
          'tar -c -b 128 | cat > /dev/null (median)',
          `${figures.handRecords64KiBMedianMs} ms  ${JSON.stringify(handRecordsMs.map(Math.round))}`,
        ],
        ['tar -c > /dev/null (skips reads, once)', `${figures.tarToDevNullMs} ms`],
        ['through the API, curl (median)', `${figures.apiMedianMs} ms  ${JSON.stringify(apiMs.map(Math.round))}`],
        [
          'throughput API / tar (median of rounds)',
          `${figures.throughputRatio}  ${JSON.stringify(ratios.map((r) => Number(r.toFixed(3))))}`,
        ],
        [
          'service RSS idle / peak while downloading',
          `${figures.serviceIdleRssMiB} / ${figures.servicePeakRssMiB} MiB`,
        ],
      ]);

      if (opts.browse) {
        await timedApiBackup(service, { level: 'full', provider: 'duplicity' });
        const points = (await service.call('GET', '/v1/sites/site1/restore-points')).body.items as Array<{
          id: string;
        }>;
        const point = points[0].id;
        const list = (dir: string) =>
          service.call('GET', `/v1/sites/site1/restore-points/${point}/files?path=${dir}&limit=500`);
        const firstStarted = performance.now();
        const first = await list('shadow/data/d000');
        const firstMs = performance.now() - firstStarted;
        if (first.status !== 200) throw new Error(`listing answered ${first.status}: ${JSON.stringify(first.body)}`);
        const latencies: number[] = [];
        const dirs = Math.max(1, Math.ceil(opts.files / 1000));
        for (let i = 0; i < opts.requests; i++) {
          const started = performance.now();
          const res = await list(`shadow/data/d${String(i % dirs).padStart(3, '0')}`);
          latencies.push(performance.now() - started);
          if (res.status !== 200) throw new Error(`listing answered ${res.status}`);
        }
        figures.browseFirstListingMs = Math.round(firstMs);
        figures.browseP50Ms = Number(percentile(latencies, 50).toFixed(1));
        figures.browseP99Ms = Number(percentile(latencies, 99).toFixed(1));
        printTable(`browse a ${opts.files}-file duplicity point`, [
          ['first listing (duplicity list-current-files, indexed)', `${figures.browseFirstListingMs} ms`],
          [
            `then ${opts.requests} directory listings of 500`,
            `p50 ${figures.browseP50Ms} ms, p99 ${figures.browseP99Ms} ms`,
          ],
        ]);
      }
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    } finally {
      await service.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
