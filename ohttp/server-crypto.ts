// The cryptography a server needs to answer OHTTP requests, behind one small interface, so that a
// server with faster primitives at hand (the enclave: node:crypto, synchronous, no WebCrypto
// round trips) can bring its own while the OHTTP framing stays in one place. The default is
// @hpke/core over WebCrypto, which runs anywhere.
import type { EncryptionContext } from '@hpke/core';
import { hpkeSuite } from './hpke-suite.js';
import { KDF_HKDF_SHA256, KEM_X25519_HKDF_SHA256 } from './key-config.js';
import type { HpkeKeyPair } from './request.js';

/** An opened HPKE request context (RFC 9180 base mode, after Open at sequence 0). */
export interface OpenedHpke {
  plaintext: Uint8Array;
  /** Export(exporter_context, L) (RFC 9180 §5.3). */
  exportSecret(exporterContext: Uint8Array, length: number): Promise<Uint8Array>;
}

export interface ServerCrypto {
  /**
   * HPKE base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and this AEAD: SetupBaseR(enc,
   * skR, info), then Open with an empty aad at sequence 0. Rejects (any error) when it does not open.
   */
  open(aeadId: number, enc: Uint8Array, info: Uint8Array, ciphertext: Uint8Array): Promise<OpenedHpke>;
  /** HKDF-SHA256: Expand(Extract(salt, ikm), info, length). */
  hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
  /** AES-GCM (128 or 256 bits, by the key's length) with an empty aad: ciphertext then tag. */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
}

const kemOnly = () => hpkeSuite(KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, 0x0001);

/** @hpke/core over WebCrypto, with this key pair. */
export function webServerCrypto(keyPair: HpkeKeyPair): ServerCrypto {
  return {
    async open(aeadId, enc, info, ciphertext) {
      const context: EncryptionContext = await hpkeSuite(
        KEM_X25519_HKDF_SHA256,
        KDF_HKDF_SHA256,
        aeadId,
      ).suite.createRecipientContext({ recipientKey: keyPair, enc, info });
      const plaintext = new Uint8Array(await context.open(ciphertext));
      return {
        plaintext,
        exportSecret: async (exporterContext, length) => new Uint8Array(await context.export(exporterContext, length)),
      };
    },
    async hkdf(salt, ikm, info, length) {
      return new Uint8Array(await kemOnly().suite.kdf.extractAndExpand(salt, ikm, info, length));
    },
    async seal(key, nonce, plaintext) {
      const aeadId = key.length === 32 ? 0x0002 : 0x0001;
      const aead = hpkeSuite(KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, aeadId).suite.aead.createEncryptionContext(key);
      return new Uint8Array(await aead.seal(nonce, plaintext, new Uint8Array(0)));
    },
  };
}
