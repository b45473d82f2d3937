// The enclave's OHTTP cryptography on node:crypto: HPKE base mode (RFC 9180) for DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256 and AES-GCM, for the recipient only. @hpke/core does the same over
// WebCrypto, where each of the ~25 primitive calls of a request is an asynchronous round trip
// through the thread pool; these are synchronous calls of a few microseconds (bench/ohttp prints
// both). The RFC 9458 test vector and the @hpke/core clients of the tests check it.
import type { KeyObject } from 'node:crypto';
import { createCipheriv, createDecipheriv, createHmac, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto';
import type { OpenedHpke, ServerCrypto } from '../ohttp/index.js';
import { AEAD_AES_128_GCM, AEAD_AES_256_GCM, KDF_HKDF_SHA256, KEM_X25519_HKDF_SHA256 } from '../ohttp/index.js';

const HASH_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HPKE_V1 = Buffer.from('HPKE-v1');
const MODE_BASE = 0x00;

const u16 = (value: number) => Buffer.from([value >> 8, value & 0xff]);
const KEM_SUITE_ID = Buffer.concat([Buffer.from('KEM'), u16(KEM_X25519_HKDF_SHA256)]);
const hpkeSuiteId = (aeadId: number) =>
  Buffer.concat([Buffer.from('HPKE'), u16(KEM_X25519_HKDF_SHA256), u16(KDF_HKDF_SHA256), u16(aeadId)]);

function extract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt.length === 0 ? Buffer.alloc(HASH_BYTES) : salt)
    .update(ikm)
    .digest();
}

/** HKDF-Expand for at most one hash block, all HPKE and OHTTP ask for here. */
function expand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (length > HASH_BYTES) throw new RangeError(`expand: at most ${HASH_BYTES} bytes, asked for ${length}`);
  return createHmac('sha256', prk)
    .update(info)
    .update(Buffer.from([1]))
    .digest()
    .subarray(0, length);
}

const labeledExtract = (suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array) =>
  extract(salt, Buffer.concat([HPKE_V1, suiteId, Buffer.from(label), ikm]));
const labeledExpand = (suiteId: Buffer, prk: Uint8Array, label: string, info: Uint8Array, length: number) =>
  expand(prk, Buffer.concat([u16(length), HPKE_V1, suiteId, Buffer.from(label), info]), length);

function aesGcm(key: Uint8Array): 'aes-128-gcm' | 'aes-256-gcm' {
  if (key.length === 16) return 'aes-128-gcm';
  if (key.length === 32) return 'aes-256-gcm';
  throw new RangeError(`an AES-GCM key is 16 or 32 bytes, got ${key.length}`);
}

const AEAD_KEY_BYTES: Readonly<Record<number, number>> = { [AEAD_AES_128_GCM]: 16, [AEAD_AES_256_GCM]: 32 };

/** The recipient side of HPKE and OHTTP's response sealing, with this X25519 private key. */
export function nodeServerCrypto(privateKey: KeyObject, rawPublicKey: Uint8Array): ServerCrypto {
  return {
    open(aeadId, enc, info, ciphertext) {
      try {
        return Promise.resolve(open(aeadId, enc, info, ciphertext));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
    hkdf(salt, ikm, info, length) {
      return Promise.resolve(new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)));
    },
    seal(key, nonce, plaintext) {
      const cipher = createCipheriv(aesGcm(key), key, nonce);
      return Promise.resolve(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
    },
  };

  function open(aeadId: number, enc: Uint8Array, info: Uint8Array, ciphertext: Uint8Array): OpenedHpke {
    const keyBytes = AEAD_KEY_BYTES[aeadId];
    if (keyBytes === undefined) throw new Error(`AEAD 0x${aeadId.toString(16)} is not supported`);
    if (ciphertext.length < TAG_BYTES) throw new Error('the ciphertext is shorter than a tag');
    // DHKEM Decap (RFC 9180 §4.1).
    // A JWK, not SPKI DER: OpenSSL 3's DER decoders cost ~10x more than this raw key import.
    const ephemeral = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(enc).toString('base64url') },
      format: 'jwk',
    });
    const dh = diffieHellman({ privateKey, publicKey: ephemeral });
    // A low-order point gives the all-zero secret (RFC 9180 §7.1.4); OpenSSL refuses it too.
    if (dh.every((byte) => byte === 0)) throw new Error('the encapsulated key is a low-order point');
    const eaePrk = labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'eae_prk', dh);
    const sharedSecret = labeledExpand(
      KEM_SUITE_ID,
      eaePrk,
      'shared_secret',
      Buffer.concat([enc, rawPublicKey]),
      HASH_BYTES,
    );
    // KeySchedule, base mode, no PSK (§5.1).
    const suiteId = hpkeSuiteId(aeadId);
    const pskIdHash = labeledExtract(suiteId, new Uint8Array(0), 'psk_id_hash', new Uint8Array(0));
    const infoHash = labeledExtract(suiteId, new Uint8Array(0), 'info_hash', info);
    const context = Buffer.concat([Buffer.from([MODE_BASE]), pskIdHash, infoHash]);
    const secret = labeledExtract(suiteId, sharedSecret, 'secret', new Uint8Array(0));
    const key = labeledExpand(suiteId, secret, 'key', context, keyBytes);
    const baseNonce = labeledExpand(suiteId, secret, 'base_nonce', context, NONCE_BYTES);
    const exporterSecret = labeledExpand(suiteId, secret, 'exp', context, HASH_BYTES);
    // Open at sequence 0: the nonce is the base nonce itself.
    const decipher = createDecipheriv(aesGcm(key), key, baseNonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
    const plaintext = Buffer.concat([
      decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_BYTES)),
      decipher.final(),
    ]);
    return {
      plaintext: new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength),
      exportSecret: (exporterContext, length) =>
        Promise.resolve(labeledExpand(suiteId, exporterSecret, 'sec', exporterContext, length)),
    };
  }
}
