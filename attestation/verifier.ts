// verifyAttestation: an NSM attestation document, checked in a fixed order and failing closed at
// the first check that fails. Each check is reported with its status and, on failure, a stable
// reason (failure.ts). Policy checks given nothing to compare against are skipped, and say so.
import { verify as verifySignature } from 'node:crypto';
import { AWS_NITRO_ROOT_G1_PEM } from './aws-root.js';
import type { CborValue } from './cbor.js';
import { decodeCbor } from './cbor.js';
import type { ChainCertificate, TrustedRoot } from './chain.js';
import { VerifiedLinkCache, checkChainLinks, checkValidity, findRoot, loadTrustedRoots, parseChain } from './chain.js';
import type { CoseSign1 } from './cose.js';
import { checkEs384, parseCoseSign1, sigStructure } from './cose.js';
import type { AttestationDocument } from './document.js';
import { parseAttestationPayload } from './document.js';
import { attestationErrors } from './errors.js';
import type { FailureReason } from './failure.js';
import { AttestationFailure } from './failure.js';
import type { PcrMeasurements } from './measurements.js';

/** Documents are about 5 KiB; anything far larger is refused before decoding. */
export const DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024; // 16 KiB
/** How far in the future a timestamp may be (clock skew between parent and enclave). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000; // 1 min

export const CHECK_NAMES = ['size', 'cose', 'algorithm', 'payload', 'root', 'chain', 'validity', 'signature', 'debug_mode', 'pcrs', 'nonce', 'freshness', 'public_key'] as const;
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

export interface VerifyOptions {
  /** Trusted roots as PEM text, DER bytes or loadTrustedRoots' result. Default: the AWS Nitro Enclaves root G1. */
  trustedRoots?: readonly (string | Uint8Array)[] | readonly TrustedRoot[];
  /** The verification time for certificate validity and freshness. Default: now. */
  at?: Date;
  /** PCR0/1/2 the document must carry. Without them the pcrs check is skipped. */
  expectedPcrs?: PcrMeasurements;
  /** Accept all-zero PCR0/1/2 (an enclave in debug mode). Default false. */
  allowDebugMode?: boolean;
  /** The nonce the verifier sent; the document must carry exactly it. Without it the nonce check is skipped. */
  nonce?: Uint8Array;
  /** The oldest timestamp accepted, relative to `at`. Without it the freshness check is skipped. */
  maxAgeMs?: number;
  maxClockSkewMs?: number;
  /** The document must carry a public_key. */
  requirePublicKey?: boolean;
  maxBytes?: number;
  /** Skips the ECDSA verification of certificate links already verified (see VerifiedLinkCache). */
  linkCache?: VerifiedLinkCache;
}


let awsRoots: TrustedRoot[] | undefined;

/** Trusted roots parsed once (the AWS default is parsed at first use). */
export function resolveTrustedRoots(roots: VerifyOptions['trustedRoots']): readonly TrustedRoot[] {
  if (roots === undefined) return (awsRoots ??= loadTrustedRoots([AWS_NITRO_ROOT_G1_PEM]));
  if (roots.length > 0 && typeof roots[0] === 'object' && 'x509' in roots[0]) return roots as readonly TrustedRoot[];
  return loadTrustedRoots(roots as readonly (string | Uint8Array)[]);
}

function checkOptions(options: VerifyOptions): void {
  const count = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) throw attestationErrors.ATT_OPTION_INVALID(`${name} must be a non-negative integer (ms), got ${value}`);
  };
  count('maxAgeMs', options.maxAgeMs);
  count('maxClockSkewMs', options.maxClockSkewMs);
  count('maxBytes', options.maxBytes);
  if (options.at !== undefined && Number.isNaN(options.at.getTime())) throw attestationErrors.ATT_OPTION_INVALID('at is an invalid Date');
  if (options.nonce !== undefined && !(options.nonce instanceof Uint8Array)) throw attestationErrors.ATT_OPTION_INVALID('nonce must be a Uint8Array');
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/**
 * Verifies one attestation document (raw CBOR). Never throws for a bad document: the result says
 * which check failed and why. Throws ATT_OPTION_INVALID / ATT_ROOT_INVALID for bad options.
 */
export function verifyAttestation(documentBytes: Uint8Array, options: VerifyOptions = {}): VerificationResult {
  checkOptions(options);
  const roots = resolveTrustedRoots(options.trustedRoots);
  const at = options.at ?? new Date();
  const checks: AttestationCheck[] = [];
  const result: VerificationResult = { ok: false, checks, at };
  const pass = (name: CheckName, detail: string) => checks.push({ name, status: 'passed', detail });
  const skip = (name: CheckName, detail: string) => checks.push({ name, status: 'skipped', detail });

  let current: CheckName = 'size';
  try {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
    if (documentBytes.length > maxBytes) throw new AttestationFailure('too_large', `document is ${documentBytes.length} bytes, the limit is ${maxBytes}`);
    pass('size', `${documentBytes.length} bytes, limit ${maxBytes}`);

    current = 'cose';
    const cose: CoseSign1 = parseCoseSign1(decode(documentBytes, maxBytes, 'document'));
    pass('cose', `COSE_Sign1, ${cose.tagged ? 'tagged (18)' : 'untagged'}, payload ${cose.payload.length} bytes, signature ${cose.signature.length} bytes`);

    current = 'algorithm';
    checkEs384(cose.protectedHeader);
    pass('algorithm', 'protected header {1: -35}: ES384 (ECDSA P-384, SHA-384)');

    current = 'payload';
    const document = parseAttestationPayload(decode(cose.payload, maxBytes, 'payload'));
    result.document = document;
    pass('payload', `module_id ${document.moduleId}, ${document.pcrs.size} PCRs, ${document.cabundle.length} CA certificates`);

    current = 'root';
    const root = findRoot(document, roots);
    pass('root', `cabundle[0] is the trusted root ${root.x509.subject.replace(/\n/g, ', ')} (SHA-256 ${root.fingerprint256})`);

    current = 'chain';
    const chain: ChainCertificate[] = parseChain(document, root, options.linkCache);
    checkChainLinks(chain, options.linkCache);
    pass('chain', `${chain.length} certificates, each issued and signed by the one before; leaf key EC P-384`);

    current = 'validity';
    checkValidity(chain, at);
    pass('validity', `every certificate valid at ${at.toISOString()}`);

    current = 'signature';
    const leafKey = chain.at(-1)!.x509.publicKey;
    if (!verifySignature('sha384', sigStructure(cose.protectedHeader, cose.payload), { key: leafKey, dsaEncoding: 'ieee-p1363' }, cose.signature)) {
      throw new AttestationFailure('signature', 'the COSE signature does not verify with the leaf certificate\'s key');
    }
    pass('signature', 'COSE_Sign1 signature verified with the leaf key over the Sig_structure');

    current = 'debug_mode';
    const zero = [0, 1, 2].every((index) => document.pcrs.get(index)?.every((byte) => byte === 0) === true);
    if (zero && !options.allowDebugMode) throw new AttestationFailure('debug_mode', 'PCR0, PCR1 and PCR2 are all zeros: the enclave runs in debug mode (its memory is readable from the parent)');
    pass('debug_mode', zero ? 'PCR0/1/2 are all zeros (debug mode), accepted because debug mode is allowed' : 'not in debug mode (PCR0/1/2 are not all zeros)');

    current = 'pcrs';
    if (zero && options.allowDebugMode) {
      // A debug-mode enclave reports zeros whatever it runs: there is nothing to compare pins with.
      skip('pcrs', 'debug mode: all-zero PCRs measure nothing, so no pinned measurements can be checked (debug mode was explicitly allowed)');
    } else if (options.expectedPcrs) {
      for (const index of [0, 1, 2] as const) {
        const actual = document.pcrs.get(index);
        const expected = options.expectedPcrs.pcrs[index];
        if (actual === undefined) throw new AttestationFailure('pcr_mismatch', `PCR${index} is absent; expected ${expected}`);
        if (hex(actual) !== expected) throw new AttestationFailure('pcr_mismatch', `PCR${index} is ${hex(actual)}; expected ${expected}`);
      }
      pass('pcrs', 'PCR0, PCR1 and PCR2 equal the allow-listed measurements');
    } else skip('pcrs', 'no expected measurements given');

    current = 'nonce';
    if (options.nonce) {
      if (document.nonce === null) throw new AttestationFailure('nonce', 'the document carries no nonce; one was sent');
      if (Buffer.compare(document.nonce, options.nonce) !== 0) throw new AttestationFailure('nonce', 'the nonce differs from the one sent');
      pass('nonce', `equals the ${options.nonce.length}-byte nonce sent`);
    } else skip('nonce', 'no expected nonce given');

    current = 'freshness';
    if (options.maxAgeMs !== undefined) {
      const age = at.getTime() - document.timestamp;
      const skew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
      const stamped = new Date(document.timestamp).toISOString();
      if (age > options.maxAgeMs) throw new AttestationFailure('stale', `timestamp ${stamped} is ${age} ms old, more than ${options.maxAgeMs} ms`);
      if (-age > skew) throw new AttestationFailure('stale', `timestamp ${stamped} is ${-age} ms in the future, more than the ${skew} ms clock skew allowed`);
      pass('freshness', `timestamp ${stamped} is ${age} ms old, at most ${options.maxAgeMs} ms`);
    } else skip('freshness', 'no maximum age given');

    current = 'public_key';
    if (options.requirePublicKey) {
      if (document.publicKey === null) throw new AttestationFailure('public_key_missing', 'the document carries no public_key and one is required');
      pass('public_key', `present (${document.publicKey.length} bytes)`);
    } else skip('public_key', 'not required');

    result.ok = true;
    return result;
  } catch (error) {
    if (!(error instanceof AttestationFailure)) throw error;
    checks.push({ name: current, status: 'failed', detail: error.message, reason: error.reason });
    result.reason = error.reason;
    return result;
  }
}

function decode(bytes: Uint8Array, maxBytes: number, what: string): CborValue {
  try {
    return decodeCbor(bytes, { maxBytes });
  } catch (cause) {
    throw new AttestationFailure('cbor', `${what} is not valid CBOR: ${(cause as Error).message}`, { cause });
  }
}

export { VerifiedLinkCache };
