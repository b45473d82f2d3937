// The enclave's identity for this boot: ONE X25519 key pair, made here and never written anywhere.
// It is the OHTTP key that clients seal requests to, the public_key of every attestation document,
// and the key of the /readyz possession proofs. node:crypto makes it (the proofs use a KeyObject)
// and @hpke/core takes the same private key (WebCrypto); a check below keeps the two the same key.
import type { KeyObject } from 'node:crypto';
import { createHash, generateKeyPairSync, randomInt } from 'node:crypto';
import { rawX25519PublicKey } from '../attestation/index.js';
import { OhttpKeyPair } from '../ohttp/index.js';

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
export async function createEnclaveIdentity(keyId: number = randomInt(0, 256)): Promise<EnclaveIdentity> {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = rawX25519PublicKey(publicKey);
  const { d } = privateKey.export({ format: 'jwk' });
  if (typeof d !== 'string') throw new Error('node:crypto exported an X25519 private key without its private part');
  const privateBytes = Buffer.from(d, 'base64url');
  const ohttp = await OhttpKeyPair.fromPrivateKey(keyId, privateBytes);
  privateBytes.fill(0);
  if (!raw.equals(ohttp.config.publicKey)) throw new Error('the OHTTP key pair does not have the boot key\'s public key');
  return {
    publicKey: raw,
    privateKey,
    publicKeySha256: createHash('sha256').update(raw).digest('hex'),
    ohttp,
    keyConfigSha256: createHash('sha256').update(ohttp.encodedConfig).digest(),
  };
}
