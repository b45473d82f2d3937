// Counting streamed response bodies on their way through the proxy, which never buffers them.
// (Request bodies are read, limited and timed in request-body.ts.)
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';

/** Passes a body through unchanged, reporting each chunk's size. */
export function countBytes(body: Readable, onBytes: (bytes: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  body.on('error', (error: Error) => counter.destroy(error));
  return body.pipe(counter);
}
