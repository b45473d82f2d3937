// What a client needs before it encrypts to the secure route (RFC 9458 and the attestation it
// verifies itself, so that it need not trust the gateway):
//   GET /.well-known/ohttp-gateway        the key configs of the secure members attested right
//                                         now (application/ohttp-keys, RFC 9458 §3.2)
//   GET /attestation?nonce=HEX&key-id=N   a fresh document, signed over the client's nonce by the
//                                         member that holds key id N (application/cbor)
// The document is fetched from the member over one of its pool's connections, each of which
// proved the attested key when it was opened; the gateway does not vouch for it, the client
// checks it (signature, chain, PCRs, nonce, and that public_key and user_data bind the key config).
// Each document costs the enclave's NSM a signature, so /attestation is rate-limited per client
// address (the enclave limits the total as well).
import type { FastifyPluginCallback } from 'fastify';
import type { GatewayConfig } from './config.js';
import { gatewayErrors } from './errors.js';
import { AddressRateLimiter } from './address-rate-limit.js';
import { mapUpstreamFailure } from './upstream-errors.js';
import type { UpstreamGroup, UpstreamMember } from './upstream-group.js';

/** The NSM signs nonces of up to 512 bytes. */
export const MAX_NONCE_BYTES = 512;
/** Far above a genuine document (about 4.5 KiB). */
const MAX_DOCUMENT_BYTES = 16 * 1024;
const DOCUMENT_TIMEOUT_MS = 5_000;
const HEX_BYTES = /^(?:[0-9a-fA-F]{2})+$/;
const KEY_ID = /^\d{1,3}$/;

export interface SecureDiscoveryOptions {
  secure: UpstreamGroup;
  config: Pick<GatewayConfig, 'attestationRequestsPerSecond' | 'attestationBurst'>;
  /** The limiter's clock (ms); tests pass their own. */
  now?: () => number;
}

/** The healthy members' bound key configs, one per key id (the gate refuses a second holder). */
export function attestedKeyConfigs(secure: UpstreamGroup): { keyId: number; encoded: Uint8Array }[] {
  const byKeyId = new Map<number, { keyId: number; encoded: Uint8Array }>();
  for (const member of secure.members) {
    if (member.healthy && member.ohttpKeyConfig && !byKeyId.has(member.ohttpKeyConfig.keyId))
      byKeyId.set(member.ohttpKeyConfig.keyId, member.ohttpKeyConfig);
  }
  return [...byKeyId.values()];
}

/** RFC 9458 §3.2: each encoded key config prefixed with its length (2 bytes, network order). */
function keyConfigList(configs: { encoded: Uint8Array }[]): Buffer {
  return Buffer.concat(
    configs.flatMap(({ encoded }) => [Buffer.from([encoded.length >> 8, encoded.length & 0xff]), Buffer.from(encoded)]),
  );
}

function readNonce(value: unknown): string {
  if (typeof value !== 'string' || !HEX_BYTES.test(value) || value.length > MAX_NONCE_BYTES * 2) {
    const got = typeof value === 'string' ? `${value.length} characters` : value === undefined ? 'none' : 'several';
    throw gatewayErrors.GW_INVALID_NONCE(
      `nonce must be an even number of hex digits, 1 to ${MAX_NONCE_BYTES} bytes (got ${got})`,
    );
  }
  return value.toLowerCase();
}

function readKeyId(value: unknown): number {
  const keyId = typeof value === 'string' && KEY_ID.test(value) ? Number(value) : Number.NaN;
  if (!(keyId <= 255))
    throw gatewayErrors.GW_INVALID_KEY_ID(
      `key-id must be a decimal key id from 0 to 255, as /.well-known/ohttp-gateway lists them`,
    );
  return keyId;
}

async function fetchDocument(secure: UpstreamGroup, member: UpstreamMember, nonceHex: string): Promise<Buffer> {
  let response;
  try {
    response = await member.pool.request({
      method: 'GET',
      path: `/attestation?nonce=${nonceHex}`,
      headersTimeout: DOCUMENT_TIMEOUT_MS,
      bodyTimeout: DOCUMENT_TIMEOUT_MS,
      signal: AbortSignal.timeout(DOCUMENT_TIMEOUT_MS),
    });
  } catch (error) {
    const failure = mapUpstreamFailure(error, 'secure');
    if (failure.eject) secure.eject(member, failure.error.message);
    throw failure.error;
  }
  if (response.statusCode === 429) {
    await response.body.dump();
    throw gatewayErrors.GW_ATTESTATION_RATE_LIMITED(
      'The enclave signs only so many documents a second; retry after Retry-After',
      { headers: { 'retry-after': '1' } },
    );
  }
  const declared = Number(response.headers['content-length'] ?? 0);
  if (response.statusCode !== 200 || declared > MAX_DOCUMENT_BYTES) {
    await response.body.dump();
    throw gatewayErrors.GW_UPSTREAM_BAD_RESPONSE(
      `The secure upstream answered GET /attestation with ${response.statusCode}${declared > MAX_DOCUMENT_BYTES ? ` and ${declared} bytes` : ''}`,
    );
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_DOCUMENT_BYTES) {
      response.body.destroy();
      throw gatewayErrors.GW_UPSTREAM_BAD_RESPONSE(
        `The secure upstream's attestation document is larger than ${MAX_DOCUMENT_BYTES} bytes`,
      );
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export const secureDiscoveryRoutes: FastifyPluginCallback<SecureDiscoveryOptions> = (
  app,
  { secure, config, now = () => performance.now() },
  done,
) => {
  const limiter = new AddressRateLimiter({
    requestsPerSecond: config.attestationRequestsPerSecond,
    burst: config.attestationBurst,
  });

  app.get('/.well-known/ohttp-gateway', async (_request, reply) => {
    const configs = attestedKeyConfigs(secure);
    if (configs.length === 0) {
      throw gatewayErrors.GW_NO_SECURE_UPSTREAM(
        'No secure upstream holds an attested OHTTP key right now; retry later',
        { headers: { 'retry-after': '1' } },
      );
    }
    // Keys change whenever an enclave restarts; clients keep their own verified copy.
    return reply.type('application/ohttp-keys').header('cache-control', 'no-store').send(keyConfigList(configs));
  });

  app.get('/attestation', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const nonceHex = readNonce(query.nonce);
    const keyId = readKeyId(query['key-id']);
    const decision = limiter.take(request.ip, now());
    if (!decision.allowed)
      throw gatewayErrors.GW_ATTESTATION_RATE_LIMITED(undefined, {
        headers: { 'retry-after': String(decision.retryAfterSeconds) },
      });
    const member = secure.members.find((candidate) => candidate.healthy && candidate.ohttpKeyConfig?.keyId === keyId);
    if (!member)
      throw gatewayErrors.GW_OHTTP_UNKNOWN_KEY(
        `No attested secure upstream holds key id ${keyId}; fetch /.well-known/ohttp-gateway again`,
      );
    const document = await fetchDocument(secure, member, nonceHex);
    return reply.type('application/cbor').header('cache-control', 'no-store').send(document);
  });
  done();
};
