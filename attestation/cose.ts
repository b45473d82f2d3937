// COSE_Sign1 (RFC 9052 section 4.2) as the Nitro Secure Module emits it:
//   COSE_Sign1 = [protected: bstr .cbor {1: -35}, unprotected: {}, payload: bstr, signature: bstr]
// tagged with 18 or not, and the exact bytes its signature covers (Sig_structure).
import { concatBytes } from './bytes.js';
import type { CborValue } from './cbor.js';
import { CborTag, cborHead, decodeCbor } from './cbor.js';
import { AttestationFailure } from './failure.js';

export const COSE_SIGN1_TAG = 18;
/** COSE algorithm identifier of ECDSA with SHA-384 on P-384. */
export const COSE_ALG_ES384 = -35;
/** An ES384 signature: r and s, 48 bytes each (IEEE P1363 form, not DER). */
export const ES384_SIGNATURE_BYTES = 96;
const COSE_HEADER_ALG = 1;

export interface CoseSign1 {
  tagged: boolean;
  /** The protected header exactly as it was signed (the contents of its bstr). */
  protectedHeader: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** Checks the structure of a decoded COSE_Sign1 (reason cose_structure). */
export function parseCoseSign1(decoded: CborValue): CoseSign1 {
  const tagged = decoded instanceof CborTag;
  if (tagged && decoded.tag !== COSE_SIGN1_TAG)
    throw new AttestationFailure(
      'cose_structure',
      `tag ${decoded.tag}, expected ${COSE_SIGN1_TAG} (COSE_Sign1) or none`,
    );
  const array = tagged ? decoded.value : decoded;
  if (!Array.isArray(array) || array.length !== 4)
    throw new AttestationFailure('cose_structure', 'not a COSE_Sign1: expected an array of 4 items');
  const [protectedHeader, unprotected, payload, signature] = array;
  if (!(protectedHeader instanceof Uint8Array))
    throw new AttestationFailure('cose_structure', 'protected header is not a byte string');
  if (!(unprotected instanceof Map)) throw new AttestationFailure('cose_structure', 'unprotected header is not a map');
  if (!(payload instanceof Uint8Array))
    throw new AttestationFailure('cose_structure', 'payload is not a byte string (detached payloads are not accepted)');
  if (!(signature instanceof Uint8Array))
    throw new AttestationFailure('cose_structure', 'signature is not a byte string');
  if (signature.length !== ES384_SIGNATURE_BYTES)
    throw new AttestationFailure(
      'cose_structure',
      `signature is ${signature.length} bytes, ES384 needs ${ES384_SIGNATURE_BYTES}`,
    );
  return { tagged, protectedHeader, payload, signature };
}

/** Checks that the protected header is exactly {1: -35} (reason algorithm). */
export function checkEs384(protectedHeader: Uint8Array): void {
  let header: CborValue;
  try {
    header = decodeCbor(protectedHeader, { maxDepth: 4 });
  } catch (cause) {
    throw new AttestationFailure('algorithm', `protected header is not valid CBOR: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (!(header instanceof Map)) throw new AttestationFailure('algorithm', 'protected header is not a map');
  const alg = header.get(COSE_HEADER_ALG);
  if (alg !== COSE_ALG_ES384)
    throw new AttestationFailure(
      'algorithm',
      `algorithm ${alg === undefined ? 'missing' : typeof alg === 'number' || typeof alg === 'string' ? JSON.stringify(alg) : 'of an unexpected type'}, expected ${COSE_ALG_ES384} (ES384)`,
    );
  if (header.size !== 1)
    throw new AttestationFailure(
      'algorithm',
      `protected header has ${header.size} entries, expected only the algorithm`,
    );
}

const SIGNATURE1_CONTEXT = Uint8Array.of(0x6a, ...new TextEncoder().encode('Signature1'));

/**
 * The bytes an ES384 COSE_Sign1 signature covers:
 *   Sig_structure = ["Signature1", body_protected: bstr, external_aad: bstr (empty), payload: bstr]
 * Built by hand because generic encoders get the empty external data or the byte strings wrong.
 */
export function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  return concatBytes([
    Uint8Array.of(0x84),
    SIGNATURE1_CONTEXT,
    cborHead(2, protectedHeader.length),
    protectedHeader,
    Uint8Array.of(0x40),
    cborHead(2, payload.length),
    payload,
  ]);
}
