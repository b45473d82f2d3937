// A tap on the parent side of the secure channel: a Unix-socket listener that pipes every
// connection to the enclave's parent socket and keeps every byte that crosses, both ways. It is
// what a hostile process on the parent instance sees of the secure route.
import { rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import type { TestContext } from 'node:test';

export type TapDirection = 'to-enclave' | 'from-enclave';

export interface TappedChunk {
  connection: number;
  direction: TapDirection;
  bytes: Buffer;
}

export interface RecordingRelay {
  /** Where the gateway connects: its --secure-upstream is unix:<path>. */
  path: string;
  /** Every chunk, in the order it crossed. */
  chunks: TappedChunk[];
  /**
   * Each connection's bytes in one direction, joined (so that nothing split across chunks is
   * missed), from chunk index `from` on.
   */
  streams(from?: number, direction?: TapDirection): Buffer[];
  close(): Promise<void>;
}

export async function startRecordingRelay(
  t: TestContext,
  path: string,
  enclaveSocket: string,
): Promise<RecordingRelay> {
  const chunks: TappedChunk[] = [];
  const open = new Set<Socket>();
  let connections = 0;
  const server = createServer((parentSide) => {
    const connection = ++connections;
    const enclaveSide = connect(enclaveSocket);
    for (const socket of [parentSide, enclaveSide]) {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    }
    parentSide.on('data', (bytes: Buffer) =>
      chunks.push({ connection, direction: 'to-enclave', bytes: Buffer.from(bytes) }),
    );
    enclaveSide.on('data', (bytes: Buffer) =>
      chunks.push({ connection, direction: 'from-enclave', bytes: Buffer.from(bytes) }),
    );
    parentSide.pipe(enclaveSide);
    enclaveSide.pipe(parentSide);
    // Nothing behind the socket, or either side gone: the other side goes too, as a relay does.
    parentSide.on('error', () => enclaveSide.destroy());
    enclaveSide.on('error', () => parentSide.destroy());
    parentSide.on('close', () => enclaveSide.destroy());
    enclaveSide.on('close', () => parentSide.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      server.close(() => resolve());
    });
  t.after(async () => {
    await close();
    await rm(path, { force: true });
  });
  return {
    path,
    chunks,
    streams(from = 0, direction) {
      const joined = new Map<string, Buffer[]>();
      for (const chunk of chunks.slice(from)) {
        if (direction !== undefined && chunk.direction !== direction) continue;
        const key = `${chunk.connection}:${chunk.direction}`;
        const parts = joined.get(key) ?? [];
        parts.push(chunk.bytes);
        joined.set(key, parts);
      }
      return [...joined.values()].map((parts) => Buffer.concat(parts));
    },
    close,
  };
}
