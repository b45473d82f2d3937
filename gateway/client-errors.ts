// What the gateway answers when node:http cannot even make a request of what the client sent (bad
// framing, a header block over --max-header-size, the request timeout), and how it closes a
// connection whose request body it refused while the body is still arriving.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { CodedError } from '../common/index.js';
import { gatewayErrors } from './errors.js';
import { requestIdFor } from './headers.js';

/** node:http's socket, with the response it is writing (its own field: no public accessor). */
type ServerSocket = Socket & { _httpMessage?: ServerResponse | null };

function parseErrorFor(error: NodeJS.ErrnoException): CodedError {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return gatewayErrors.GW_REQUEST_TIMEOUT();
  if (error.code === 'HPE_HEADER_OVERFLOW') return gatewayErrors.GW_HEADERS_TOO_LARGE();
  return gatewayErrors.GW_BAD_REQUEST(
    `The request could not be parsed as HTTP/1.1 (${error.code ?? 'bad framing'}); fix its framing or syntax`,
  );
}

/**
 * Fastify's clientErrorHandler: the coded JSON answer, with an x-request-id, written only when no
 * answer has begun on the connection (bytes of another answer must never be interleaved), then
 * the connection is closed. `onError` counts it.
 */
export function answerClientError(
  error: NodeJS.ErrnoException,
  socket: ServerSocket,
  onError: (error: CodedError) => void,
): void {
  // The client reset the connection, or it is already gone: nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed || isLingering(socket)) return;
  const coded = parseErrorFor(error);
  onError(coded);
  const inFlight = socket._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(coded.toJSON());
    const requestId = requestIdFor(inFlight?.req.headers ?? {});
    socket.write(
      `HTTP/1.1 ${coded.statusCode} ${statusText(coded.statusCode)}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  lingerThenClose(socket, LINGER_AFTER_PARSE_ERROR_MS);
}

// After a parse error nothing more of the connection can be understood: linger only briefly.
const LINGER_AFTER_PARSE_ERROR_MS = 1_000;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};
function statusText(statusCode: number): string {
  return STATUS_TEXT[statusCode] ?? 'Error';
}

const lingering = new WeakSet<Socket>();

/** Whether the connection is closing after a refused request: nothing more on it is served. */
export function isLingering(socket: Socket): boolean {
  return lingering.has(socket);
}

/**
 * A lingering close, as nginx does it: the answer is sent and the gateway's side of the
 * connection is ended (FIN), while what the client is still sending is read and dropped for up
 * to `lingerMs`; then the connection is destroyed. Closing at once would reset a connection whose
 * client is still writing, and a reset makes most clients (curl, Node's fetch) lose the answer
 * they were sent and see EPIPE or ECONNRESET instead.
 */
export function lingerThenClose(socket: Socket, lingerMs: number): void {
  if (lingering.has(socket) || socket.destroyed) return;
  lingering.add(socket);
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // node:http pauses a connection whose parser failed; keep the bytes flowing so they are dropped.
  socket.on('data', () => {});
  socket.resume();
  socket.end();
}

/**
 * Reads and drops the rest of a refused request's body; the connection is destroyed if the body
 * has not ended within `lingerMs` (a client that keeps sending, or stalls). Until then, requests
 * pipelined behind it wait (their answers queue behind this one in node:http).
 */
export function drainThenKeep(request: IncomingMessage, lingerMs: number): void {
  if (request.complete || request.destroyed) return;
  const socket = request.socket;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  const stop = () => clearTimeout(timer);
  request.once('end', stop);
  request.once('close', stop);
  request.resume();
}
