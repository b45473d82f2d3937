// One connection to an upstream member that the gateway drives itself, request by request, before
// anything else may use it: the possession challenge every secure connection must pass before
// undici gets it (proven-connector.ts), and the health check and attestation of a secure member,
// which must all travel on one connection so that the key proven on it is the key attested on it.
// Only what those exchanges need: GET, HTTP/1.1, answers with a Content-Length, small bodies.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { UpstreamAddress } from './upstream-url.js';

const HEADER_END = Buffer.from('\r\n\r\n');
/** A /readyz or key-config answer is a few hundred bytes; its header block is smaller still. */
const MAX_HEADER_BYTES = 8 * 1024;

export interface MemberAnswer {
  statusCode: number;
  headers: ReadonlyMap<string, string>;
  body: Buffer;
}

/** Why an exchange on a member connection failed; `code` names the failure for logs and reasons. */
export class MemberConnectionError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export class MemberConnection {
  readonly #socket: Socket;
  readonly #host: string;
  #buffered = Buffer.alloc(0);
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #busy = false;
  #released = false;

  private constructor(socket: Socket, host: string) {
    this.#socket = socket;
    this.#host = host;
    socket.on('readable', this.#onReadable);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  /** Opens a connection to the member at `address`, within `timeoutMs`. */
  static open(address: UpstreamAddress, timeoutMs: number): Promise<MemberConnection> {
    return new Promise((resolve, reject) => {
      const origin = address.origin ? new URL(address.origin) : undefined;
      const socket = address.socketPath
        ? connect({ path: address.socketPath })
        : connect({ host: origin!.hostname.replace(/^\[|\]$/g, ''), port: Number(origin!.port || 80) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new MemberConnectionError('UND_ERR_CONNECT_TIMEOUT', `connecting took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new MemberConnection(socket, origin?.host ?? 'localhost'));
      });
    });
  }

  get socket(): Socket {
    return this.#socket;
  }

  /** One GET on this connection; rejects on a malformed, oversized or late answer (the connection is then closed). */
  async get(
    path: string,
    { maxBodyBytes, timeoutMs }: { maxBodyBytes: number; timeoutMs: number },
  ): Promise<MemberAnswer> {
    if (this.#busy || this.#released) throw new Error('one exchange at a time, and none after release()');
    this.#busy = true;
    const timer = setTimeout(
      () =>
        this.#fail(
          new MemberConnectionError(
            'UND_ERR_HEADERS_TIMEOUT',
            `no answer to GET ${path.split('?')[0]} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    try {
      this.#socket.write(`GET ${path} HTTP/1.1\r\nhost: ${this.#host}\r\naccept: */*\r\n\r\n`);
      let headerEnd: number;
      while ((headerEnd = this.#buffered.indexOf(HEADER_END)) === -1) {
        if (this.#buffered.length > MAX_HEADER_BYTES)
          throw this.#fail(
            new MemberConnectionError(
              'GW_MEMBER_BAD_ANSWER',
              `the answer's header block exceeds ${MAX_HEADER_BYTES} bytes`,
            ),
          );
        await this.#more();
      }
      const [statusLine = '', ...lines] = this.#buffered.subarray(0, headerEnd).toString('latin1').split('\r\n');
      const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
      if (!status) throw this.#fail(new MemberConnectionError('GW_MEMBER_BAD_ANSWER', 'the answer is not HTTP/1.1'));
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon <= 0)
          throw this.#fail(new MemberConnectionError('GW_MEMBER_BAD_ANSWER', 'the answer has a malformed header line'));
        const name = line.slice(0, colon).trim().toLowerCase();
        if (headers.has(name) && name === 'content-length')
          throw this.#fail(
            new MemberConnectionError('GW_MEMBER_BAD_ANSWER', 'the answer has two Content-Length headers'),
          );
        headers.set(name, line.slice(colon + 1).trim());
      }
      const declared = headers.get('content-length');
      if (headers.has('transfer-encoding') || declared === undefined || !/^\d{1,9}$/.test(declared)) {
        throw this.#fail(new MemberConnectionError('GW_MEMBER_BAD_ANSWER', 'the answer has no usable Content-Length'));
      }
      const length = Number(declared);
      if (length > maxBodyBytes)
        throw this.#fail(
          new MemberConnectionError(
            'GW_MEMBER_BAD_ANSWER',
            `the answer declares ${length} bytes, more than the ${maxBodyBytes} expected`,
          ),
        );
      const bodyStart = headerEnd + HEADER_END.length;
      while (this.#buffered.length < bodyStart + length) await this.#more();
      if (this.#buffered.length > bodyStart + length)
        throw this.#fail(new MemberConnectionError('GW_MEMBER_BAD_ANSWER', 'the member sent bytes beyond its answer'));
      const body = Buffer.from(this.#buffered.subarray(bodyStart));
      this.#buffered = Buffer.alloc(0);
      if (headers.get('connection')?.toLowerCase() === 'close') this.#ended = true;
      return { statusCode: Number(status[1]), headers, body };
    } finally {
      clearTimeout(timer);
      this.#busy = false;
    }
  }

  /**
   * Hands the socket over (to undici) with nothing of ours left on it. Throws when it cannot be
   * reused: closed, closing, or with bytes nobody asked for.
   */
  release(): Socket {
    if (this.#ended || this.#error || this.#socket.destroyed || this.#buffered.length > 0) {
      this.close();
      throw new MemberConnectionError('UND_ERR_SOCKET', 'the member closed the connection after its answer');
    }
    this.#detach();
    return this.#socket;
  }

  close(): void {
    this.#detach();
    this.#socket.destroy();
  }

  #detach(): void {
    this.#released = true;
    this.#socket.removeListener('readable', this.#onReadable);
    this.#socket.removeListener('end', this.#onEnd);
    this.#socket.removeListener('close', this.#onEnd);
    this.#socket.removeListener('error', this.#onError);
    // Errors after a close must not be unhandled; undici adds its own listener on release.
    if (this.#socket.destroyed || this.#ended) this.#socket.on('error', () => {});
  }

  #more(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended)
      return Promise.reject(
        new MemberConnectionError('UND_ERR_SOCKET', 'the member closed the connection before it answered'),
      );
    return new Promise<void>((resolve) => (this.#wake = resolve)).then(() => {
      if (this.#error) throw this.#error;
    });
  }

  #fail(error: Error): Error {
    this.#error ??= error;
    this.#socket.destroy();
    this.#signal();
    return this.#error;
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  readonly #onReadable = () => {
    let chunk: Buffer | null;
    while ((chunk = this.#socket.read() as Buffer | null) !== null)
      this.#buffered = Buffer.concat([this.#buffered, chunk]);
    this.#signal();
  };

  readonly #onEnd = () => {
    this.#ended = true;
    this.#signal();
  };

  readonly #onError = (error: Error) => {
    this.#error ??= error;
    this.#signal();
  };
}
