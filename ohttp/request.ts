// Request encapsulation (RFC 9458 §4.3):
//   hdr = key_id(8) || kem_id(16) || kdf_id(16) || aead_id(16)
//   info = "message/bhttp request" || 0x00 || hdr
//   enc, sctxt = SetupBaseS(pkR, info); ct = sctxt.Seal("", bhttp request)
//   message/ohttp-req = hdr || enc || ct
import type { KemInterface } from '@hpke/core';
import { ByteReader, ByteWriter, concatBytes, utf8 } from './bytes.js';
import { OhttpError } from './errors.js';
import type { HpkeSuite } from './hpke-suite.js';
import { AEAD_TAG_BYTES, ENC_BYTES, hpkeSuite } from './hpke-suite.js';
import type { KeyConfig, SymmetricSuite } from './key-config.js';
import { REQUEST_HEADER_BYTES } from './key-config.js';
import { openResponse } from './response.js';

const REQUEST_LABEL = utf8('message/bhttp request');

export interface RequestHeader {
  keyId: number;
  kemId: number;
  kdfId: number;
  aeadId: number;
}

export function encodeRequestHeader(header: RequestHeader): Uint8Array {
  return new ByteWriter().uint8(header.keyId).uint16(header.kemId).uint16(header.kdfId).uint16(header.aeadId).finish();
}

/** The HPKE info string a request is sealed under; binds key id and suite to the ciphertext. */
export function requestInfo(header: Uint8Array): Uint8Array {
  return concatBytes([REQUEST_LABEL, Uint8Array.of(0), header]);
}

export interface ParsedRequest {
  header: RequestHeader;
  headerBytes: Uint8Array;
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

/** Splits a message/ohttp-req; OhttpError('malformed') when it cannot hold a header, an enc and a tag. */
export function parseRequest(message: Uint8Array): ParsedRequest {
  const reader = new ByteReader(message, 'message/ohttp-req');
  const header = {
    keyId: reader.uint8('key_id'),
    kemId: reader.uint16('kem_id'),
    kdfId: reader.uint16('kdf_id'),
    aeadId: reader.uint16('aead_id'),
  };
  const headerBytes = message.subarray(0, REQUEST_HEADER_BYTES);
  return {
    header,
    headerBytes,
    enc: message.subarray(REQUEST_HEADER_BYTES, REQUEST_HEADER_BYTES + Math.min(ENC_BYTES, reader.remaining)),
    ciphertext: message.subarray(REQUEST_HEADER_BYTES + ENC_BYTES),
  };
}

/** The length checks that need the suite: done after key and suite are known to be ours. */
export function checkRequestLength(parsed: ParsedRequest): void {
  if (parsed.enc.length < ENC_BYTES || parsed.ciphertext.length < AEAD_TAG_BYTES) {
    throw new OhttpError(
      'malformed',
      `message/ohttp-req: too short to hold an encapsulated key (${ENC_BYTES} bytes) and a sealed request (at least ${AEAD_TAG_BYTES})`,
    );
  }
}

export interface EncapsulatedRequest {
  message: Uint8Array;
  openResponse(messageOhttpRes: Uint8Array): Promise<Uint8Array>;
}

/** For the RFC 9458 test vector only: the ephemeral key pair the client would otherwise generate. */
export interface EncapsulationTestInputs {
  ephemeralKeyPair?: HpkeKeyPair;
}

/** A key pair as @hpke/core makes and takes them (WebCrypto keys). */
export type HpkeKeyPair = Awaited<ReturnType<KemInterface['generateKeyPair']>>;

/** The suite a client uses when it is not told: the first one of the config's it can speak. */
function chooseSuite(config: KeyConfig): SymmetricSuite {
  for (const suite of config.suites) {
    try {
      hpkeSuite(config.kemId, suite.kdfId, suite.aeadId);
      return suite;
    } catch {
      // Not one of ours; the next may be.
    }
  }
  throw new OhttpError('unsupported-suite', `key config ${config.keyId} offers no suite this client supports`);
}

export async function encapsulateRequestWith(
  config: KeyConfig,
  bhttpRequest: Uint8Array,
  suite: SymmetricSuite | undefined,
  testInputs: EncapsulationTestInputs,
): Promise<EncapsulatedRequest> {
  const chosen = suite ?? chooseSuite(config);
  if (suite && !config.suites.some((offered) => offered.kdfId === suite.kdfId && offered.aeadId === suite.aeadId)) {
    throw new OhttpError(
      'unsupported-suite',
      `key config ${config.keyId} does not offer KDF 0x${suite.kdfId.toString(16)} with AEAD 0x${suite.aeadId.toString(16)}`,
    );
  }
  const hpke: HpkeSuite = hpkeSuite(config.kemId, chosen.kdfId, chosen.aeadId);
  const headerBytes = encodeRequestHeader({
    keyId: config.keyId,
    kemId: config.kemId,
    kdfId: chosen.kdfId,
    aeadId: chosen.aeadId,
  });
  let recipientPublicKey;
  try {
    recipientPublicKey = await hpke.suite.kem.deserializePublicKey(config.publicKey);
  } catch (cause) {
    throw new OhttpError('malformed', `key config ${config.keyId}: its public key is not a valid X25519 key`, {
      cause,
    });
  }
  const sender = await hpke.suite.createSenderContext({
    recipientPublicKey,
    info: requestInfo(headerBytes),
    ...(testInputs.ephemeralKeyPair ? { ekm: testInputs.ephemeralKeyPair } : {}),
  });
  const enc = new Uint8Array(sender.enc);
  const ciphertext = new Uint8Array(await sender.seal(bhttpRequest));
  return {
    message: concatBytes([headerBytes, enc, ciphertext]),
    openResponse: (messageOhttpRes) => openResponse(hpke, sender, enc, messageOhttpRes),
  };
}

/**
 * Seals a Binary HTTP request to a key config (client side). `suite` defaults to the first of the
 * config's suites this code supports; a suite the config does not offer is refused.
 */
export function encapsulateRequest(
  config: KeyConfig,
  bhttpRequest: Uint8Array,
  suite?: SymmetricSuite,
): Promise<EncapsulatedRequest> {
  return encapsulateRequestWith(config, bhttpRequest, suite, {});
}
