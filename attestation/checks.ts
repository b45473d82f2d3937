// The checks of an attestation document, their order and their result shape: shared by the Node
// verifier (verifier.ts, node:crypto) and the WebCrypto one (web-verifier.ts, browsers and the
// client SDK), so that both report the same checks with the same reasons. Browser-safe.
import type { AttestationDocument } from './document.js';
import type { CborValue } from './cbor.js';
import { decodeCbor } from './cbor.js';
import type { FailureReason } from './failure.js';
import { AttestationFailure } from './failure.js';

/** Documents are about 5 KiB; anything far larger is refused before decoding. */
export const DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024; // 16 KiB
/** How far in the future a timestamp may be (clock skew between parent and enclave). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000; // 1 min

export const CHECK_NAMES = [
  'size',
  'cose',
  'algorithm',
  'payload',
  'root',
  'chain',
  'validity',
  'signature',
  'debug_mode',
  'pcrs',
  'nonce',
  'freshness',
  'public_key',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface AttestationCheck {
  name: CheckName;
  status: 'passed' | 'failed' | 'skipped';
  /** What was checked, why it failed, or why it was skipped. Never document bytes beyond PCRs and names. */
  detail: string;
  /** Set on a failed check. */
  reason?: FailureReason;
}

export interface VerificationResult {
  /** True only when no check failed; skipped checks are listed in `checks`. */
  ok: boolean;
  /** The failed check's reason. */
  reason?: FailureReason;
  /** The checks that ran (or were skipped), in order, up to and including the first failure. */
  checks: AttestationCheck[];
  /** The decoded document, when its payload parsed (even if a later check failed). */
  document?: AttestationDocument;
  /** The verification time used. */
  at: Date;
}

/** Records checks as they run; `begin` names the check a thrown AttestationFailure belongs to. */
export interface CheckRecorder {
  begin(name: CheckName): void;
  pass(name: CheckName, detail: string): void;
  skip(name: CheckName, detail: string): void;
}

/** CBOR decoded within `maxBytes`, or the `cbor` check's failure naming `what` (both verifiers). */
export function decodeChecked(bytes: Uint8Array, maxBytes: number, what: string): CborValue {
  try {
    return decodeCbor(bytes, { maxBytes });
  } catch (cause) {
    throw new AttestationFailure('cbor', `${what} is not valid CBOR: ${(cause as Error).message}`, { cause });
  }
}
