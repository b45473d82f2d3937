// The gateway's options: declared once, parsed once at start into a frozen object.
import type { OptionsOf } from '../common/index.js';
import { OptionError, choice, decimal, integer, list, parseConfiguration, text, toggle } from '../common/index.js';
import { parseUpstreamUrl } from './upstream-url.js';

export const DEFAULT_GATEWAY_PORT = 8080;

const upstreamUrl = (description: string) =>
  text({
    description,
    placeholder: 'URL',
    check: (value) => {
      try {
        parseUpstreamUrl(value);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });

// RFC 9110 field-name token characters.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const headerName = (description: string, fallback: string) =>
  text({
    description,
    default: fallback,
    placeholder: 'NAME',
    check: (value) => (HEADER_NAME.test(value) ? undefined : 'must be an HTTP header name'),
  });

export const gatewayOptions = {
  config: text({
    description:
      'JSON file with any of these options under their camelCase names; flags and MPG_ variables override it',
    placeholder: 'FILE',
  }),
  host: text({ description: 'Address to listen on', default: '127.0.0.1', placeholder: 'HOST' }),
  port: integer({
    description: 'TCP port; 0 picks a free port and prints it',
    default: DEFAULT_GATEWAY_PORT,
    min: 0,
    max: 65535,
  }),
  publicUpstream: list(upstreamUrl('A member of the public route: http://host:port or unix:/path/to.sock')),
  secureUpstream: list(
    upstreamUrl("A member of the secure route (the parent relay's socket): unix:/path/to.sock or http://host:port"),
  ),
  policy: text({
    description:
      'Privacy policy file (JSON): tenants, API key hashes, secure-only or public-allowed; default: no tenants',
    placeholder: 'FILE',
  }),
  privacyHeader: headerName('Request header that can ask for the secure route (any case)', 'x-privacy'),
  apiKeyHeader: headerName('Request header that carries the tenant API key (any case)', 'x-api-key'),
  connectTimeoutMs: integer({ description: 'Connecting to an upstream member', default: 2_000, min: 1, unit: 'ms' }),
  headersTimeoutMs: integer({
    description: "Waiting for an upstream's response headers",
    default: 30_000,
    min: 1,
    unit: 'ms',
  }),
  bodyTimeoutMs: integer({
    description: 'Longest pause between two chunks of an upstream body',
    default: 30_000,
    min: 1,
    unit: 'ms',
  }),
  requestTimeoutMs: integer({
    description: 'Receiving a whole client request (408 GW_REQUEST_TIMEOUT after it, within half a second)',
    default: 30_000,
    min: 100,
    unit: 'ms',
  }),
  bodyIdleTimeoutMs: integer({
    description: "Longest pause between two chunks of a client's request body (408 GW_BODY_TIMEOUT after it)",
    default: 10_000,
    min: 100,
    unit: 'ms',
  }),
  bodyLimit: integer({ description: 'Largest request body', default: 16 * 1024 * 1024, min: 1024, unit: 'bytes' }),
  bodyBufferBytes: integer({
    description:
      'Request bodies up to this size are read whole before a member is chosen, so a slow client holds no upstream connection; larger ones are streamed',
    default: 1024 * 1024,
    min: 0,
    unit: 'bytes',
  }),
  upstreamQueue: integer({
    description:
      "Requests that may wait for one of a member's connections once all are busy; beyond that the route answers 503 GW_UPSTREAM_BUSY",
    default: 1024,
    min: 0,
    max: 65536,
    unit: 'requests',
  }),
  lingerMs: integer({
    description:
      'After refusing a request whose body is still arriving, how long the gateway keeps reading (and discarding) it before closing, so the client can read the answer',
    default: 5_000,
    min: 0,
    unit: 'ms',
  }),
  maxHeaderSize: integer({
    description: 'Largest request header block',
    default: 16 * 1024,
    min: 1024,
    max: 1024 * 1024,
    unit: 'bytes',
  }),
  connections: integer({
    description: 'Keep-alive connections per upstream member',
    default: 32,
    min: 1,
    max: 4096,
    unit: 'connections',
  }),
  healthIntervalMs: integer({
    description: "How often each member's /readyz is checked",
    default: 1_000,
    min: 50,
    unit: 'ms',
  }),
  healthTimeoutMs: integer({
    description: 'A health check slower than this fails',
    default: 1_000,
    min: 10,
    unit: 'ms',
  }),
  maxEventLoopDelayMs: integer({
    description: 'Event-loop delay beyond which requests get 503; 0 disables',
    default: 1_000,
    min: 0,
    unit: 'ms',
  }),
  maxHeapUsedBytes: integer({
    description: 'V8 heap use beyond which requests get 503; 0 disables',
    default: 0,
    min: 0,
    unit: 'bytes',
  }),
  attestationPcrs: text({
    description:
      'The enclave\'s measurements (the JSON "mpg enclave build" / nitro-cli build-enclave writes): secure members must attest to these PCR0/1/2',
    placeholder: 'FILE',
  }),
  attestationIntervalMs: integer({
    description:
      'How often an attested secure member is attested again (also whenever it restarts or its health check fails)',
    default: 60_000,
    min: 1_000,
    unit: 'ms',
  }),
  attestationRetryMs: integer({
    description: 'How long a member whose attestation failed waits before it is tried again',
    default: 5_000,
    min: 100,
    unit: 'ms',
  }),
  attestationMaxAgeMs: integer({
    description: 'An attestation document older than this (by its timestamp) is refused',
    default: 60_000,
    min: 1_000,
    unit: 'ms',
  }),
  attestationAllowDebugMode: toggle({
    description:
      'Accept enclaves in debug mode (all-zero PCRs). Development only: their memory is readable from the parent',
    default: false,
  }),
  insecureTrustEmulatedNsmRoot: text({
    description:
      "INSECURE: also trust the emulated NSM's throwaway root certificate (PEM) in this file; for the local emulation only",
    placeholder: 'FILE',
  }),
  insecureSkipAttestation: toggle({
    description: 'INSECURE: route secure requests to members that were never attested; for tests of routing only',
    default: false,
  }),
  securePlaintext: choice({
    description:
      "Plaintext requests on the secure route: allow (the seed study's clients) or refuse (only message/ohttp-req, encrypted by the client SDK to the attested enclave); a tenant's policy can refuse too",
    choices: ['allow', 'refuse'] as const,
    default: 'allow',
  }),
  attestationRequestsPerSecond: decimal({
    description:
      'GET /attestation: documents each client address may ask for, sustained (each makes the enclave sign one)',
    default: 1,
    min: 0.01,
    max: 1000,
    unit: 'per second',
  }),
  attestationBurst: integer({
    description: 'GET /attestation: documents each client address may ask for at once after being idle',
    default: 5,
    min: 1,
    max: 1000,
    unit: 'requests',
  }),
  tlsCert: text({
    description: 'TLS certificate chain (PEM) of the traffic listener; reloaded when the file changes. With --tls-key',
    placeholder: 'FILE',
  }),
  tlsKey: text({
    description: 'TLS private key (PEM) of the traffic listener; reloaded when the file changes. With --tls-cert',
    placeholder: 'FILE',
  }),
  http2: toggle({ description: 'With TLS, also offer HTTP/2 (ALPN h2; HTTP/1.1 stays available)', default: true }),
  adminHost: text({
    description: 'Address of the admin listener (/metrics, /readyz)',
    default: '127.0.0.1',
    placeholder: 'HOST',
  }),
  adminPort: integer({
    description:
      'Port of a separate admin listener for /metrics and /readyz, which the traffic port then no longer serves (it keeps /healthz); unset: both on the traffic port. 0 picks a free port',
    min: 0,
    max: 65535,
  }),
  logLevel: choice({
    description: 'Log level',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    default: 'info',
  }),
  trustProxy: toggle({
    description: 'Trust X-Forwarded-For from a load balancer in front of the gateway',
    default: false,
  }),
};

export type GatewayConfig = OptionsOf<typeof gatewayOptions>;

export function parseGatewayConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { config: GatewayConfig; help: boolean } {
  const parsed = parseConfiguration(gatewayOptions, argv, env, { fileOption: 'config' });
  const help = parsed.help;
  // Node lowercases incoming header names: so must the configuration, or a header given as
  // X-Data-Class would never match and a secure signal would be silently missed.
  const options = Object.freeze({
    ...parsed.options,
    privacyHeader: parsed.options.privacyHeader.toLowerCase(),
    apiKeyHeader: parsed.options.apiKeyHeader.toLowerCase(),
  });
  const reserved = ['x-request-id', 'x-privacy-route', 'content-type', 'content-length', 'host'];
  if (options.privacyHeader === options.apiKeyHeader)
    throw new OptionError('--privacy-header and --api-key-header must be different headers');
  for (const [flag, name] of [
    ['--privacy-header', options.privacyHeader],
    ['--api-key-header', options.apiKeyHeader],
  ] as const) {
    if (reserved.includes(name)) throw new OptionError(`${flag} cannot be ${name}, which the gateway uses for itself`);
  }
  if (!help && options.publicUpstream.length === 0 && options.secureUpstream.length === 0) {
    throw new OptionError('give at least one --public-upstream or --secure-upstream');
  }
  // One address on both routes would let secure traffic and public traffic share a member.
  const shared = options.secureUpstream.find((url) => options.publicUpstream.includes(url));
  if (shared)
    throw new OptionError(
      `${shared} is both a --public-upstream and a --secure-upstream; a member serves one route only`,
    );
  for (const [flag, urls] of [
    ['--public-upstream', options.publicUpstream],
    ['--secure-upstream', options.secureUpstream],
  ] as const) {
    const twice = urls.find((url, index) => urls.indexOf(url) !== index);
    if (twice) throw new OptionError(`${flag} ${twice} is given twice`);
  }
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined))
    throw new OptionError('--tls-cert and --tls-key go together: give both, or neither for plain HTTP');
  if (!help && options.secureUpstream.length > 0) {
    if (options.insecureSkipAttestation && (options.attestationPcrs || options.insecureTrustEmulatedNsmRoot)) {
      throw new OptionError(
        '--insecure-skip-attestation cannot be combined with --attestation-pcrs or --insecure-trust-emulated-nsm-root',
      );
    }
    if (!options.insecureSkipAttestation && !options.attestationPcrs) {
      throw new OptionError(
        'secure upstreams are trusted only once attested: give --attestation-pcrs FILE (the measurements "mpg enclave build" wrote), or --insecure-skip-attestation for tests',
      );
    }
  }
  return { config: options, help };
}
