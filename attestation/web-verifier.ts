// verifyAttestationWeb: the same checks as verifyAttestation (verifier.ts), in the same order with
// the same reasons, but with WebCrypto (crypto.subtle) instead of node:crypto, so that browsers and
// the client SDK verify an enclave themselves. The parsers and the checks after the signature are
// the very code verifier.ts runs; only the signatures and the certificate parsing differ.
// Browser-safe: no node: imports, no Buffer. Never throws for a bad document.
import { AWS_NITRO_ROOT_G1_PEM } from './aws-root.js';
import type { AttestationCheck, CheckName, VerificationResult } from './checks.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, decodeChecked } from './checks.js';
import { checkValidity } from './certificate.js';
import { checkEs384, parseCoseSign1, sigStructure } from './cose.js';
import { parseAttestationPayload } from './document.js';
import { AttestationFailure } from './failure.js';
import type { PolicyOptions } from './policy-checks.js';
import { checkPolicy } from './policy-checks.js';
import type { WebTrustedRoot } from './web-chain.js';
import { checkWebChainLinks, findWebRoot, loadWebTrustedRoots, parseWebChain, verifyEs384 } from './web-chain.js';

export interface WebVerifyOptions extends PolicyOptions {
  /** loadWebTrustedRoots' result, or PEM text / DER bytes. Default: the AWS Nitro Enclaves root G1. */
  trustedRoots?: readonly WebTrustedRoot[] | readonly (string | Uint8Array)[];
  /** The verification time for certificate validity and freshness. Default: now. */
  at?: Date;
  maxBytes?: number;
}

export interface WebVerificationResult extends VerificationResult {
  /** The trusted root the chain ends in, when the root check passed. */
  root?: WebTrustedRoot;
}

let awsRoots: Promise<WebTrustedRoot[]> | undefined;

/** Trusted roots parsed once (the AWS default at first use). Throws TrustedRootError. */
export async function resolveWebTrustedRoots(
  roots: WebVerifyOptions['trustedRoots'],
): Promise<readonly WebTrustedRoot[]> {
  if (roots === undefined) return (awsRoots ??= loadWebTrustedRoots([AWS_NITRO_ROOT_G1_PEM]));
  if (roots.length > 0 && typeof roots[0] === 'object' && 'fingerprint256' in roots[0])
    return roots as readonly WebTrustedRoot[];
  return loadWebTrustedRoots(roots as readonly (string | Uint8Array)[]);
}

function checkOptions(options: WebVerifyOptions): void {
  const count = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw new RangeError(`${name} must be a non-negative integer (ms), got ${value}`);
  };
  count('maxAgeMs', options.maxAgeMs);
  count('maxClockSkewMs', options.maxClockSkewMs);
  count('maxBytes', options.maxBytes);
  if (options.at !== undefined && Number.isNaN(options.at.getTime())) throw new RangeError('at is an invalid Date');
  if (options.nonce !== undefined && !(options.nonce instanceof Uint8Array))
    throw new TypeError('nonce must be a Uint8Array');
}

/**
 * Verifies one attestation document (raw CBOR). Resolves with which check failed and why for a bad
 * document; rejects only for bad options (RangeError, TypeError, TrustedRootError) or when
 * crypto.subtle is missing (TypeError).
 */
export async function verifyAttestationWeb(
  documentBytes: Uint8Array,
  options: WebVerifyOptions = {},
): Promise<WebVerificationResult> {
  checkOptions(options);
  const roots = await resolveWebTrustedRoots(options.trustedRoots);
  const at = options.at ?? new Date();
  const checks: AttestationCheck[] = [];
  const result: WebVerificationResult = { ok: false, checks, at };
  const pass = (name: CheckName, detail: string) => checks.push({ name, status: 'passed', detail });
  const skip = (name: CheckName, detail: string) => checks.push({ name, status: 'skipped', detail });

  let current: CheckName = 'size';
  try {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
    if (documentBytes.length > maxBytes)
      throw new AttestationFailure('too_large', `document is ${documentBytes.length} bytes, the limit is ${maxBytes}`);
    pass('size', `${documentBytes.length} bytes, limit ${maxBytes}`);

    current = 'cose';
    const cose = parseCoseSign1(decodeChecked(documentBytes, maxBytes, 'document'));
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
    const root = findWebRoot(document, roots);
    result.root = root;
    pass('root', `cabundle[0] is the trusted root ${root.subject} (SHA-256 ${root.fingerprint256})`);

    current = 'chain';
    const chain = parseWebChain(document, root);
    await checkWebChainLinks(chain);
    pass('chain', `${chain.length} certificates, each issued and signed by the one before; leaf key EC P-384`);

    current = 'validity';
    checkValidity(chain, at);
    pass('validity', `every certificate valid at ${at.toISOString()}`);

    current = 'signature';
    if (!(await verifyEs384(chain.at(-1)!, cose.signature, sigStructure(cose.protectedHeader, cose.payload)))) {
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
