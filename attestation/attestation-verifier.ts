// The verifier the gateway holds: roots parsed once, the pinned measurements fixed, verified
// certificate links remembered, and a nonce required on every call.
import { randomBytes } from 'node:crypto';
import type { AttestationDocument } from './document.js';
import { attestationErrors } from './errors.js';
import { AttestationFailure } from './failure.js';
import type { PcrMeasurements } from './measurements.js';
import type { VerificationResult, VerifyOptions } from './verifier.js';
import { VerifiedLinkCache, resolveTrustedRoots, verifyAttestation } from './verifier.js';

/** A document older than this is refused: the NSM signs it on request, so it should be seconds old. */
export const DEFAULT_MAX_DOCUMENT_AGE_MS = 5 * 60_000; // 5 min
/** Bytes of the nonce createNonce makes. */
export const NONCE_BYTES = 32;

export interface AttestationVerifierOptions {
  /** Default: the AWS Nitro Enclaves root G1. The emulated NSM's root only behind an explicitly insecure flag. */
  trustedRoots?: VerifyOptions['trustedRoots'];
  /** The measurements `mpg enclave build` wrote (readMeasurementsFile). */
  expectedPcrs: PcrMeasurements;
  allowDebugMode?: boolean;
  maxAgeMs?: number;
  maxClockSkewMs?: number;
  requirePublicKey?: boolean;
  maxBytes?: number;
  /** The clock; tests and re-verification of recorded documents set it. */
  now?: () => Date;
}

export interface AttestationVerifier {
  /** Every check, including freshness and the nonce the caller just sent. */
  verify(document: Uint8Array, expected: { nonce: Uint8Array }): VerificationResult;
  /**
   * The verified document, or ATT_VERIFICATION_FAILED whose `cause` is an AttestationFailure
   * carrying the reason.
   */
  verifyOrThrow(document: Uint8Array, expected: { nonce: Uint8Array }): AttestationDocument;
}

/** A fresh random nonce to send with an attestation request. */
export function createNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

export function createAttestationVerifier(options: AttestationVerifierOptions): AttestationVerifier {
  if (!options.expectedPcrs)
    throw attestationErrors.ATT_OPTION_INVALID('expectedPcrs is required: read them with readMeasurementsFile');
  const trustedRoots = resolveTrustedRoots(options.trustedRoots);
  const linkCache = new VerifiedLinkCache();
  const now = options.now ?? (() => new Date());
  const optionsFor = (expected: { nonce: Uint8Array }): VerifyOptions => {
    if (!(expected?.nonce instanceof Uint8Array) || expected.nonce.length === 0)
      throw attestationErrors.ATT_OPTION_INVALID('a non-empty nonce is required');
    return {
      trustedRoots,
      expectedPcrs: options.expectedPcrs,
      allowDebugMode: options.allowDebugMode ?? false,
      maxAgeMs: options.maxAgeMs ?? DEFAULT_MAX_DOCUMENT_AGE_MS,
      maxClockSkewMs: options.maxClockSkewMs,
      requirePublicKey: options.requirePublicKey ?? false,
      maxBytes: options.maxBytes,
      nonce: expected.nonce,
      at: now(),
      linkCache,
    };
  };
  const verify = (document: Uint8Array, expected: { nonce: Uint8Array }) =>
    verifyAttestation(document, optionsFor(expected));
  return {
    verify,
    verifyOrThrow(document, expected) {
      const result = verify(document, expected);
      if (result.ok) return result.document!;
      const failed = result.checks.at(-1)!;
      const failure = new AttestationFailure(result.reason!, failed.detail);
      throw attestationErrors.ATT_VERIFICATION_FAILED(
        `The enclave's attestation document did not verify (${result.reason}: ${failed.detail}), so the secure route stays closed`,
        { cause: failure },
      );
    },
  };
}
