// verifyAttestation: an NSM attestation document, checked in a fixed order and failing closed at
// the first check that fails. Each check is reported with its status and, on failure, a stable
// reason (failure.ts). Policy checks given nothing to compare against are skipped, and say so.
import { verify as verifySignature } from 'node:crypto';
import { AWS_NITRO_ROOT_G1_PEM } from './aws-root.js';
import type { ChainCertificate, TrustedRoot } from './chain.js';
import { VerifiedLinkCache, checkChainLinks, checkValidity, findRoot, loadTrustedRoots, parseChain } from './chain.js';
import type { CoseSign1 } from './cose.js';
import { checkEs384, parseCoseSign1, sigStructure } from './cose.js';
import { parseAttestationPayload } from './document.js';
import { attestationErrors } from './errors.js';
import { AttestationFailure } from './failure.js';
import type { AttestationCheck, CheckName, VerificationResult } from './checks.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, decodeChecked } from './checks.js';
import type { PolicyOptions } from './policy-checks.js';
import { checkPolicy } from './policy-checks.js';

export { CHECK_NAMES, DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_MAX_DOCUMENT_BYTES } from './checks.js';
export type { AttestationCheck, CheckName, VerificationResult } from './checks.js';

export interface VerifyOptions extends PolicyOptions {
  /** Trusted roots as PEM text, DER bytes or loadTrustedRoots' result. Default: the AWS Nitro Enclaves root G1. */
  trustedRoots?: readonly (string | Uint8Array)[] | readonly TrustedRoot[];
  /** The verification time for certificate validity and freshness. Default: now. */
  at?: Date;
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
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw attestationErrors.ATT_OPTION_INVALID(`${name} must be a non-negative integer (ms), got ${value}`);
  };
  count('maxAgeMs', options.maxAgeMs);
  count('maxClockSkewMs', options.maxClockSkewMs);
  count('maxBytes', options.maxBytes);
  if (options.at !== undefined && Number.isNaN(options.at.getTime()))
    throw attestationErrors.ATT_OPTION_INVALID('at is an invalid Date');
  if (options.nonce !== undefined && !(options.nonce instanceof Uint8Array))
    throw attestationErrors.ATT_OPTION_INVALID('nonce must be a Uint8Array');
}

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
    if (documentBytes.length > maxBytes)
      throw new AttestationFailure('too_large', `document is ${documentBytes.length} bytes, the limit is ${maxBytes}`);
    pass('size', `${documentBytes.length} bytes, limit ${maxBytes}`);

    current = 'cose';
    const cose: CoseSign1 = parseCoseSign1(decodeChecked(documentBytes, maxBytes, 'document'));
    pass(
      'cose',
      `COSE_Sign1, ${cose.tagged ? 'tagged (18)' : 'untagged'}, payload ${cose.payload.length} bytes, signature ${cose.signature.length} bytes`,
    );

    current = 'algorithm';
    checkEs384(cose.protectedHeader);
    pass('algorithm', 'protected header {1: -35}: ES384 (ECDSA P-384, SHA-384)');

    current = 'payload';
    const document = parseAttestationPayload(decodeChecked(cose.payload, maxBytes, 'payload'));
    result.document = document;
    pass(
      'payload',
      `module_id ${document.moduleId}, ${document.pcrs.size} PCRs, ${document.cabundle.length} CA certificates`,
    );

    current = 'root';
    const root = findRoot(document, roots);
    pass(
      'root',
      `cabundle[0] is the trusted root ${root.x509.subject.replace(/\n/g, ', ')} (SHA-256 ${root.fingerprint256})`,
    );

    current = 'chain';
    const chain: ChainCertificate[] = parseChain(document, root, options.linkCache);
    checkChainLinks(chain, options.linkCache);
    pass('chain', `${chain.length} certificates, each issued and signed by the one before; leaf key EC P-384`);

    current = 'validity';
    checkValidity(chain, at);
    pass('validity', `every certificate valid at ${at.toISOString()}`);

    current = 'signature';
    const leafKey = chain.at(-1)!.x509.publicKey;
    if (
      !verifySignature(
        'sha384',
        sigStructure(cose.protectedHeader, cose.payload),
        { key: leafKey, dsaEncoding: 'ieee-p1363' },
        cose.signature,
      )
    ) {
      throw new AttestationFailure('signature', "the COSE signature does not verify with the leaf certificate's key");
    }
    pass('signature', 'COSE_Sign1 signature verified with the leaf key over the Sig_structure');

    checkPolicy(document, options, at, { begin: (name) => (current = name), pass, skip });

    result.ok = true;
    return result;
  } catch (error) {
    if (!(error instanceof AttestationFailure)) throw error;
    checks.push({ name: current, status: 'failed', detail: error.message, reason: error.reason });
    result.reason = error.reason;
    return result;
  }
}

export { VerifiedLinkCache };
