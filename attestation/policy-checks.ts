// The checks after the signature: what the verifier's caller pins (measurements, nonce, age, a
// public key), in the fixed order both verifiers share. Pure logic on the parsed document, so the
// Node verifier and the WebCrypto one run exactly this code. Browser-safe.
import { bytesEqual, toHex } from './bytes.js';
import type { CheckRecorder } from './checks.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from './checks.js';
import type { AttestationDocument } from './document.js';
import { AttestationFailure } from './failure.js';
import type { PcrMeasurements } from './measurements.js';

export interface PolicyOptions {
  /** PCR0/1/2 the document must carry. Without them the pcrs check is skipped. */
  expectedPcrs?: PcrMeasurements;
  /** Accept all-zero PCR0/1/2 (an enclave in debug mode). Default false. */
  allowDebugMode?: boolean;
  /** The nonce the verifier sent; the document must carry exactly it. Without it the nonce check is skipped. */
  nonce?: Uint8Array;
  /** The oldest timestamp accepted, relative to the verification time. Without it the freshness check is skipped. */
  maxAgeMs?: number;
  maxClockSkewMs?: number;
  /** The document must carry a public_key. */
  requirePublicKey?: boolean;
}

/** debug_mode, pcrs, nonce, freshness, public_key; throws AttestationFailure at the first that fails. */
export function checkPolicy(
  document: AttestationDocument,
  options: PolicyOptions,
  at: Date,
  record: CheckRecorder,
): void {
  record.begin('debug_mode');
  const zero = [0, 1, 2].every((index) => document.pcrs.get(index)?.every((byte) => byte === 0) === true);
  if (zero && !options.allowDebugMode)
    throw new AttestationFailure(
      'debug_mode',
      'PCR0, PCR1 and PCR2 are all zeros: the enclave runs in debug mode (its memory is readable from the parent)',
    );
  record.pass(
    'debug_mode',
    zero
      ? 'PCR0/1/2 are all zeros (debug mode), accepted because debug mode is allowed'
      : 'not in debug mode (PCR0/1/2 are not all zeros)',
  );

  record.begin('pcrs');
  if (zero && options.allowDebugMode) {
    // A debug-mode enclave reports zeros whatever it runs: there is nothing to compare pins with.
    record.skip(
      'pcrs',
      'debug mode: all-zero PCRs measure nothing, so no pinned measurements can be checked (debug mode was explicitly allowed)',
    );
  } else if (options.expectedPcrs) {
    for (const index of [0, 1, 2] as const) {
      const actual = document.pcrs.get(index);
      const expected = options.expectedPcrs.pcrs[index];
      if (actual === undefined)
        throw new AttestationFailure('pcr_mismatch', `PCR${index} is absent; expected ${expected}`);
      if (toHex(actual) !== expected)
        throw new AttestationFailure('pcr_mismatch', `PCR${index} is ${toHex(actual)}; expected ${expected}`);
    }
    record.pass('pcrs', 'PCR0, PCR1 and PCR2 equal the allow-listed measurements');
  } else record.skip('pcrs', 'no expected measurements given');

  record.begin('nonce');
  if (options.nonce) {
    if (document.nonce === null) throw new AttestationFailure('nonce', 'the document carries no nonce; one was sent');
    if (!bytesEqual(document.nonce, options.nonce))
      throw new AttestationFailure('nonce', 'the nonce differs from the one sent');
    record.pass('nonce', `equals the ${options.nonce.length}-byte nonce sent`);
  } else record.skip('nonce', 'no expected nonce given');

  record.begin('freshness');
  if (options.maxAgeMs !== undefined) {
    const age = at.getTime() - document.timestamp;
    const skew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    const stamped = new Date(document.timestamp).toISOString();
    if (age > options.maxAgeMs)
      throw new AttestationFailure('stale', `timestamp ${stamped} is ${age} ms old, more than ${options.maxAgeMs} ms`);
    if (-age > skew)
      throw new AttestationFailure(
        'stale',
        `timestamp ${stamped} is ${-age} ms in the future, more than the ${skew} ms clock skew allowed`,
      );
    record.pass('freshness', `timestamp ${stamped} is ${age} ms old, at most ${options.maxAgeMs} ms`);
  } else record.skip('freshness', 'no maximum age given');

  record.begin('public_key');
  if (options.requirePublicKey) {
    if (document.publicKey === null)
      throw new AttestationFailure('public_key_missing', 'the document carries no public_key and one is required');
    record.pass('public_key', `present (${document.publicKey.length} bytes)`);
  } else record.skip('public_key', 'not required');
}
