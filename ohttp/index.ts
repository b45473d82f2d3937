// Oblivious HTTP (RFC 9458) with Binary HTTP (RFC 9292) inside: the end-to-end encryption of the
// secure route. Browser-safe: WebCrypto through @hpke/core, Uint8Array only, no node: imports.
export { OhttpError } from './errors.js';
export type { OhttpErrorReason } from './errors.js';
export {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  KEM_X25519_HKDF_SHA256,
  REQUEST_HEADER_BYTES,
  decodeKeyConfig,
  decodeKeyConfigList,
  encodeKeyConfig,
  encodeKeyConfigList,
  requestKeyId,
} from './key-config.js';
export type { KeyConfig, SymmetricSuite } from './key-config.js';
export { encapsulateRequest } from './request.js';
export type { EncapsulatedRequest } from './request.js';
export { OhttpKeyPair } from './key-pair.js';
export type { DecapsulatedRequest } from './key-pair.js';
export type { OpenedHpke, ServerCrypto } from './server-crypto.js';
export { decodeBinaryRequest, decodeBinaryResponse, encodeBinaryRequest, encodeBinaryResponse } from './binary-http.js';
export type { BinaryRequest, BinaryResponse } from './binary-http.js';
export { MEDIA_TYPE_OHTTP_KEYS, MEDIA_TYPE_OHTTP_REQUEST, MEDIA_TYPE_OHTTP_RESPONSE } from './media-types.js';
