// Response encapsulation (RFC 9458 §4.4). Both sides derive the response key from the request's
// HPKE context:
//   secret = context.Export("message/bhttp response", max(Nn, Nk))
//   salt = enc || response_nonce (response_nonce: max(Nn, Nk) random bytes, sent first)
//   prk = Extract(salt, secret); key = Expand(prk, "key", Nk); nonce = Expand(prk, "nonce", Nn)
//   message/ohttp-res = response_nonce || Seal(key, nonce, "", bhttp response)
import type { AeadEncryptionContext, EncryptionContext } from '@hpke/core';
import { concatBytes, utf8 } from './bytes.js';
import { OhttpError } from './errors.js';
import type { HpkeSuite } from './hpke-suite.js';
import { AEAD_TAG_BYTES } from './hpke-suite.js';

const EXPORT_LABEL = utf8('message/bhttp response');
const KEY_LABEL = utf8('key');
const NONCE_LABEL = utf8('nonce');
const EMPTY = new Uint8Array(0);

/** The length of the response nonce: max(Nn, Nk). */
export function responseNonceBytes(hpke: HpkeSuite): number {
  return Math.max(hpke.nonceBytes, hpke.keyBytes);
}

interface ResponseKey {
  aead: AeadEncryptionContext;
  nonce: Uint8Array;
}

async function responseKey(hpke: HpkeSuite, context: EncryptionContext, enc: Uint8Array, responseNonce: Uint8Array): Promise<ResponseKey> {
  const secret = await context.export(EXPORT_LABEL, responseNonceBytes(hpke));
  const salt = concatBytes([enc, responseNonce]);
  // HKDF-Extract then Expand in one call per output; both outputs share the same PRK.
  const [key, nonce] = await Promise.all([
    hpke.suite.kdf.extractAndExpand(salt, secret, KEY_LABEL, hpke.keyBytes),
    hpke.suite.kdf.extractAndExpand(salt, secret, NONCE_LABEL, hpke.nonceBytes),
  ]);
  return { aead: hpke.suite.aead.createEncryptionContext(key), nonce: new Uint8Array(nonce) };
}

/** The server's side: seal a Binary HTTP response to the client that sent the request. */
export async function sealResponse(hpke: HpkeSuite, context: EncryptionContext, enc: Uint8Array, bhttpResponse: Uint8Array, responseNonce: Uint8Array): Promise<Uint8Array> {
  const { aead, nonce } = await responseKey(hpke, context, enc, responseNonce);
  const sealed = await aead.seal(nonce, bhttpResponse, EMPTY);
  return concatBytes([responseNonce, new Uint8Array(sealed)]);
}

/** The client's side: open a message/ohttp-res; OhttpError('malformed' | 'decrypt-failed') when it cannot. */
export async function openResponse(hpke: HpkeSuite, context: EncryptionContext, enc: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const nonceBytes = responseNonceBytes(hpke);
  if (message.length < nonceBytes + AEAD_TAG_BYTES) {
    throw new OhttpError('malformed', `message/ohttp-res: ${message.length} bytes, shorter than a response nonce (${nonceBytes}) and a tag (${AEAD_TAG_BYTES})`);
  }
  const { aead, nonce } = await responseKey(hpke, context, enc, message.subarray(0, nonceBytes));
  try {
    return new Uint8Array(await aead.open(nonce, message.subarray(nonceBytes), EMPTY));
  } catch (cause) {
    throw new OhttpError('decrypt-failed', 'message/ohttp-res: the response does not open with this request\'s key (tampered, or not the answer to this request)', { cause });
  }
}
