import { createServer } from 'node:net';

/**
 * A loopback port that is free now, drawn below Linux's ephemeral range (32768+) so that no outgoing connection of
 * another process can take it between this check and the service's listen.
 */
export async function freeListenPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10000 + Math.floor(Math.random() * 22000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free loopback port found');
}
