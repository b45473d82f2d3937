// EMULATED Nitro Secure Module. There is NO hardware root of trust here: a throwaway P-384 root CA,
// an intermediate and a leaf are created in this process at start, and anyone who can run this
// code can sign any document. It exists so the local emulation and the tests exercise the real
// verifier on documents with exactly the AWS structure: COSE_Sign1 tagged 18, protected header
// {1: -35} (ES384), payload {module_id, digest: "SHA384", timestamp, pcrs: {0..15}, certificate,
// cabundle: [root, intermediate], public_key, user_data, nonce} with absent fields as null.
// A verifier trusts its root only when told to, explicitly and insecurely.
import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { CborValue } from './cbor.js';
import { CborTag, encodeCbor } from './cbor.js';
import { COSE_ALG_ES384, COSE_SIGN1_TAG, sigStructure } from './cose.js';
import { OPTIONAL_FIELD_BYTES } from './document.js';
import { emulatedMeasurements } from './emulated-measurements.js';
import { attestationErrors } from './errors.js';
import type { PcrMeasurements } from './measurements.js';
import type { CertificateName } from './x509-writer.js';
import { derToPem, issueCertificate } from './x509-writer.js';

export const EMULATED_NSM_WARNING =
  'EMULATED NSM: attestation documents signed by a throwaway local root, no hardware root of trust; trust it only for local development';
const ORGANIZATION = 'mixed-privacy-gateway EMULATED NSM (no hardware root of trust)';
const DAY_MS = 24 * 60 * 60_000;
const EMULATED_PCR_COUNT = 16;

export interface EmulatedNsmOptions {
  /** PCR0/1/2 the documents carry; default: emulatedMeasurements() of no contents. */
  measurements?: PcrMeasurements;
  /** All-zero PCR0/1/2, as an enclave started with --debug-mode reports. */
  debugMode?: boolean;
  /** The clock for timestamps and certificate validity. Default: Date. */
  now?: () => Date;
  /** The leaf certificate's validity; default one day either side of now. */
  leafNotBefore?: Date;
  leafNotAfter?: Date;
  /** Default `emulated-nsm-<random hex>`. */
  moduleId?: string;
}

export interface AttestationRequest {
  publicKey?: Uint8Array | null;
  userData?: Uint8Array | null;
  nonce?: Uint8Array | null;
}

/** Ways to make a bad document on purpose (tests). */
export interface DocumentOverrides {
  /** Payload fields to replace; a field set to undefined is removed. Keys keep the AWS order. */
  payload?: Readonly<Record<string, CborValue | undefined>>;
  /** Raw protected header bytes instead of {1: -35}. */
  protectedHeader?: Uint8Array;
  /** Tag 18 around the array (default true, as the NSM does). */
  tagged?: boolean;
  /** Encode the payload map with indefinite length, as some genuine documents are. */
  indefiniteLengthPayload?: boolean;
  /** These payload bytes instead of the encoded map (e.g. malformed CBOR, still signed). */
  rawPayload?: Uint8Array;
  /** Sign with this key instead of the leaf's. */
  signingKey?: KeyObject;
}

export interface EmulatedNsm {
  readonly moduleId: string;
  readonly measurements: PcrMeasurements;
  /** The throwaway root (DER and PEM): what a verifier must be told to trust. */
  readonly rootCertificate: Uint8Array;
  readonly rootCertificatePem: string;
  readonly intermediateCertificate: Uint8Array;
  readonly leafCertificate: Uint8Array;
  /** A signed attestation document: tagged COSE_Sign1, raw CBOR bytes. */
  attest(request?: AttestationRequest, overrides?: DocumentOverrides): Uint8Array;
}

const keyPair = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' });

export function createEmulatedNsm(options: EmulatedNsmOptions = {}): EmulatedNsm {
  const now = options.now ?? (() => new Date());
  const start = now();
  const moduleId = options.moduleId ?? `emulated-nsm-${randomBytes(8).toString('hex')}`;
  const measurements = options.measurements ?? emulatedMeasurements();
  const root = keyPair();
  const intermediate = keyPair();
  const leaf = keyPair();
  const name = (commonName: string): CertificateName => ({ organization: ORGANIZATION, commonName });
  const rootName = name('emulated-nsm-root');
  const intermediateName = name('emulated-nsm-intermediate');
  const serial = () => Uint8Array.of(0x01, ...randomBytes(15));
  const caValidity = {
    notBefore: new Date(start.getTime() - 30 * DAY_MS),
    notAfter: new Date(start.getTime() + 365 * DAY_MS),
  };

  const rootCertificate = issueCertificate({
    serial: serial(),
    subject: rootName,
    issuer: rootName,
    subjectKey: root.publicKey,
    signingKey: root.privateKey,
    ...caValidity,
    ca: true,
    pathLength: 1,
  });
  const intermediateCertificate = issueCertificate({
    serial: serial(),
    subject: intermediateName,
    issuer: rootName,
    subjectKey: intermediate.publicKey,
    signingKey: root.privateKey,
    ...caValidity,
    ca: true,
    pathLength: 0,
  });
  const leafCertificate = issueCertificate({
    serial: serial(),
    subject: name(moduleId),
    issuer: intermediateName,
    subjectKey: leaf.publicKey,
    signingKey: intermediate.privateKey,
    notBefore: options.leafNotBefore ?? new Date(start.getTime() - DAY_MS),
    notAfter: options.leafNotAfter ?? new Date(start.getTime() + DAY_MS),
    ca: false,
  });

  const pcrs = new Map<number, CborValue>();
  for (let index = 0; index < EMULATED_PCR_COUNT; index++) {
    const measured = index <= 2 && !options.debugMode ? measurements.pcrs[index as 0 | 1 | 2] : undefined;
    pcrs.set(index, measured === undefined ? new Uint8Array(48) : Buffer.from(measured, 'hex'));
  }

  return {
    moduleId,
    measurements,
    rootCertificate,
    rootCertificatePem: derToPem(rootCertificate),
    intermediateCertificate,
    leafCertificate,
    attest(request = {}, overrides = {}) {
      for (const [field, name] of [
        ['publicKey', 'public_key'],
        ['userData', 'user_data'],
        ['nonce', 'nonce'],
      ] as const) {
        const value = request[field];
        const [, max] = OPTIONAL_FIELD_BYTES[name];
        if (value != null && value.length > max)
          throw attestationErrors.ATT_NSM_REQUEST_INVALID(`${field} is ${value.length} bytes, at most ${max}`);
      }
      const fields: [string, CborValue][] = [
        ['module_id', moduleId],
        ['digest', 'SHA384'],
        ['timestamp', now().getTime()],
        ['pcrs', pcrs],
        ['certificate', leafCertificate],
        ['cabundle', [rootCertificate, intermediateCertificate]],
        ['public_key', request.publicKey ?? null],
        ['user_data', request.userData ?? null],
        ['nonce', request.nonce ?? null],
      ];
      const payloadMap = new Map<string, CborValue>(fields);
      for (const [key, value] of Object.entries(overrides.payload ?? {})) {
        if (value === undefined) payloadMap.delete(key);
        else payloadMap.set(key, value);
      }
      let payload = encodeCbor(payloadMap);
      if (overrides.rawPayload) payload = overrides.rawPayload;
      else if (overrides.indefiniteLengthPayload)
        payload = Buffer.concat([Uint8Array.of(0xbf), encodeMapEntries(payloadMap), Uint8Array.of(0xff)]);
      const protectedHeader = overrides.protectedHeader ?? encodeCbor(new Map([[1, COSE_ALG_ES384]]));
      const signature = sign('sha384', sigStructure(protectedHeader, payload), {
        key: overrides.signingKey ?? leaf.privateKey,
        dsaEncoding: 'ieee-p1363',
      });
      const array: CborValue = [protectedHeader, new Map(), payload, signature];
      return encodeCbor(overrides.tagged === false ? array : new CborTag(COSE_SIGN1_TAG, array));
    },
  };
}

/** A map's entries without its head: for an indefinite-length encoding. */
function encodeMapEntries(map: Map<string, CborValue>): Uint8Array {
  return Buffer.concat([...map].map(([key, value]) => Buffer.concat([encodeCbor(key), encodeCbor(value)])));
}
