// A cold verification's cost is its ECDSA P-384 signatures: one per certificate below the root,
// and the document's own. They do not depend on one another, so this runs them all at once on
// libuv's thread pool (node:crypto's verify with a callback) and records each that verifies in
// the verifier's cache. The synchronous verifier then runs every check, in order, as always, and
// finds those signatures done. Best effort: whatever this cannot read it leaves to the
// synchronous verifier, which reports it at its step. A signature lands in the cache only after it
// verified, bound to the exact certificates, data and signature bytes.
import type { KeyObject } from 'node:crypto';
import { verify } from 'node:crypto';
import type { ChainCertificate, TrustedRoot, VerifiedLinkCache } from './chain.js';
import { findRoot, parseChain } from './chain.js';
import { decodeCbor } from './cbor.js';
import { checkEs384, parseCoseSign1, sigStructure } from './cose.js';
import { derChildren, oidToString, readDer } from './der.js';
import { parseAttestationPayload } from './document.js';

/** The X.509 signature algorithms of Nitro chains, and the hash each signs with. */
const ECDSA_HASHES: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

function verifyOnPool(hash: string, data: Uint8Array, key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' }, signature: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => verify(hash, data, key, signature, (error, ok) => resolve(!error && ok)));
}

/**
 * The signed part of a certificate, its algorithm's hash and its signature; undefined when
 * unreadable, or when the algorithm outside the signed part is not, byte for byte, the one inside
 * it (TBSCertificate.signature) with no parameters, as OpenSSL's own check requires.
 */
function signedParts(der: Uint8Array): { tbs: Uint8Array; hash: string; signature: Uint8Array } | undefined {
  try {
    const [tbs, algorithm, bits] = derChildren(readDer(der));
    if (!tbs || !algorithm || !bits || bits.value[0] !== 0) return undefined;
    const tbsFields = derChildren(tbs);
    // TBSCertificate: [0] version (v2/v3 only), serialNumber, signature, ...
    const inner = tbsFields[tbsFields[0]?.tag === 0xa0 ? 2 : 1];
    if (!inner || Buffer.compare(inner.raw, algorithm.raw) !== 0) return undefined;
    const identifier = derChildren(algorithm);
    if (identifier.length !== 1) return undefined;
    const hash = ECDSA_HASHES[oidToString(identifier[0]!.value)];
    return hash ? { tbs: tbs.raw, hash, signature: bits.value.subarray(1) } : undefined;
  } catch {
    return undefined;
  }
}

export async function verifySignaturesInParallel(documentBytes: Uint8Array, roots: readonly TrustedRoot[], cache: VerifiedLinkCache, maxBytes: number): Promise<void> {
  let chain: ChainCertificate[];
  let cose: ReturnType<typeof parseCoseSign1>;
  try {
    if (documentBytes.length > maxBytes) return;
    cose = parseCoseSign1(decodeCbor(documentBytes, { maxBytes }));
    checkEs384(cose.protectedHeader);
    const document = parseAttestationPayload(decodeCbor(cose.payload, { maxBytes }));
    chain = parseChain(document, findRoot(document, roots), cache);
  } catch {
    return; // the synchronous verifier says what is wrong, at its step
  }
  const jobs: Promise<void>[] = [];
  for (let index = 1; index < chain.length; index++) {
    const issuer = chain[index - 1]!;
    const subject = chain[index]!;
    if (cache.has(issuer, subject) || !subject.x509.checkIssued(issuer.x509)) continue;
    const parts = signedParts(subject.der);
    if (!parts) continue;
    jobs.push(
      verifyOnPool(parts.hash, parts.tbs, issuer.x509.publicKey, parts.signature).then((ok) => {
        if (ok) cache.add(issuer, subject);
      }),
    );
  }
  const leaf = chain.at(-1)!;
  const signed = sigStructure(cose.protectedHeader, cose.payload);
  if (!cache.hasSignature(leaf, signed, cose.signature)) {
    jobs.push(
      verifyOnPool('sha384', signed, { key: leaf.x509.publicKey, dsaEncoding: 'ieee-p1363' }, cose.signature).then((ok) => {
        if (ok) cache.addSignature(leaf, signed, cose.signature);
      }),
    );
  }
  await Promise.all(jobs);
}
