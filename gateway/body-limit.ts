// Counting streamed bodies on their way through the proxy, which never buffers them: the request
// body is stopped at the limit (Fastify's own bodyLimit cannot see a streamed body).
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { gatewayErrors } from './errors.js';

export function limitBody(body: NodeJS.ReadableStream, limitBytes: number, onBytes: (bytes: number) => void): Readable {
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > limitBytes) {
        callback(gatewayErrors.GW_BODY_TOO_LARGE(`The body is over the limit of ${limitBytes} bytes`));
        return;
      }
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  body.on('error', (error: Error) => counter.destroy(error));
  // A request refused before it is forwarded (no healthy member, say) has no reader for this
  // stream; its over-limit error must not become an uncaught exception that stops the gateway.
  // A reader that exists still receives the error.
  counter.on('error', () => {});
  return body.pipe(counter);
}

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
