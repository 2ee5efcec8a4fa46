import { readFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { probePort, type PortProbe } from './bconsole-client';

const LISTEN = '0A';

/** The ports in LISTEN state in a `/proc/net/tcp` or `/proc/net/tcp6` table. */
export function listeningPorts(table: string): Set<number> {
  const ports = new Set<number>();
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== LISTEN) continue;
    const port = Number.parseInt(fields[1].split(':').at(-1) ?? '', 16);
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}

/** Whether `address` names this machine (loopback, its host name, or one of its interfaces' addresses). */
export function isLocalAddress(address: string): boolean {
  if (address === 'localhost' || address === '::1' || address.startsWith('127.') || address === hostname()) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((entry) => entry.address === address));
}

/**
 * Whether a daemon listens at address:port, without connecting when it is this machine's: bacula-fd 9.6 logs a
 * "Security Alert: FD expecting Hello got bad command" (and sends it into the next job's messages) for every connection
 * that closes without a word, which a TCP probe before each job is. On this machine the kernel's socket table says the
 * same thing silently; another machine's daemon is probed by connecting.
 */
export async function probeDaemon(address: string, port: number): Promise<PortProbe> {
  if (!isLocalAddress(address)) return probePort(address, port);
  const tables = await Promise.all(
    ['/proc/net/tcp', '/proc/net/tcp6'].map((file) => readFile(file, 'utf8').catch(() => null)),
  );
  if (tables.every((table) => table === null)) return probePort(address, port);
  const listening = tables.some((table) => table !== null && listeningPorts(table).has(port));
  return listening
    ? { reachable: true }
    : { reachable: false, failure: 'refused', reason: 'refuses connections (is it running?)' };
}
