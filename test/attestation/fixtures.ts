// Shared by the attestation tests: a fixed clock, an emulated NSM on it, and a verify() that
// trusts that NSM's root at that time.
import type { EmulatedNsm, EmulatedNsmOptions, VerificationResult, VerifyOptions } from '../../attestation/index.js';
import { createEmulatedNsm, emulatedMeasurements, verifyAttestation } from '../../attestation/index.js';

export const NOW = new Date('2026-03-01T12:00:00.000Z');
export const MEASUREMENTS = emulatedMeasurements({
  kernel: [Buffer.from('kernel')],
  application: [Buffer.from('model-server')],
});
export const NONCE = Buffer.from('6e6f6e63652d666f722d74657374732d30313233343536373839616263646566', 'hex');

export function testNsm(options: EmulatedNsmOptions = {}): EmulatedNsm {
  return createEmulatedNsm({ measurements: MEASUREMENTS, now: () => NOW, ...options });
}

/** Verifies with every policy check enabled unless an option says otherwise. */
export function verifyWith(nsm: EmulatedNsm, document: Uint8Array, options: VerifyOptions = {}): VerificationResult {
  return verifyAttestation(document, {
    trustedRoots: [nsm.rootCertificate],
    at: NOW,
    expectedPcrs: MEASUREMENTS,
    nonce: NONCE,
    maxAgeMs: 60_000,
    ...options,
  });
}

/** A copy with the byte at `index` changed. */
export function flipByte(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Buffer.from(bytes);
  copy[index] = copy[index]! ^ 0x01;
  return copy;
}

/** Where `needle` starts in `haystack`; throws when absent. */
export function offsetOf(haystack: Uint8Array, needle: Uint8Array): number {
  const offset = Buffer.from(haystack).indexOf(Buffer.from(needle));
  if (offset === -1) throw new Error('needle not found');
  return offset;
}
