// What the client checks before it encrypts anything to a key: the attestation document verifies
// in full (verifyAttestationWeb: COSE signature, chain to the pinned root, validity, debug mode
// refused, PCRs, the client's own nonce, freshness, a public key present), and the document binds
// the key config the gateway offered: public_key is that config's raw X25519 key, and user_data is
// SHA-256 of the encoded config, so the key id and suites are the enclave's too (not only the key).
import type { PcrMeasurements, WebTrustedRoot } from '../attestation/web.js';
import { bytesEqual, toHex, verifyAttestationWeb } from '../attestation/web.js';
import type { KeyConfig } from '../ohttp/index.js';
import { encodeKeyConfig } from '../ohttp/index.js';
import { SecureClientError } from './errors.js';

/** What was verified, for the caller to show or log. */
export interface VerifiedEnclave {
  /** PCR0, PCR1, PCR2 as the document carries them (hex): equal to the pins. */
  pcrs: { 0: string; 1: string; 2: string };
  keyId: number;
  /** SHA-256 of the raw X25519 public key, hex (what the gateway's /readyz shows too). */
  publicKeySha256: string;
  moduleId: string;
  /** When the enclave's NSM signed the document (ISO 8601). */
  timestamp: string;
  /** SHA-256 of the root the chain ends in ("AB:CD:…"). */
  rootFingerprint: string;
  /** True when that root is the emulated NSM's throwaway root (trusted only through the insecure option). */
  emulated: boolean;
}

export interface VerifyEnclaveOptions {
  roots: readonly WebTrustedRoot[];
  /** Fingerprint of the emulated root, when the insecure option trusts one. */
  emulatedRootFingerprint?: string;
  pins: PcrMeasurements;
  nonce: Uint8Array;
  maxDocumentAgeMs: number;
  at: Date;
}

export async function verifyEnclave(
  document: Uint8Array,
  config: KeyConfig,
  options: VerifyEnclaveOptions,
): Promise<VerifiedEnclave> {
  const result = await verifyAttestationWeb(document, {
    trustedRoots: options.roots,
    at: options.at,
    expectedPcrs: options.pins,
    allowDebugMode: false,
    nonce: options.nonce,
    maxAgeMs: options.maxDocumentAgeMs,
    requirePublicKey: true,
  });
  if (!result.ok) {
    const failed = result.checks.at(-1)!;
    throw new SecureClientError(
      'attestation-failed',
      `The enclave's attestation did not verify (${result.reason}: ${failed.detail}); nothing was sent`,
      { attestationReason: result.reason, checks: result.checks },
    );
  }
  const attested = result.document!;
  const encoded = encodeKeyConfig(config);
  if (!bytesEqual(attested.publicKey!, config.publicKey)) {
    throw new SecureClientError(
      'key-not-bound',
      `The attested public_key is not key ${config.keyId}'s public key: the gateway offered a key the enclave did not attest; nothing was sent`,
    );
  }
  const configHash = new Uint8Array(await crypto.subtle.digest('SHA-256', encoded));
  if (attested.userData === null || !bytesEqual(attested.userData, configHash)) {
    throw new SecureClientError(
      'key-not-bound',
      `The attested user_data is not SHA-256 of key config ${config.keyId}: its key id or suites are not the ones the enclave attested; nothing was sent`,
    );
  }
  const pcr = (index: number) => toHex(attested.pcrs.get(index)!);
  const rootFingerprint = result.root!.fingerprint256;
  return {
    pcrs: { 0: pcr(0), 1: pcr(1), 2: pcr(2) },
    keyId: config.keyId,
    publicKeySha256: toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', config.publicKey))),
    moduleId: attested.moduleId,
    timestamp: new Date(attested.timestamp).toISOString(),
    rootFingerprint,
    emulated: rootFingerprint === options.emulatedRootFingerprint,
  };
}
