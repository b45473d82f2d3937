// An X.509 certificate read from DER with no node:crypto, for the WebCrypto verifier: the signed
// part (TBSCertificate) and its signature, the names the issuer check compares, the key as
// SubjectPublicKeyInfo (what crypto.subtle.importKey takes), the key identifiers, and the facts
// certificate.ts reads (validity, basicConstraints, keyUsage). Browser-safe.
import type { CertificateFacts } from './certificate.js';
import { readCertificateFacts } from './certificate.js';
import type { DerNode } from './der.js';
import { DER, DerError, derChildren, oidToString, readDer } from './der.js';

export interface WebCertificate {
  /** Where it sits in the document, for messages: 'cabundle[1]' or 'certificate'. */
  label: string;
  der: Uint8Array;
  facts: CertificateFacts;
  /** The TBSCertificate's whole encoding: what the issuer signed. */
  tbs: Uint8Array;
  /** The outer signatureAlgorithm OID and the one inside the TBSCertificate (RFC 5280 4.1.1.2: they must match). */
  signatureAlgorithm: string;
  tbsSignatureAlgorithm: string;
  /** The BIT STRING's contents (an ECDSA-Sig-Value in DER for ECDSA). */
  signature: Uint8Array;
  /** Issuer and subject Names, whole DER, compared byte for byte. */
  issuerName: Uint8Array;
  subjectName: Uint8Array;
  /** "C=US, O=Amazon, CN=..." for messages. */
  subject: string;
  /** SubjectPublicKeyInfo, whole DER. */
  spki: Uint8Array;
  /** The key's algorithm OID (1.2.840.10045.2.1 for EC) and, for EC, its named curve OID. */
  keyAlgorithm: string;
  keyCurve: string | undefined;
  subjectKeyId: Uint8Array | undefined;
  authorityKeyId: Uint8Array | undefined;
}

export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
/** Named curve OID => WebCrypto name and field size in bytes (the length of r and s). */
export const EC_CURVES: Readonly<Record<string, { name: 'P-256' | 'P-384' | 'P-521'; bytes: number }>> = {
  '1.2.840.10045.3.1.7': { name: 'P-256', bytes: 32 },
  '1.3.132.0.34': { name: 'P-384', bytes: 48 },
  '1.3.132.0.35': { name: 'P-521', bytes: 66 },
};
/** ecdsa-with-SHA* OID => WebCrypto hash name. */
export const ECDSA_SIGNATURE_ALGORITHMS: Readonly<Record<string, 'SHA-256' | 'SHA-384' | 'SHA-512'>> = {
  '1.2.840.10045.4.3.2': 'SHA-256',
  '1.2.840.10045.4.3.3': 'SHA-384',
  '1.2.840.10045.4.3.4': 'SHA-512',
};
const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const NAME_ATTRIBUTES: Readonly<Record<string, string>> = {
  '2.5.4.6': 'C',
  '2.5.4.8': 'ST',
  '2.5.4.7': 'L',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.3': 'CN',
};
const textDecoder = new TextDecoder();

/** Parses a DER certificate; throws DerError when it is not X.509 as RFC 5280 lays it out. */
export function readWebCertificate(der: Uint8Array, label: string): WebCertificate {
  const certificate = readDer(der);
  if (certificate.tag !== DER.SEQUENCE || certificate.raw.length !== der.length)
    throw new DerError('not a single DER SEQUENCE');
  const [tbs, outerAlgorithm, signatureBits, ...extra] = derChildren(certificate);
  if (
    tbs?.tag !== DER.SEQUENCE ||
    outerAlgorithm?.tag !== DER.SEQUENCE ||
    signatureBits?.tag !== DER.BIT_STRING ||
    extra.length > 0
  )
    throw new DerError('not a Certificate (TBSCertificate, signatureAlgorithm, signatureValue)');
  if (signatureBits.value[0] !== 0) throw new DerError('signatureValue has unused bits');
  const fields = derChildren(tbs);
  const start = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const [, innerAlgorithm, issuer, , subject, spki] = fields.slice(start);
  if (
    innerAlgorithm?.tag !== DER.SEQUENCE ||
    issuer?.tag !== DER.SEQUENCE ||
    subject?.tag !== DER.SEQUENCE ||
    spki?.tag !== DER.SEQUENCE
  )
    throw new DerError('incomplete TBSCertificate');
  const [keyAlgorithm] = derChildren(spki);
  if (keyAlgorithm?.tag !== DER.SEQUENCE) throw new DerError('no subjectPublicKeyInfo algorithm');
  const [keyOid, keyParameter] = derChildren(keyAlgorithm);
  if (keyOid?.tag !== DER.OID) throw new DerError('no subjectPublicKeyInfo algorithm OID');

  const parsed: WebCertificate = {
    label,
    der,
    facts: readCertificateFacts(der),
    tbs: tbs.raw,
    signatureAlgorithm: algorithmOid(outerAlgorithm),
    tbsSignatureAlgorithm: algorithmOid(innerAlgorithm),
    signature: signatureBits.value.subarray(1),
    issuerName: issuer.raw,
    subjectName: subject.raw,
    subject: describeName(subject),
    spki: spki.raw,
    keyAlgorithm: oidToString(keyOid.value),
    keyCurve: keyParameter?.tag === DER.OID ? oidToString(keyParameter.value) : undefined,
    subjectKeyId: undefined,
    authorityKeyId: undefined,
  };
  const extensions = fields.slice(start + 6).find((field) => field.tag === 0xa3);
  const [list] = extensions ? derChildren(extensions) : [];
  for (const extension of list ? derChildren(list) : []) {
    const parts = derChildren(extension);
    const oid = parts[0];
    const value = parts.at(-1);
    if (oid?.tag !== DER.OID || value?.tag !== DER.OCTET_STRING) throw new DerError('malformed extension');
    const name = oidToString(oid.value);
    if (name === OID_SUBJECT_KEY_ID) {
      const keyId = readDer(value.value);
      if (keyId.tag !== DER.OCTET_STRING) throw new DerError('subjectKeyIdentifier is not an OCTET STRING');
      parsed.subjectKeyId = keyId.value;
    } else if (name === OID_AUTHORITY_KEY_ID) {
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
      const keyId = derChildren(readDer(value.value)).find((item) => item.tag === 0x80);
      parsed.authorityKeyId = keyId?.value;
    }
  }
  return parsed;
}

function algorithmOid(algorithm: DerNode): string {
  const [oid] = derChildren(algorithm);
  if (oid?.tag !== DER.OID) throw new DerError('AlgorithmIdentifier without an OID');
  return oidToString(oid.value);
}

function describeName(name: DerNode): string {
  const parts: string[] = [];
  for (const set of derChildren(name)) {
    for (const attribute of derChildren(set)) {
      const [oid, value] = derChildren(attribute);
      if (oid?.tag !== DER.OID || !value) continue;
      const key = oidToString(oid.value);
      parts.push(`${NAME_ATTRIBUTES[key] ?? key}=${textDecoder.decode(value.value)}`);
    }
  }
  return parts.join(', ');
}

/**
 * An ECDSA-Sig-Value (DER SEQUENCE of INTEGER r, s) as WebCrypto wants it: r and s big-endian,
 * each exactly the curve's size. Undefined when it is not a well-formed value for that size.
 */
export function ecdsaDerToRaw(signature: Uint8Array, size: number): Uint8Array | undefined {
  try {
    const sequence = readDer(signature);
    if (sequence.tag !== DER.SEQUENCE || sequence.raw.length !== signature.length) return undefined;
    const integers = derChildren(sequence);
    if (integers.length !== 2) return undefined;
    const raw = new Uint8Array(size * 2);
    for (const [index, integer] of integers.entries()) {
      if (integer.tag !== DER.INTEGER || integer.value.length === 0 || (integer.value[0]! & 0x80) !== 0)
        return undefined;
      let value = integer.value;
      while (value.length > 1 && value[0] === 0) value = value.subarray(1);
      if (value.length > size) return undefined;
      raw.set(value, index * size + size - value.length);
    }
    return raw;
  } catch {
    return undefined;
  }
}
