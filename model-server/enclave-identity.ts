// The enclave's identity for this boot: ONE X25519 key pair, made here and never written anywhere.
// It is the OHTTP key that clients seal requests to, the public_key of every attestation document,
// and the key of the /readyz possession proofs: one node:crypto KeyObject serves all three (the
// OHTTP side through nodeServerCrypto), so there is no second copy of the private key.
import type { KeyObject } from 'node:crypto';
import { createHash, generateKeyPairSync, randomInt } from 'node:crypto';
import { rawX25519PublicKey } from '../attestation/index.js';
import { OhttpKeyPair } from '../ohttp/index.js';
import { nodeServerCrypto } from './node-server-crypto.js';

export interface EnclaveIdentity {
  /** The X25519 public key generated at boot, raw 32 bytes. */
  publicKey: Buffer;
  /** Its private half: never leaves this process; answers the gateway's possession challenges. */
  privateKey: KeyObject;
  /** SHA-256 of publicKey, hex: what /readyz reports. */
  publicKeySha256: string;
  /** The same key as an OHTTP key pair, with its key config. */
  ohttp: OhttpKeyPair;
  /** SHA-256 of the encoded key config: the attestation document's user_data (binds key id and suites). */
  keyConfigSha256: Buffer;
}

/** `keyId`: the OHTTP key id; a random one (0-255) when not given. */
export function createEnclaveIdentity(keyId: number = randomInt(0, 256)): EnclaveIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = rawX25519PublicKey(publicKey);
  const ohttp = OhttpKeyPair.withCrypto(keyId, raw, nodeServerCrypto(privateKey, raw));
  return {
    publicKey: raw,
    privateKey,
    publicKeySha256: createHash('sha256').update(raw).digest('hex'),
    ohttp,
    keyConfigSha256: createHash('sha256').update(ohttp.encodedConfig).digest(),
  };
}
