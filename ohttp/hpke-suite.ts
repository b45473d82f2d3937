// The HPKE suites (RFC 9180) this code speaks, built on @hpke/core (WebCrypto, so the same code
// runs in Node and in browsers). Suites are immutable, so one instance per combination serves all.
import { Aes128Gcm, Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { OhttpError } from './errors.js';
import { AEAD_AES_128_GCM, AEAD_AES_256_GCM, KDF_HKDF_SHA256, KEM_X25519_HKDF_SHA256 } from './key-config.js';

export interface HpkeSuite {
  readonly suite: CipherSuite;
  /** The AEAD's key length (Nk) and nonce length (Nn), for the response keys (RFC 9458 §4.4). */
  readonly keyBytes: number;
  readonly nonceBytes: number;
}

const AEAD_NONCE_BYTES = 12;
/** The AEAD tag length (Nt): the shortest ciphertext of anything sealed. */
export const AEAD_TAG_BYTES = 16;
/** The X25519 KEM's encapsulated key length (Nenc). */
export const ENC_BYTES = 32;

const suites = new Map<string, HpkeSuite>();

/** The suite for these ids; OhttpError('unsupported-suite') for any we do not implement. */
export function hpkeSuite(kemId: number, kdfId: number, aeadId: number): HpkeSuite {
  const name = `${kemId}/${kdfId}/${aeadId}`;
  const known = suites.get(name);
  if (known) return known;
  if (
    kemId !== KEM_X25519_HKDF_SHA256 ||
    kdfId !== KDF_HKDF_SHA256 ||
    (aeadId !== AEAD_AES_128_GCM && aeadId !== AEAD_AES_256_GCM)
  ) {
    throw new OhttpError(
      'unsupported-suite',
      `HPKE suite KEM 0x${kemId.toString(16)}, KDF 0x${kdfId.toString(16)}, AEAD 0x${aeadId.toString(16)} is not supported (X25519, HKDF-SHA256, AES-128-GCM or AES-256-GCM are)`,
    );
  }
  const aes128 = aeadId === AEAD_AES_128_GCM;
  const made: HpkeSuite = {
    suite: new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: aes128 ? new Aes128Gcm() : new Aes256Gcm(),
    }),
    keyBytes: aes128 ? 16 : 32,
    nonceBytes: AEAD_NONCE_BYTES,
  };
  suites.set(name, made);
  return made;
}
