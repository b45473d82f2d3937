// The NSM attestation document's payload, field by field as AWS specifies it
// (aws-nitro-enclaves-nsm-api, docs/attestation_process.md):
//   module_id: tstr (non-empty), digest: "SHA384", timestamp: uint (ms since the epoch),
//   pcrs: {index 0..31 => bstr of 32, 48 or 64 bytes} (1 to 32 entries),
//   certificate: bstr (DER), cabundle: [+ bstr] (root first),
//   public_key: bstr of 1 to 1024 bytes; user_data, nonce: bstr of at most 512 bytes; each may be null (or absent).
// Genuine documents write absent optional fields as null and may use an indefinite-length map;
// a decoder may give the timestamp as a bigint. Anything else is refused (payload_field).
import type { CborKey, CborValue } from './cbor.js';
import { AttestationFailure } from './failure.js';

export interface AttestationDocument {
  moduleId: string;
  digest: 'SHA384';
  /** Milliseconds since the Unix epoch, as the NSM wrote it. */
  timestamp: number;
  /** PCR index => measurement. */
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** The leaf certificate (DER) whose key signed the document. */
  certificate: Uint8Array;
  /** The chain from the root (first) to the leaf's issuer (last), DER. */
  cabundle: readonly Uint8Array[];
  publicKey: Uint8Array | null;
  userData: Uint8Array | null;
  nonce: Uint8Array | null;
}

export const MAX_PCR_INDEX = 31;
const MAX_DATE_MS = 8.64e15;
export const PCR_LENGTHS: readonly number[] = [32, 48, 64];
/** AWS: public_key is bstr .size (1..1024); user_data and nonce are bstr .size (0..512). */
export const OPTIONAL_FIELD_BYTES: Readonly<Record<'public_key' | 'user_data' | 'nonce', readonly [number, number]>> = {
  public_key: [1, 1024],
  user_data: [0, 512],
  nonce: [0, 512],
};
/** The largest of them. */
export const MAX_OPTIONAL_FIELD_BYTES = 1024;
// AWS: certificate and each cabundle entry are bstr .size (1..1024).
export const MAX_CERTIFICATE_BYTES = 1024;
export const MAX_CABUNDLE_CERTIFICATES = 16;

const KNOWN_FIELDS = new Set([
  'module_id',
  'digest',
  'timestamp',
  'pcrs',
  'certificate',
  'cabundle',
  'public_key',
  'user_data',
  'nonce',
]);

function fail(message: string): never {
  throw new AttestationFailure('payload_field', message);
}

function describe(value: CborValue | undefined): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `a byte string of ${value.length} bytes`;
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Map) return 'a map';
  if (typeof value === 'object') return `tag ${value.tag}`;
  return `a ${typeof value === 'bigint' ? 'number' : typeof value}`;
}

function bytes(map: ReadonlyMap<CborKey, CborValue>, field: string, min: number, max: number): Uint8Array {
  const value = map.get(field);
  if (!(value instanceof Uint8Array)) fail(`${field} is ${describe(value)}, expected a byte string`);
  if (value.length < min || value.length > max) fail(`${field} is ${value.length} bytes, expected ${min} to ${max}`);
  return value;
}

function optionalBytes(
  map: ReadonlyMap<CborKey, CborValue>,
  field: keyof typeof OPTIONAL_FIELD_BYTES,
): Uint8Array | null {
  const value = map.get(field);
  if (value === undefined || value === null) return null;
  const [min, max] = OPTIONAL_FIELD_BYTES[field];
  return bytes(map, field, min, max);
}

/** Checks and types the decoded payload; throws AttestationFailure('payload_field'). */
export function parseAttestationPayload(payload: CborValue): AttestationDocument {
  if (!(payload instanceof Map)) fail(`payload is ${describe(payload)}, expected a map`);
  for (const key of payload.keys())
    if (typeof key !== 'string' || !KNOWN_FIELDS.has(key)) fail(`unknown field ${JSON.stringify(key)}`);

  const moduleId = payload.get('module_id');
  if (typeof moduleId !== 'string' || moduleId === '')
    fail(`module_id is ${moduleId === '' ? 'empty' : describe(moduleId)}, expected non-empty text`);
  const digest = payload.get('digest');
  if (digest !== 'SHA384')
    fail(
      typeof digest === 'string'
        ? `digest is "${digest}", expected "SHA384"`
        : `digest is ${describe(digest)}, expected "SHA384"`,
    );

  let timestamp = payload.get('timestamp');
  if (typeof timestamp === 'bigint' && timestamp <= BigInt(Number.MAX_SAFE_INTEGER)) timestamp = Number(timestamp);
  // Beyond 8.64e15 ms a JavaScript Date cannot hold it (year 275760).
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp <= 0 || timestamp > MAX_DATE_MS) {
    fail(
      `timestamp is ${typeof timestamp === 'number' || typeof timestamp === 'bigint' ? String(timestamp) : describe(timestamp)}, expected a positive integer (ms) up to ${MAX_DATE_MS}`,
    );
  }

  const pcrMap = payload.get('pcrs');
  if (!(pcrMap instanceof Map)) fail(`pcrs is ${describe(pcrMap)}, expected a map`);
  if (pcrMap.size < 1 || pcrMap.size > MAX_PCR_INDEX + 1)
    fail(`pcrs has ${pcrMap.size} entries, expected 1 to ${MAX_PCR_INDEX + 1}`);
  const pcrs = new Map<number, Uint8Array>();
  for (const [index, value] of pcrMap) {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > MAX_PCR_INDEX)
      fail(`pcrs key ${JSON.stringify(index)} is not an index 0 to ${MAX_PCR_INDEX}`);
    if (!(value instanceof Uint8Array) || !PCR_LENGTHS.includes(value.length))
      fail(`pcrs[${index}] is ${describe(value)}, expected ${PCR_LENGTHS.join(', ')} bytes`);
    pcrs.set(index, value);
  }

  const certificate = bytes(payload, 'certificate', 1, MAX_CERTIFICATE_BYTES);
  const bundle = payload.get('cabundle');
  if (!Array.isArray(bundle)) fail(`cabundle is ${describe(bundle)}, expected an array`);
  if (bundle.length < 1 || bundle.length > MAX_CABUNDLE_CERTIFICATES)
    fail(`cabundle has ${bundle.length} certificates, expected 1 to ${MAX_CABUNDLE_CERTIFICATES}`);
  const cabundle = bundle.map((item, index) => {
    if (!(item instanceof Uint8Array) || item.length < 1 || item.length > MAX_CERTIFICATE_BYTES)
      fail(`cabundle[${index}] is ${describe(item)}, expected a DER certificate`);
    return item;
  });

  return {
    moduleId,
    digest,
    timestamp,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBytes(payload, 'public_key'),
    userData: optionalBytes(payload, 'user_data'),
    nonce: optionalBytes(payload, 'nonce'),
  };
}
