// Response encapsulation (RFC 9458 §4.4). Both sides derive the response key from the request's
// HPKE context:
//   secret = context.Export("message/bhttp response", max(Nn, Nk))
//   salt = enc || response_nonce (response_nonce: max(Nn, Nk) random bytes, sent first)
//   prk = Extract(salt, secret); key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn)
//   message/ohttp-res = response_nonce || Seal(key, nonce, "", bhttp response)
import type { EncryptionContext } from '@hpke/core';
import { concatBytes, utf8 } from './bytes.js';
import { OhttpError } from './errors.js';
import type { HpkeSuite } from './hpke-suite.js';
import { AEAD_TAG_BYTES } from './hpke-suite.js';
import type { OpenedHpke, ServerCrypto } from './server-crypto.js';

const EXPORT_LABEL = utf8('message/bhttp response');
const KEY_LABEL = utf8('key');
const NONCE_LABEL = utf8('nonce');
const EMPTY = new Uint8Array(0);

/** The length of the response nonce: max(Nn, Nk). */
export function responseNonceBytes(hpke: HpkeSuite): number {
  return Math.max(hpke.nonceBytes, hpke.keyBytes);
}

interface ResponseKey {
  key: Uint8Array;
  nonce: Uint8Array;
}

type Hkdf = (salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number) => Promise<Uint8Array>;

async function responseKey(
  hpke: HpkeSuite,
  exportSecret: OpenedHpke['exportSecret'],
  hkdf: Hkdf,
  enc: Uint8Array,
  responseNonce: Uint8Array,
): Promise<ResponseKey> {
  const secret = await exportSecret(EXPORT_LABEL, responseNonceBytes(hpke));
  const salt = concatBytes([enc, responseNonce]);
  // HKDF-Extract then Expand in one call per output; both outputs share the same PRK.
  const [key, nonce] = await Promise.all([
    hkdf(salt, secret, KEY_LABEL, hpke.keyBytes),
    hkdf(salt, secret, NONCE_LABEL, hpke.nonceBytes),
  ]);
  return { key, nonce };
}

/** The server's side: seal a Binary HTTP response to the client that sent the request. */
export async function sealResponse(
  hpke: HpkeSuite,
  crypto: ServerCrypto,
  opened: OpenedHpke,
  enc: Uint8Array,
  bhttpResponse: Uint8Array,
  responseNonce: Uint8Array,
): Promise<Uint8Array> {
  const { key, nonce } = await responseKey(
    hpke,
    (label, length) => opened.exportSecret(label, length),
    (salt, ikm, info, length) => crypto.hkdf(salt, ikm, info, length),
    enc,
    responseNonce,
  );
  return concatBytes([responseNonce, await crypto.seal(key, nonce, bhttpResponse)]);
}

/** The client's side: open a message/ohttp-res; OhttpError('malformed' | 'decrypt-failed') when it cannot. */
export async function openResponse(
  hpke: HpkeSuite,
  context: EncryptionContext,
  enc: Uint8Array,
  message: Uint8Array,
): Promise<Uint8Array> {
  const nonceBytes = responseNonceBytes(hpke);
  if (message.length < nonceBytes + AEAD_TAG_BYTES) {
    throw new OhttpError(
      'malformed',
      `message/ohttp-res: ${message.length} bytes, shorter than a response nonce (${nonceBytes}) and a tag (${AEAD_TAG_BYTES})`,
    );
  }
  const exportSecret = async (label: Uint8Array, length: number) => new Uint8Array(await context.export(label, length));
  const hkdf: Hkdf = async (salt, ikm, info, length) =>
    new Uint8Array(await hpke.suite.kdf.extractAndExpand(salt, ikm, info, length));
  const { key, nonce } = await responseKey(hpke, exportSecret, hkdf, enc, message.subarray(0, nonceBytes));
  try {
    return new Uint8Array(
      await hpke.suite.aead.createEncryptionContext(key).open(nonce, message.subarray(nonceBytes), EMPTY),
    );
  } catch (cause) {
    throw new OhttpError(
      'decrypt-failed',
      "message/ohttp-res: the response does not open with this request's key (tampered, or not the answer to this request)",
      { cause },
    );
  }
}
