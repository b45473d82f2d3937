// Reading a client's request body before and while it is proxied. A body of up to
// --body-buffer-bytes is read whole before any member is chosen, so a client that trickles or
// stalls holds no upstream connection; a larger one is streamed, and handed over only once its
// first bytes have arrived. Either way the body is timed (--body-idle-timeout-ms between two
// chunks), counted against --body-limit, and checked for privacy signals sent as trailers, which
// would arrive after the route was chosen. Every failure on the client's side becomes a coded
// error of its own, never one that could be taken for the upstream's (it must not count against
// a member).
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { CodedError } from '../common/index.js';
import { gatewayErrors } from './errors.js';

export interface BodyReadOptions {
  limitBytes: number;
  bufferBytes: number;
  idleTimeoutMs: number;
  /** Header names that must never arrive as trailers (the privacy and API key headers). */
  signalHeaders: readonly string[];
  /** A streamed body is handed over once at least this many bytes of it have arrived. */
  headBytes: number;
}

/** A body too large to hold, streamed to the member; `head` holds its first bytes. */
export class StreamedBody extends Readable {
  readonly head: Buffer;
  /** The client's failure that ended this body early, when one did. */
  clientFailure: CodedError | undefined;
  readonly #request: IncomingMessage;

  constructor(request: IncomingMessage, head: Buffer) {
    super();
    this.#request = request;
    this.head = head;
    this.push(head);
  }

  override _read(): void {
    this.#request.resume();
  }

  fail(error: CodedError): void {
    if (this.clientFailure || this.destroyed) return;
    this.clientFailure = error;
    this.destroy(error);
  }
}

export type ReadBody = Buffer | StreamedBody;

/**
 * Reads `request`'s body as `options` say; `done` gets a Buffer, a StreamedBody, or the client's
 * coded error. `onBytes` counts every byte received.
 */
export function readRequestBody(
  request: IncomingMessage,
  options: BodyReadOptions,
  onBytes: (bytes: number) => void,
  done: (error: CodedError | null, body?: ReadBody) => void,
): void {
  const declaredHeader = request.headers['content-length'];
  const declared = declaredHeader === undefined ? undefined : Number(declaredHeader);
  if (declared !== undefined && declared > options.limitBytes) {
    // Read and dropped while the 413 is sent (connection-hooks.ts).
    request.resume();
    done(
      gatewayErrors.GW_BODY_TOO_LARGE(`The body declares ${declared} bytes; the limit is ${options.limitBytes} bytes`),
    );
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let streamed: StreamedBody | undefined;
  let settled = false;

  const finish = (error: CodedError | null, body?: ReadBody) => {
    clearTimeout(idleTimer);
    request.off('data', onData);
    request.off('end', onEnd);
    request.off('close', onClose);
    request.off('error', onClose);
    if (error) {
      if (streamed) streamed.fail(error);
      else if (!settled) done(error);
      // What is left of a refused body is read and dropped; its connection closes (connection-hooks.ts).
      request.resume();
    } else if (body !== undefined && !settled) {
      done(null, body);
    }
    settled = true;
  };
  const onIdle = () => {
    // Paused by the gateway because the member reads slower than the client sends: not the client's pause.
    if (request.isPaused()) {
      idleTimer.refresh();
      return;
    }
    finish(
      gatewayErrors.GW_BODY_TIMEOUT(
        `The request body paused for more than ${options.idleTimeoutMs} ms (--body-idle-timeout-ms)`,
      ),
    );
  };
  const idleTimer = setTimeout(onIdle, options.idleTimeoutMs);

  const onData = (chunk: Buffer) => {
    idleTimer.refresh();
    received += chunk.length;
    if (received > options.limitBytes) {
      finish(gatewayErrors.GW_BODY_TOO_LARGE(`The body is over the limit of ${options.limitBytes} bytes`));
      return;
    }
    onBytes(chunk.length);
    if (streamed) {
      // The member reads slower than the client sends: wait for it (StreamedBody._read resumes).
      if (!streamed.push(chunk)) request.pause();
      return;
    }
    chunks.push(chunk);
    const tooLargeToHold = declared === undefined ? received > options.bufferBytes : declared > options.bufferBytes;
    if (tooLargeToHold && received >= options.headBytes) {
      streamed = new StreamedBody(request, Buffer.concat(chunks));
      chunks.length = 0;
      settled = true;
      done(null, streamed);
    }
  };
  const onEnd = () => {
    const signal = Object.keys(request.trailers).find((name) => options.signalHeaders.includes(name));
    if (signal !== undefined) {
      finish(
        gatewayErrors.GW_PRIVACY_TRAILER(
          `${signal} was sent as a trailer, after the body; send it as a header so the route can be chosen by it`,
        ),
      );
      return;
    }
    if (streamed) {
      streamed.push(null);
      finish(null);
    } else {
      finish(null, Buffer.concat(chunks));
    }
  };
  // A request that closes before its end: the client went away, broke its framing, or ran into
  // the request timeout (which node:http answers itself, see client-errors.ts).
  const onClose = () => finish(gatewayErrors.GW_REQUEST_ABORTED());

  request.on('data', onData);
  request.on('end', onEnd);
  request.on('close', onClose);
  request.on('error', onClose);
}
