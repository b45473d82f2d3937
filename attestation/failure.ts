// Why a document was refused: one stable reason per failed check. The gateway exports failures by
// reason as a metric label, so this set stays small; the README documents each reason.

export const FAILURE_REASONS = [
  /** The document is larger than the size cap. */
  'too_large',
  /** The document or its payload is not well-formed CBOR (truncated, trailing bytes, bad heads...). */
  'cbor',
  /** Not a COSE_Sign1: wrong tag, not a 4-item array, wrong item types, signature not 96 bytes. */
  'cose_structure',
  /** The protected header is not exactly {1: -35} (ES384). */
  'algorithm',
  /** A payload field is missing, of the wrong type, out of range, or unknown. */
  'payload_field',
  /** The first certificate of cabundle is not a trusted root, byte for byte. */
  'root',
  /** A certificate does not parse, is not issued or signed by the one before it, breaks a CA constraint, or the leaf key is not P-384. */
  'chain',
  /** A certificate is expired or not yet valid at the verification time. */
  'validity',
  /** The COSE signature does not verify with the leaf certificate's key. */
  'signature',
  /** PCR0, PCR1 or PCR2 differs from the allow-listed measurements. */
  'pcr_mismatch',
  /** PCR0/1/2 are all zeros (an enclave in debug mode) and debug mode is not allowed. */
  'debug_mode',
  /** The nonce is absent or differs from the one sent. */
  'nonce',
  /** The timestamp is older than the maximum age, or in the future beyond the allowed clock skew. */
  'stale',
  /** A public key is required and the document has none. */
  'public_key_missing',
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Thrown by one verification step; the verifier turns it into a failed check. */
export class AttestationFailure extends Error {
  override name = 'AttestationFailure';
  constructor(
    readonly reason: FailureReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
