// Key configurations (RFC 9458 §3): how a gateway (here: an enclave) publishes the HPKE key and
// the symmetric suites it accepts, and the application/ohttp-keys list that carries them (§3.2).
import { ByteReader, ByteWriter } from './bytes.js';
import { OhttpError } from './errors.js';

export const KEM_X25519_HKDF_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_AES_256_GCM = 0x0002;

/** The raw public key's length per KEM; only the KEMs we can use are known. */
export const PUBLIC_KEY_BYTES: ReadonlyMap<number, number> = new Map([[KEM_X25519_HKDF_SHA256, 32]]);

export interface SymmetricSuite {
  kdfId: number;
  aeadId: number;
}

export interface KeyConfig {
  keyId: number;
  kemId: number;
  publicKey: Uint8Array;
  suites: SymmetricSuite[];
}

function checkConfig(config: KeyConfig): void {
  if (!Number.isInteger(config.keyId) || config.keyId < 0 || config.keyId > 0xff)
    throw new RangeError(`a key id is 0-255, got ${config.keyId}`);
  const keyBytes = PUBLIC_KEY_BYTES.get(config.kemId);
  if (keyBytes === undefined) throw new RangeError(`KEM 0x${config.kemId.toString(16)} is not supported`);
  if (config.publicKey.length !== keyBytes)
    throw new RangeError(`the KEM's public key is ${keyBytes} bytes, got ${config.publicKey.length}`);
  if (config.suites.length === 0 || config.suites.length > 0x3fff)
    throw new RangeError(`a key config lists 1 to ${0x3fff} suites, got ${config.suites.length}`);
}

/** One key config (§3.1): key_id(8), kem_id(16), public key, suites length(16), (kdf_id(16), aead_id(16))... */
export function encodeKeyConfig(config: KeyConfig): Uint8Array {
  checkConfig(config);
  const writer = new ByteWriter()
    .uint8(config.keyId)
    .uint16(config.kemId)
    .bytes(config.publicKey)
    .uint16(config.suites.length * 4);
  for (const suite of config.suites) writer.uint16(suite.kdfId).uint16(suite.aeadId);
  return writer.finish();
}

/** The application/ohttp-keys body (§3.2): each config prefixed with its 2-byte length. */
export function encodeKeyConfigList(configs: KeyConfig[]): Uint8Array {
  const writer = new ByteWriter();
  for (const config of configs) {
    const encoded = encodeKeyConfig(config);
    writer.uint16(encoded.length).bytes(encoded);
  }
  return writer.finish();
}

/**
 * One key config, filling `bytes` exactly; undefined when its KEM is one we do not know (its
 * public key's length is then unknown, and §3.2 lets a client skip such configs).
 */
function readKeyConfig(bytes: Uint8Array): KeyConfig | undefined {
  const reader = new ByteReader(bytes, 'key config');
  const keyId = reader.uint8('key_id');
  const kemId = reader.uint16('kem_id');
  const keyBytes = PUBLIC_KEY_BYTES.get(kemId);
  if (keyBytes === undefined) return undefined;
  const publicKey = reader.take(keyBytes, 'public key').slice();
  const suitesLength = reader.uint16('symmetric algorithms length');
  if (suitesLength === 0 || suitesLength % 4 !== 0)
    throw new OhttpError(
      'malformed',
      `key config: the symmetric algorithms length is a non-zero multiple of 4, got ${suitesLength}`,
    );
  const suitesReader = new ByteReader(reader.take(suitesLength, 'symmetric algorithms'), 'key config');
  const suites: SymmetricSuite[] = [];
  while (suitesReader.remaining > 0)
    suites.push({ kdfId: suitesReader.uint16('kdf_id'), aeadId: suitesReader.uint16('aead_id') });
  if (reader.remaining !== 0)
    throw new OhttpError('malformed', `key config: ${reader.remaining} bytes after the symmetric algorithms`);
  return { keyId, kemId, publicKey, suites };
}

/** One key config as encodeKeyConfig writes it; OhttpError('malformed') otherwise, or for a KEM we do not know. */
export function decodeKeyConfig(bytes: Uint8Array): KeyConfig {
  const config = readKeyConfig(bytes);
  if (config === undefined) throw new OhttpError('malformed', 'key config: the KEM is not one this code knows');
  return config;
}

/** The configs of an application/ohttp-keys body we can use, in order; OhttpError('malformed') if it is not one. */
export function decodeKeyConfigList(bytes: Uint8Array): KeyConfig[] {
  const reader = new ByteReader(bytes, 'key config list');
  const configs: KeyConfig[] = [];
  if (reader.remaining === 0) throw new OhttpError('malformed', 'key config list: empty');
  while (reader.remaining > 0) {
    const length = reader.uint16('key config length');
    const config = readKeyConfig(reader.take(length, 'key config'));
    if (config !== undefined) configs.push(config);
  }
  return configs;
}

/** A message/ohttp-req's header: key_id(8), kem_id(16), kdf_id(16), aead_id(16) (RFC 9458 §4.1). */
export const REQUEST_HEADER_BYTES = 7;

/**
 * The key id a message/ohttp-req is addressed to (its first byte); undefined when the message is
 * too short to carry a header, so that a router refuses what no key could open.
 */
export function requestKeyId(message: Uint8Array): number | undefined {
  return message.length >= REQUEST_HEADER_BYTES ? message[0] : undefined;
}
