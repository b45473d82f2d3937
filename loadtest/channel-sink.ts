// The far end of the channel scenario: a byte sink and an echo on one listener (TCP on loopback,
// or a Unix socket). The first byte of a connection chooses: "B" (bulk) counts every byte that
// follows and, once the sender half-closes, answers with the count (8 bytes, big-endian) and
// closes; "E" (echo) sends every byte back. On EC2 the same program can run inside an enclave
// behind the vsock relays, so the harness measures the real channel (see docs/loadtest.md).
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';

export const BULK = 0x42; // "B"
export const ECHO = 0x45; // "E"

export interface ChannelSink {
  /** "tcp:127.0.0.1:PORT" or "unix:PATH". */
  readonly address: string;
  readonly port: number | undefined;
  close(): Promise<void>;
}

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let mode: number | undefined;
  let bytes = 0;
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    if (mode === undefined) {
      mode = chunk[0];
      chunk = chunk.subarray(1);
      if (mode !== BULK && mode !== ECHO) {
        socket.destroy();
        return;
      }
    }
    if (mode === ECHO) {
      if (chunk.length > 0 && !socket.write(chunk)) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    } else bytes += chunk.length;
  });
  socket.on('end', () => {
    if (mode === BULK) {
      const count = Buffer.alloc(8);
      count.writeBigUInt64BE(BigInt(bytes));
      socket.end(count);
    } else socket.end();
  });
}

export async function startChannelSink(listen: { port: number } | { socket: string }): Promise<ChannelSink> {
  const server: Server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('socket' in listen) server.listen({ path: listen.socket }, () => resolve());
    else server.listen({ host: '127.0.0.1', port: listen.port }, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : undefined;
  return {
    address: 'socket' in listen ? `unix:${listen.socket}` : `tcp:127.0.0.1:${port}`,
    port,
    // Stops accepting; the harness closes its own connections.
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
