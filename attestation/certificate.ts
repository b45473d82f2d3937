// What the chain check needs from a certificate that X509Certificate does not give on Node 20:
// the validity window as dates, basicConstraints (cA, pathLenConstraint) and keyCertSign.
// Browser-safe: the WebCrypto verifier reads the same facts.
import { DER, DerError, derChildren, derTimeToDate, oidToString, readDer } from './der.js';
import { AttestationFailure } from './failure.js';

export interface CertificateFacts {
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints cA; false when the extension is absent. */
  isCa: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  pathLength: number | undefined;
  /** keyUsage keyCertSign; undefined when keyUsage is absent. */
  keyCertSign: boolean | undefined;
}

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';

/** Reads the facts from a DER certificate; throws DerError when its shape is not X.509. */
export function readCertificateFacts(der: Uint8Array): CertificateFacts {
  const certificate = readDer(der);
  if (certificate.tag !== DER.SEQUENCE || certificate.raw.length !== der.length)
    throw new DerError('not a single DER SEQUENCE');
  const [tbs] = derChildren(certificate);
  if (tbs?.tag !== DER.SEQUENCE) throw new DerError('no TBSCertificate');
  const fields = derChildren(tbs);
  const start = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const validity = fields[start + 3];
  if (validity?.tag !== DER.SEQUENCE) throw new DerError('no validity');
  const [notBefore, notAfter] = derChildren(validity);
  if (!notBefore || !notAfter) throw new DerError('incomplete validity');

  const facts: CertificateFacts = {
    notBefore: derTimeToDate(notBefore),
    notAfter: derTimeToDate(notAfter),
    isCa: false,
    pathLength: undefined,
    keyCertSign: undefined,
  };
  const extensions = fields.slice(start + 6).find((field) => field.tag === 0xa3);
  if (!extensions) return facts;
  const [list] = derChildren(extensions);
  if (list?.tag !== DER.SEQUENCE) throw new DerError('extensions are not a SEQUENCE');
  for (const extension of derChildren(list)) {
    const parts = derChildren(extension);
    const oid = parts[0];
    const value = parts.at(-1);
    if (oid?.tag !== DER.OID || value?.tag !== DER.OCTET_STRING) throw new DerError('malformed extension');
    const name = oidToString(oid.value);
    if (name === OID_BASIC_CONSTRAINTS) {
      const constraints = derChildren(readDer(value.value));
      for (const item of constraints) {
        if (item.tag === DER.BOOLEAN) facts.isCa = item.value[0] !== 0;
        else if (item.tag === DER.INTEGER) facts.pathLength = item.value.reduce((total, byte) => total * 256 + byte, 0);
      }
    } else if (name === OID_KEY_USAGE) {
      const bits = readDer(value.value);
      if (bits.tag !== DER.BIT_STRING) throw new DerError('keyUsage is not a BIT STRING');
      facts.keyCertSign = ((bits.value[1] ?? 0) & 0x04) !== 0;
    }
  }
  return facts;
}

/** Every certificate valid at `at` (reason validity). */
export function checkValidity(chain: readonly { label: string; facts: CertificateFacts }[], at: Date): void {
  const time = at.getTime();
  for (const certificate of chain) {
    if (time < certificate.facts.notBefore.getTime())
      throw new AttestationFailure(
        'validity',
        `${certificate.label} is not valid before ${certificate.facts.notBefore.toISOString()} (verification time ${at.toISOString()})`,
      );
    if (time > certificate.facts.notAfter.getTime())
      throw new AttestationFailure(
        'validity',
        `${certificate.label} expired at ${certificate.facts.notAfter.toISOString()} (verification time ${at.toISOString()})`,
      );
  }
}
