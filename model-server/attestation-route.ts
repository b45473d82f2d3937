// GET /attestation?nonce=<hex>: the enclave's attestation document (COSE_Sign1, CBOR) from its NSM,
// the real one on Nitro or the emulated one. The document carries the caller's nonce and, in
// public_key, the X25519 key this process generated at boot (the OHTTP key clients seal requests
// to; the gateway also uses its hash, reported by /readyz, to notice that the enclave restarted),
// and in user_data the SHA-256 of that key's OHTTP key config (binding its key id and suites).
// A nonce always gets a fresh document, within a rate limit; without a nonce, one document is
// cached for a few seconds, so that polling cannot make the NSM sign on every request.
import type { FastifyInstance } from 'fastify';
import type { NsmSource } from '../attestation/index.js';
import type { EnclaveIdentity } from './enclave-identity.js';
import { modelServerErrors } from './errors.js';
import type { ModelServerMetrics } from './metrics.js';

/** The NSM takes nonces of up to 512 bytes. */
export const MAX_NONCE_BYTES = 512;
export const UNNONCED_CACHE_MS = 5_000;
/** Fresh documents per second, sustained, and the burst above it. */
export const ATTESTATION_RATE_PER_SECOND = 10;
export const ATTESTATION_BURST = 20;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

export function registerAttestationRoute(
  app: FastifyInstance,
  source: NsmSource,
  identity: EnclaveIdentity,
  metrics: ModelServerMetrics,
): void {
  let tokens = ATTESTATION_BURST;
  let refilledAt = performance.now();
  const takeToken = () => {
    const now = performance.now();
    tokens = Math.min(ATTESTATION_BURST, tokens + ((now - refilledAt) / 1000) * ATTESTATION_RATE_PER_SECOND);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
  let cached: { document: Uint8Array; until: number } | undefined;

  app.get('/attestation', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const nonceHex = query.nonce;
    if (
      nonceHex !== undefined &&
      (typeof nonceHex !== 'string' || !HEX.test(nonceHex) || nonceHex.length > MAX_NONCE_BYTES * 2)
    ) {
      throw modelServerErrors.MS_INVALID_NONCE(
        `"nonce" must be an even number of hex digits, at most ${MAX_NONCE_BYTES} bytes`,
      );
    }
    const now = performance.now();
    let document: Uint8Array;
    if (nonceHex === undefined && cached && cached.until > now) {
      document = cached.document;
      metrics.attestations.inc({ result: 'cached' });
    } else {
      if (!takeToken()) {
        metrics.attestations.inc({ result: 'rate_limited' });
        throw modelServerErrors.MS_ATTESTATION_RATE_LIMITED(undefined, { headers: { 'retry-after': '1' } });
      }
      try {
        document = await source.attest({
          publicKey: identity.publicKey,
          userData: identity.keyConfigSha256,
          nonce: nonceHex === undefined ? null : Buffer.from(nonceHex, 'hex'),
        });
      } catch (error) {
        metrics.attestations.inc({ result: 'failed' });
        request.log.error({ err: error }, 'the NSM gave no attestation document');
        throw modelServerErrors.MS_ATTESTATION_UNAVAILABLE(undefined, {
          cause: error,
          headers: { 'retry-after': '1' },
        });
      }
      metrics.attestations.inc({ result: 'signed' });
      if (nonceHex === undefined) cached = { document, until: now + UNNONCED_CACHE_MS };
    }
    return reply
      .type('application/cbor')
      .header('cache-control', 'no-store')
      .header('x-attestation-source', source.kind)
      .send(Buffer.from(document));
  });
}
