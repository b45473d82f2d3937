// Writes the small X.509 v3 certificates of the emulated NSM: ECDSA with SHA-384, a name of one
// organisation and one common name, basicConstraints and keyUsage. Only for the emulation and
// tests; nothing here is a general certificate authority.
import type { KeyObject } from 'node:crypto';
import { sign } from 'node:crypto';
import {
  DER,
  derBitString,
  derBoolean,
  derEncode,
  derExplicit,
  derOctetString,
  derOid,
  derSequence,
  derSmallInteger,
  derTime,
  derUnsignedInteger,
  derUtf8,
} from './der.js';

const OID_ECDSA_WITH_SHA384 = '1.2.840.10045.4.3.3';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';

export interface CertificateName {
  organization: string;
  commonName: string;
}

export interface CertificateRequest {
  /** Big-endian serial number bytes (positive). */
  serial: Uint8Array;
  subject: CertificateName;
  issuer: CertificateName;
  subjectKey: KeyObject;
  /** The issuer's private key; the subject's own for a self-signed root. */
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** A CA certificate (keyCertSign) or a leaf (digitalSignature). */
  ca: boolean;
  /** basicConstraints pathLenConstraint of a CA. */
  pathLength?: number;
}

function encodeName(name: CertificateName): Uint8Array {
  const attribute = (oid: string, value: string) => derEncode(DER.SET, derSequence(derOid(oid), derUtf8(value)));
  return derSequence(attribute(OID_ORGANIZATION, name.organization), attribute(OID_COMMON_NAME, name.commonName));
}

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return derSequence(derOid(oid), ...(critical ? [derBoolean(true)] : []), derOctetString(value));
}

/** A DER certificate signed with ECDSA-SHA384 by `signingKey`. */
export function issueCertificate(request: CertificateRequest): Uint8Array {
  const algorithm = derSequence(derOid(OID_ECDSA_WITH_SHA384));
  const basicConstraints = request.ca
    ? derSequence(derBoolean(true), ...(request.pathLength === undefined ? [] : [derSmallInteger(request.pathLength)]))
    : derSequence();
  // keyUsage bits: digitalSignature (0) for a leaf; keyCertSign (5) and cRLSign (6) for a CA.
  const keyUsage = request.ca
    ? derEncode(DER.BIT_STRING, Uint8Array.of(1, 0x06))
    : derEncode(DER.BIT_STRING, Uint8Array.of(7, 0x80));
  const tbs = derSequence(
    derExplicit(0, derSmallInteger(2)),
    derUnsignedInteger(request.serial),
    algorithm,
    encodeName(request.issuer),
    derSequence(derTime(request.notBefore), derTime(request.notAfter)),
    encodeName(request.subject),
    request.subjectKey.export({ type: 'spki', format: 'der' }),
    derExplicit(
      3,
      derSequence(extension(OID_BASIC_CONSTRAINTS, true, basicConstraints), extension(OID_KEY_USAGE, true, keyUsage)),
    ),
  );
  const signature = sign('sha384', tbs, request.signingKey);
  return derSequence(tbs, algorithm, derBitString(signature));
}

export function derToPem(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${base64.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}
