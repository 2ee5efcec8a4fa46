import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { isLocalAddress, listeningPorts, probeDaemon } from '../../../src/providers/bacula/local-listener';

const TCP_TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2366 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1215 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 10518 1 0 100 0 0 10 0
   2: 0100007F:2367 0100007F:B1C2 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1
`;
const TCP6_TABLE = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2368 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
`;

describe('local listener check (no connection to a local Bacula daemon)', () => {
  it('reads the LISTEN sockets of /proc/net/tcp and tcp6, and only those', () => {
    assert.deepEqual([...listeningPorts(TCP_TABLE)].sort(), [0x0cea, 0x2366]);
    assert.deepEqual([...listeningPorts(TCP6_TABLE)], [0x2368]);
    assert.equal(listeningPorts(TCP_TABLE).has(0x2367), false, 'an established connection is not a listener');
    assert.equal(listeningPorts('').size, 0);
  });

  it('knows loopback and this machine by name from other hosts', () => {
    for (const local of ['localhost', '127.0.0.1', '127.0.1.1', '::1']) assert.equal(isLocalAddress(local), true);
    for (const remote of ['192.0.2.10', 'backup.example.net']) assert.equal(isLocalAddress(remote), false);
  });

  it('says whether a local port listens, from the socket table, without connecting to it', async () => {
    const seen: string[] = [];
    let markerArrived: () => void = () => undefined;
    const marker = new Promise<void>((resolve) => (markerArrived = resolve));
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      // Connections are accepted in order: once the marker's has been, any connection the probe made was seen first.
      socket.once('data', (data) => {
        seen.push(data.toString());
        if (data.toString() === 'marker') markerArrived();
      });
      socket.once('end', () => seen.push('(closed without a word)'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      assert.deepEqual(await probeDaemon('127.0.0.1', port), { reachable: true });
      const client = connect({ host: '127.0.0.1', port }, () => client.end('marker'));
      await marker;
      assert.deepEqual(seen, ['marker'], 'the daemon saw no connection but the marker');
    } finally {
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => server.close(resolve));
    }
    const closed = await probeDaemon('127.0.0.1', port);
    assert.equal(closed.reachable, false);
    assert.equal(closed.failure, 'refused');
  });
});
