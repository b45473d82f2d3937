// The certificate chain checked with WebCrypto, exactly as chain.ts checks it with node:crypto:
// cabundle[0] equals a trusted root byte for byte; each later certificate is issued by the one
// before (names, key identifiers) and its ECDSA signature verifies with that one's key; issuers
// are CAs with keyCertSign within their pathLenConstraint; the leaf is no CA and has a P-384 key.
// X.509 carries ECDSA signatures in DER; WebCrypto takes raw r||s, so they are converted.
// Browser-safe.
import { bytesEqual, fromBase64, latin1 } from './bytes.js';
import type { AttestationDocument } from './document.js';
import { AttestationFailure } from './failure.js';
import type { WebCertificate } from './web-certificate.js';
import {
  EC_CURVES,
  ECDSA_SIGNATURE_ALGORITHMS,
  OID_EC_PUBLIC_KEY,
  ecdsaDerToRaw,
  readWebCertificate,
} from './web-certificate.js';

export interface WebTrustedRoot extends WebCertificate {
  /** SHA-256 of the DER, as "AB:CD:..." (the form node:crypto's fingerprint256 and AWS use). */
  fingerprint256: string;
}

/** A trusted root that is not a certificate: the caller's mistake, not the document's. */
export class TrustedRootError extends Error {
  override name = 'TrustedRootError';
}

function subtle(): Subtle {
  const api = globalThis.crypto?.subtle;
  if (!api)
    throw new TypeError(
      'WebCrypto (crypto.subtle) is not available: in a browser, a page has it only in a secure context (HTTPS, or http://localhost)',
    );
  return api;
}
type Subtle = typeof globalThis.crypto.subtle;

/** Parses trusted roots given as PEM text (one or more certificates) or DER bytes. Throws TrustedRootError. */
export async function loadWebTrustedRoots(inputs: readonly (string | Uint8Array)[]): Promise<WebTrustedRoot[]> {
  const ders: Uint8Array[] = [];
  for (const input of inputs) {
    const text = typeof input === 'string' ? input : input[0] === 0x30 ? undefined : latin1(input);
    if (text === undefined) {
      ders.push(input as Uint8Array);
      continue;
    }
    const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
    if (blocks.length === 0)
      throw new TrustedRootError('a trusted root has no "-----BEGIN CERTIFICATE-----" block and is not DER');
    for (const block of blocks) {
      try {
        ders.push(fromBase64(block[1]!));
      } catch (cause) {
        throw new TrustedRootError("a trusted root's PEM block is not base64", { cause });
      }
    }
  }
  if (ders.length === 0) throw new TrustedRootError('no trusted root given');
  return Promise.all(
    ders.map(async (der, index) => {
      let certificate: WebCertificate;
      try {
        certificate = readWebCertificate(der, `trusted root ${index}`);
      } catch (cause) {
        throw new TrustedRootError(`trusted root ${index} is not an X.509 certificate: ${(cause as Error).message}`, {
          cause,
        });
      }
      return { ...certificate, fingerprint256: await fingerprint(der) };
    }),
  );
}

export async function fingerprint(der: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await subtle().digest('SHA-256', der));
  return [...digest].map((byte) => byte.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** cabundle[0] must be one of the trusted roots, compared as whole DER (reason root). */
export function findWebRoot(document: AttestationDocument, roots: readonly WebTrustedRoot[]): WebTrustedRoot {
  const first = document.cabundle[0]!;
  const root = roots.find((candidate) => bytesEqual(candidate.der, first));
  if (!root) throw new AttestationFailure('root', `cabundle[0] (${describeSubject(first)}) is not a trusted root`);
  return root;
}

function describeSubject(der: Uint8Array): string {
  try {
    return readWebCertificate(der, 'cabundle[0]').subject;
  } catch {
    return 'not a certificate';
  }
}

/** The chain root first, leaf last; certificates that do not parse fail with reason chain. */
export function parseWebChain(document: AttestationDocument, root: WebTrustedRoot): WebCertificate[] {
  const chain: WebCertificate[] = [{ ...root, label: 'cabundle[0]' }];
  const rest = [
    ...document.cabundle.slice(1).map((der, index) => ({ der, label: `cabundle[${index + 1}]` })),
    { der: document.certificate, label: 'certificate' },
  ];
  for (const { der, label } of rest) {
    try {
      chain.push(readWebCertificate(der, label));
    } catch (cause) {
      throw new AttestationFailure('chain', `${label} is not a valid X.509 certificate: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  return chain;
}

/** Imports an EC public key for ECDSA verification, or fails with reason chain. */
export async function importEcdsaKey(
  certificate: WebCertificate,
  hash: string,
): Promise<{ key: CryptoKeyLike; size: number }> {
  const curve = certificate.keyCurve === undefined ? undefined : EC_CURVES[certificate.keyCurve];
  if (certificate.keyAlgorithm !== OID_EC_PUBLIC_KEY || !curve)
    throw new AttestationFailure(
      'chain',
      `${certificate.label}'s key is not an EC key on P-256, P-384 or P-521 (algorithm ${certificate.keyAlgorithm}, curve ${certificate.keyCurve ?? 'none'})`,
    );
  try {
    const key = await subtle().importKey('spki', certificate.spki, { name: 'ECDSA', namedCurve: curve.name }, false, [
      'verify',
    ]);
    return { key, size: curve.bytes };
  } catch (cause) {
    throw new AttestationFailure(
      'chain',
      `${certificate.label}'s ${curve.name} key does not import for ${hash}: ${(cause as Error).message}`,
      { cause },
    );
  }
}
export type CryptoKeyLike = Awaited<ReturnType<Subtle['importKey']>>;

/** Issuer/subject links, signatures, CA constraints and the leaf key (reason chain). */
export async function checkWebChainLinks(chain: readonly WebCertificate[]): Promise<void> {
  const leafIndex = chain.length - 1;
  for (let index = 1; index <= leafIndex; index++) {
    const issuer = chain[index - 1]!;
    const subject = chain[index]!;
    if (!issuer.facts.isCa)
      throw new AttestationFailure(
        'chain',
        `${issuer.label} issues ${subject.label} but is not a CA (basicConstraints cA)`,
      );
    if (issuer.facts.keyCertSign === false)
      throw new AttestationFailure(
        'chain',
        `${issuer.label} issues ${subject.label} but its keyUsage lacks keyCertSign`,
      );
    const below = leafIndex - index; // CA certificates between this issuer and the leaf
    if (issuer.facts.pathLength !== undefined && below > issuer.facts.pathLength) {
      throw new AttestationFailure(
        'chain',
        `${issuer.label} allows ${issuer.facts.pathLength} CA certificates below it (pathLenConstraint), the chain has ${below}`,
      );
    }
    // As OpenSSL's X509_check_issued: the subject's issuer name is the issuer's subject name, and
    // when both carry key identifiers they agree. Names are compared byte for byte (stricter than
    // OpenSSL's canonical comparison; AWS writes both from the same encoder).
    const keyIdsDiffer =
      subject.authorityKeyId !== undefined &&
      issuer.subjectKeyId !== undefined &&
      !bytesEqual(subject.authorityKeyId, issuer.subjectKeyId);
    if (!bytesEqual(subject.issuerName, issuer.subjectName) || keyIdsDiffer) {
      throw new AttestationFailure(
        'chain',
        `${subject.label} is not issued by ${issuer.label} (issuer name or key identifier differs): broken chain order?`,
      );
    }
    await checkLinkSignature(issuer, subject);
  }
  const leaf = chain[leafIndex]!;
  if (leaf.facts.isCa) throw new AttestationFailure('chain', 'the leaf certificate is a CA certificate');
  if (leaf.keyAlgorithm !== OID_EC_PUBLIC_KEY || EC_CURVES[leaf.keyCurve ?? '']?.name !== 'P-384') {
    throw new AttestationFailure(
      'chain',
      `the leaf key is ${leaf.keyAlgorithm === OID_EC_PUBLIC_KEY ? `EC ${EC_CURVES[leaf.keyCurve ?? '']?.name ?? leaf.keyCurve ?? 'without a named curve'}` : `algorithm ${leaf.keyAlgorithm}`}, expected EC P-384 (secp384r1)`,
    );
  }
}

async function checkLinkSignature(issuer: WebCertificate, subject: WebCertificate): Promise<void> {
  const hash = ECDSA_SIGNATURE_ALGORITHMS[subject.signatureAlgorithm];
  if (!hash)
    throw new AttestationFailure(
      'chain',
      `${subject.label} is signed with algorithm ${subject.signatureAlgorithm}; only ECDSA with SHA-256/384/512 is verified here`,
    );
  if (subject.tbsSignatureAlgorithm !== subject.signatureAlgorithm)
    throw new AttestationFailure(
      'chain',
      `${subject.label}'s inner signature algorithm ${subject.tbsSignatureAlgorithm} differs from its outer ${subject.signatureAlgorithm}`,
    );
  const { key, size } = await importEcdsaKey(issuer, hash);
  const raw = ecdsaDerToRaw(subject.signature, size);
  const valid = raw !== undefined && (await subtle().verify({ name: 'ECDSA', hash }, key, raw, subject.tbs));
  if (!valid)
    throw new AttestationFailure(
      'chain',
      `the signature on ${subject.label} does not verify with ${issuer.label}'s key`,
    );
}

/** The COSE ES384 signature (raw r||s, 96 bytes) over `signed` with the leaf's P-384 key. */
export async function verifyEs384(leaf: WebCertificate, signature: Uint8Array, signed: Uint8Array): Promise<boolean> {
  const { key } = await importEcdsaKey(leaf, 'SHA-384');
  return subtle().verify({ name: 'ECDSA', hash: 'SHA-384' }, key, signature, signed);
}

export { subtle as webCrypto };
