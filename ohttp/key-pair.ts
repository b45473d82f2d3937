// The server's side (the enclave): one HPKE key pair with its key config, opening requests sealed
// to it and sealing each answer to the request's own context.
import { OhttpError } from './errors.js';
import { hpkeSuite } from './hpke-suite.js';
import type { KeyConfig } from './key-config.js';
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  KEM_X25519_HKDF_SHA256,
  encodeKeyConfig,
} from './key-config.js';
import type { HpkeKeyPair } from './request.js';
import { checkRequestLength, parseRequest, requestInfo } from './request.js';
import { responseNonceBytes, sealResponse } from './response.js';
import type { OpenedHpke, ServerCrypto } from './server-crypto.js';
import { webServerCrypto } from './server-crypto.js';

/** What the enclave offers: AES-128-GCM (RFC 9458's required suite) first, AES-256-GCM too. */
const OFFERED_SUITES = [
  { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_128_GCM },
  { kdfId: KDF_HKDF_SHA256, aeadId: AEAD_AES_256_GCM },
];

export interface DecapsulatedRequest {
  bhttpRequest: Uint8Array;
  sealResponse(bhttpResponse: Uint8Array): Promise<Uint8Array>;
}

/** For the RFC 9458 test vector only: the response nonce the server would otherwise draw. */
export interface DecapsulationTestInputs {
  responseNonce?: Uint8Array;
}

function randomBytes(count: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(count));
}

export class OhttpKeyPair {
  readonly config: KeyConfig;
  readonly encodedConfig: Uint8Array;
  readonly #crypto: ServerCrypto;

  private constructor(config: KeyConfig, crypto: ServerCrypto) {
    this.config = config;
    this.encodedConfig = encodeKeyConfig(config);
    this.#crypto = crypto;
  }

  static async #from(keyId: number, keyPair: HpkeKeyPair): Promise<OhttpKeyPair> {
    const kem = hpkeSuite(KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, AEAD_AES_128_GCM).suite.kem;
    return OhttpKeyPair.withCrypto(
      keyId,
      new Uint8Array(await kem.serializePublicKey(keyPair.publicKey)),
      webServerCrypto(keyPair),
    );
  }

  /**
   * The key pair whose private half only `crypto` holds (raw X25519 `publicKey`, 32 bytes): for a
   * server with its own primitives (see ServerCrypto). The caller vouches that the two match; a
   * mismatch opens nothing.
   */
  static withCrypto(keyId: number, publicKey: Uint8Array, crypto: ServerCrypto): OhttpKeyPair {
    if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xff) throw new RangeError(`a key id is 0-255, got ${keyId}`);
    return new OhttpKeyPair(
      {
        keyId,
        kemId: KEM_X25519_HKDF_SHA256,
        publicKey: publicKey.slice(),
        suites: OFFERED_SUITES.map((suite) => ({ ...suite })),
      },
      crypto,
    );
  }

  /** A fresh X25519 key pair, made with WebCrypto; nothing outside this object can reach its private key. */
  static async generate(keyId: number): Promise<OhttpKeyPair> {
    const kem = hpkeSuite(KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, AEAD_AES_128_GCM).suite.kem;
    return OhttpKeyPair.#from(keyId, await kem.generateKeyPair());
  }

  /**
   * The key pair of an existing raw X25519 private key (32 bytes): a published test vector, or a
   * key kept elsewhere too. (The enclave keeps its key in node:crypto and uses withCrypto.)
   */
  static async fromPrivateKey(keyId: number, rawPrivateKey: Uint8Array): Promise<OhttpKeyPair> {
    const kem = hpkeSuite(KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, AEAD_AES_128_GCM).suite.kem;
    if (rawPrivateKey.length !== kem.privateKeySize)
      throw new RangeError(`an X25519 private key is ${kem.privateKeySize} bytes, got ${rawPrivateKey.length}`);
    const privateKey = await kem.deserializePrivateKey(rawPrivateKey);
    const publicKey = await kem.deserializePublicKey(await publicKeyOf(privateKey));
    return OhttpKeyPair.#from(keyId, { privateKey, publicKey });
  }

  /** Opens a message/ohttp-req sealed to this key; OhttpError with the reason when it cannot. */
  decapsulateRequest(message: Uint8Array): Promise<DecapsulatedRequest> {
    return this.decapsulateRequestWith(message, {});
  }

  async decapsulateRequestWith(message: Uint8Array, testInputs: DecapsulationTestInputs): Promise<DecapsulatedRequest> {
    const parsed = parseRequest(message);
    const { header } = parsed;
    // Key first: a client holding an old key must learn that (and refetch), whatever else is wrong.
    if (header.keyId !== this.config.keyId)
      throw new OhttpError(
        'unknown-key',
        `message/ohttp-req: key id ${header.keyId} is not this server's (${this.config.keyId})`,
      );
    if (
      header.kemId !== this.config.kemId ||
      !this.config.suites.some((suite) => suite.kdfId === header.kdfId && suite.aeadId === header.aeadId)
    ) {
      throw new OhttpError(
        'unsupported-suite',
        `message/ohttp-req: KEM 0x${header.kemId.toString(16)}, KDF 0x${header.kdfId.toString(16)}, AEAD 0x${header.aeadId.toString(16)} is not offered by key ${this.config.keyId}`,
      );
    }
    checkRequestLength(parsed);
    const hpke = hpkeSuite(header.kemId, header.kdfId, header.aeadId);
    let opened: OpenedHpke;
    try {
      opened = await this.#crypto.open(header.aeadId, parsed.enc, requestInfo(parsed.headerBytes), parsed.ciphertext);
    } catch (cause) {
      throw new OhttpError(
        'decrypt-failed',
        'message/ohttp-req: the request does not open with this key (tampered, or sealed to another key)',
        { cause },
      );
    }
    const crypto = this.#crypto;
    const enc = parsed.enc.slice();
    let answered = false;
    return {
      bhttpRequest: opened.plaintext,
      sealResponse: (bhttpResponse) => {
        // One answer per request: a second would reuse the response key with a new nonce only by luck.
        if (answered) return Promise.reject(new Error('this request has already been answered'));
        answered = true;
        return sealResponse(
          hpke,
          crypto,
          opened,
          enc,
          bhttpResponse,
          testInputs.responseNonce ?? randomBytes(responseNonceBytes(hpke)),
        );
      },
    };
  }
}

/** The public half of an X25519 private key: WebCrypto exports it as the JWK's `x`. */
async function publicKeyOf(privateKey: HpkeKeyPair['privateKey']): Promise<Uint8Array> {
  const jwk = await globalThis.crypto.subtle.exportKey('jwk', privateKey);
  if (typeof jwk.x !== 'string') throw new Error('WebCrypto exported an X25519 private key without its public half');
  return base64UrlBytes(jwk.x);
}

function base64UrlBytes(text: string): Uint8Array {
  const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}
