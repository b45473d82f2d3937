// The certificate chain of an attestation document: cabundle[0] is the root and must equal a
// trusted root byte for byte; each later certificate is issued and signed by the one before it;
// cabundle's last certificate issues the leaf (the document's `certificate`), whose P-384 key
// signs the document. Every certificate must be valid at the verification time.
import { X509Certificate } from 'node:crypto';
import type { CertificateFacts } from './certificate.js';
import { checkValidity, readCertificateFacts } from './certificate.js';
import type { AttestationDocument } from './document.js';
import { attestationErrors } from './errors.js';
import { AttestationFailure } from './failure.js';

export interface ChainCertificate {
  /** Where it sits in the document, for messages: 'cabundle[1]' or 'certificate'. */
  label: string;
  der: Uint8Array;
  x509: X509Certificate;
  facts: CertificateFacts;
}

export interface TrustedRoot extends ChainCertificate {
  fingerprint256: string;
}

/**
 * Parses trusted roots given as PEM text (one or more certificates) or DER bytes.
 * Throws ATT_ROOT_INVALID.
 */
export function loadTrustedRoots(inputs: readonly (string | Uint8Array)[]): TrustedRoot[] {
  const ders: Uint8Array[] = [];
  for (const input of inputs) {
    const text =
      typeof input === 'string' ? input : input[0] === 0x30 ? undefined : Buffer.from(input).toString('latin1');
    if (text === undefined) {
      ders.push(input as Uint8Array);
      continue;
    }
    const blocks = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
    if (blocks.length === 0)
      throw attestationErrors.ATT_ROOT_INVALID(
        'a trusted root has no "-----BEGIN CERTIFICATE-----" block and is not DER',
      );
    for (const block of blocks) ders.push(Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64'));
  }
  if (ders.length === 0) throw attestationErrors.ATT_ROOT_INVALID('no trusted root given');
  return ders.map((der, index) => {
    try {
      const certificate = parseCertificate(der, `trusted root ${index}`);
      return { ...certificate, fingerprint256: certificate.x509.fingerprint256 };
    } catch (cause) {
      throw attestationErrors.ATT_ROOT_INVALID(
        `trusted root ${index} is not an X.509 certificate: ${(cause as Error).message}`,
        { cause },
      );
    }
  });
}

function parseCertificate(der: Uint8Array, label: string): ChainCertificate {
  return { label, der, x509: new X509Certificate(der), facts: readCertificateFacts(der) };
}

/** cabundle[0] must be one of the trusted roots, compared as whole DER (reason root). */
export function findRoot(document: AttestationDocument, roots: readonly TrustedRoot[]): TrustedRoot {
  const first = document.cabundle[0]!;
  const root = roots.find((candidate) => Buffer.compare(candidate.der, first) === 0);
  if (!root) throw new AttestationFailure('root', `cabundle[0] (${describeSubject(first)}) is not a trusted root`);
  return root;
}

function describeSubject(der: Uint8Array): string {
  try {
    return new X509Certificate(der).subject.replace(/\n/g, ', ');
  } catch {
    return 'not a certificate';
  }
}

/** The chain root first, leaf last; certificates that do not parse fail with reason chain. */
export function parseChain(
  document: AttestationDocument,
  root: TrustedRoot,
  cache?: VerifiedLinkCache,
): ChainCertificate[] {
  const chain: ChainCertificate[] = [{ ...root, label: 'cabundle[0]' }];
  const rest = [
    ...document.cabundle.slice(1).map((der, index) => ({ der, label: `cabundle[${index + 1}]` })),
    { der: document.certificate, label: 'certificate' },
  ];
  for (const { der, label } of rest) {
    try {
      chain.push(cache ? cache.certificate(der, label) : parseCertificate(der, label));
    } catch (cause) {
      throw new AttestationFailure('chain', `${label} is not a valid X.509 certificate: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
  return chain;
}

/**
 * Remembers parsed certificates (keyed by their whole DER) and issuer → subject links whose
 * signatures verified (keyed by both certificates' SHA-256 fingerprints), so a chain seen before
 * costs no X.509 parsing and no ECDSA verification; validity and constraints are still checked
 * every time. Bounded: emptied when full.
 */
export class VerifiedLinkCache {
  private readonly links = new Set<string>();
  private readonly certificates = new Map<string, ChainCertificate>();
  constructor(private readonly capacity = 1024) {}
  certificate(der: Uint8Array, label: string): ChainCertificate {
    const key = Buffer.from(der).toString('base64');
    let parsed = this.certificates.get(key);
    if (!parsed) {
      parsed = parseCertificate(der, label);
      if (this.certificates.size >= this.capacity) this.certificates.clear();
      this.certificates.set(key, parsed);
    }
    return parsed.label === label ? parsed : { ...parsed, label };
  }
  has(issuer: ChainCertificate, subject: ChainCertificate): boolean {
    return this.links.has(linkKey(issuer, subject));
  }
  add(issuer: ChainCertificate, subject: ChainCertificate): void {
    if (this.links.size >= this.capacity) this.links.clear();
    this.links.add(linkKey(issuer, subject));
  }
}

const linkKey = (issuer: ChainCertificate, subject: ChainCertificate) =>
  `${issuer.x509.fingerprint256}>${subject.x509.fingerprint256}`;

/** Issuer/subject links, signatures, CA constraints and the leaf key (reason chain). */
export function checkChainLinks(chain: readonly ChainCertificate[], cache?: VerifiedLinkCache): void {
  const leafIndex = chain.length - 1;
  for (let index = 1; index <= leafIndex; index++) {
    const issuer = chain[index - 1]!;
    const subject = chain[index]!;
    if (!issuer.facts.isCa || !issuer.x509.ca)
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
    if (cache?.has(issuer, subject)) continue;
    if (!subject.x509.checkIssued(issuer.x509))
      throw new AttestationFailure(
        'chain',
        `${subject.label} is not issued by ${issuer.label} (issuer name or key identifier differs): broken chain order?`,
      );
    if (!subject.x509.verify(issuer.x509.publicKey))
      throw new AttestationFailure(
        'chain',
        `the signature on ${subject.label} does not verify with ${issuer.label}'s key`,
      );
    cache?.add(issuer, subject);
  }
  const leaf = chain[leafIndex]!;
  if (leaf.facts.isCa) throw new AttestationFailure('chain', 'the leaf certificate is a CA certificate');
  const key = leaf.x509.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new AttestationFailure(
      'chain',
      `the leaf key is ${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}, expected EC P-384 (secp384r1)`.replace(
        ' ,',
        ',',
      ),
    );
  }
}

export { checkValidity };
