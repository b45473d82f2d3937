// The one place where an upstream transport failure becomes the client's 502, 503 or 504, and
// where it is decided whether the failure takes the member out of rotation.
import { CodedError } from '../common/index.js';
import { gatewayErrors } from './errors.js';

export interface MappedUpstreamFailure {
  error: CodedError;
  /** The member is broken (refused, reset, silent): stop sending it requests until it recovers. */
  eject: boolean;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The innermost error, through @fastify/reply-from's wrappers. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5; depth++) {
    const cause = (current as { cause?: unknown } | undefined)?.cause;
    if (cause === undefined) return current;
    current = cause;
  }
  return current;
}

export function mapUpstreamFailure(error: unknown, upstreamName: string): MappedUpstreamFailure {
  const cause = rootCause(error);
  // Our own errors raised while streaming the client's body (a body over the limit) stay as they are.
  if (cause instanceof CodedError) return { error: cause, eject: false };
  if (error instanceof CodedError) return { error, eject: false };
  const code = (cause as { code?: string }).code ?? (error as { code?: string }).code ?? '';
  if (TIMEOUT_CODES.has(code)) {
    const phase =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'connect to it'
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? 'answer'
          : 'finish its answer';
    return {
      error: gatewayErrors.GW_UPSTREAM_TIMEOUT(`The ${upstreamName} upstream did not ${phase} in time`, {
        cause: error,
      }),
      eject: code !== 'UND_ERR_BODY_TIMEOUT',
    };
  }
  if (CONNECTION_CODES.has(code)) {
    return {
      error: gatewayErrors.GW_UPSTREAM_CONNECTION_FAILED(
        `The ${upstreamName} upstream could not be reached or closed the connection`,
        { cause: error },
      ),
      eject: true,
    };
  }
  return {
    error: gatewayErrors.GW_UPSTREAM_BAD_RESPONSE(`The ${upstreamName} upstream sent an invalid response`, {
      cause: error,
    }),
    eject: false,
  };
}
