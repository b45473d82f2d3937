// createSecureClient: predictions through the gateway's secure route, encrypted end to end to an
// enclave the client has verified itself, so that neither the gateway nor anything else on the
// parent instance can read them:
//   1. GET /.well-known/ohttp-gateway: the key configs of the attested enclaves (one is picked);
//   2. GET /attestation?nonce=<own random>&key-id=N: verified in full, key binding included;
//   3. the verified key is kept until maxKeyAgeMs, or until the gateway says its key id is
//      unknown (the enclave restarted with a new key); concurrent calls share one attestation;
//      a key that vanished between the key list and its attestation costs one fresh key list;
//   4. each request: Binary HTTP POST /predict sealed with OHTTP, POST /predict-secure
//      (message/ohttp-req), the message/ohttp-res opened; on 422 *_OHTTP_UNKNOWN_KEY the keys are
//      refetched, the enclave re-attested and the request retried exactly once.
// Browser-safe: fetch and WebCrypto only.
import type { WebTrustedRoot } from '../attestation/web.js';
import {
  AWS_NITRO_ROOT_G1_PEM,
  DEFAULT_MAX_DOCUMENT_BYTES,
  TrustedRootError,
  concatBytes,
  loadWebTrustedRoots,
  toHex,
} from '../attestation/web.js';
import type { KeyConfig, SymmetricSuite } from '../ohttp/index.js';
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  KDF_HKDF_SHA256,
  KEM_X25519_HKDF_SHA256,
  OhttpError,
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
} from '../ohttp/index.js';
import { SecureClientError } from './errors.js';
import type { PcrPins } from './pins.js';
import { parsePins } from './pins.js';
import type { VerifiedEnclave } from './verify-enclave.js';
import { verifyEnclave } from './verify-enclave.js';

/** The NSM signs on request, so a document should be seconds old; this allows for slow links. */
export const DEFAULT_MAX_DOCUMENT_AGE_MS = 5 * 60_000; // 5 min
export const NONCE_BYTES = 32;
/** The gateway's and the enclave's codes for "no such key id here". */
export const UNKNOWN_KEY_CODES: readonly string[] = ['GW_OHTTP_UNKNOWN_KEY', 'MS_OHTTP_UNKNOWN_KEY'];
/** The gateway's answer to GET /attestation for a key id no attested member holds (any more). */
export const ATTESTATION_UNKNOWN_KEY_CODE = 'GW_UNKNOWN_KEY_ID';
export const PATHS = {
  keys: '/.well-known/ohttp-gateway',
  attestation: '/attestation',
  predict: '/predict-secure',
} as const;
/** A key config is about 45 bytes; a gateway with hundreds of enclaves stays far below this. */
export const MAX_KEYS_BYTES = 64 * 1024; // 64 KiB
/** The model server's answers are small JSON; this bounds what a hostile gateway can make the client hold. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024; // 16 MiB

export interface SecureClientOptions {
  /** The gateway's base URL, e.g. https://gateway.example.com. */
  gatewayUrl: string | URL;
  /** The enclave image's measurements: what `mpg enclave build` (nitro-cli build-enclave) printed. */
  pcrs: PcrPins;
  /** Roots to trust instead of the built-in AWS Nitro Enclaves root G1 (PEM). */
  trustedRootsPem?: string | readonly string[];
  /**
   * INSECURE: also trust this emulated NSM root (PEM). Anyone who runs the emulation can sign with
   * it, so attestation then proves nothing; for local development only.
   */
  insecureTrustEmulatedNsmRoot?: string;
  /** How long a verified key is used before the enclave is attested again. */
  maxKeyAgeMs: number;
  /** The oldest attestation document accepted. Default 5 min. */
  maxDocumentAgeMs?: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** The clock (ms since the epoch); tests set it. Default Date.now. */
  now?: () => number;
}

export interface PredictOptions {
  /** How many classes to return (the model server's ?topk=). */
  topk?: number;
}

export interface SecureResponse {
  /** The model server's status, from inside the encrypted response. */
  status: number;
  headers: Record<string, string>;
  /** The body parsed as JSON (the model server answers JSON, its coded errors included); undefined when it is not JSON. */
  json: unknown;
  body: Uint8Array;
  /** The enclave this answer came from, as verified. */
  verified: VerifiedEnclave;
}

export interface SecureClient {
  /** An image (raw bytes with its content type) or the JSON batch {"images": [base64...], "topk"}. */
  predict(body: Uint8Array | object, contentType?: string, options?: PredictOptions): Promise<SecureResponse>;
  /** Attests now (or returns the cached verification): what predict would encrypt to. */
  verify(): Promise<VerifiedEnclave>;
  /** Drops the cached key: the next call attests again. */
  forgetKey(): void;
}

interface AttestedKey {
  config: KeyConfig;
  suite: SymmetricSuite;
  verified: VerifiedEnclave;
  verifiedAt: number;
}

const JSON_TYPE = 'application/json';

export function createSecureClient(options: SecureClientOptions): SecureClient {
  const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
  const now = options.now ?? Date.now;
  const base = gatewayBase(options.gatewayUrl);
  const pins = parsePins(options.pcrs);
  if (!Number.isSafeInteger(options.maxKeyAgeMs) || options.maxKeyAgeMs < 0)
    throw new SecureClientError(
      'invalid-option',
      `maxKeyAgeMs must be a non-negative integer (ms), got ${String(options.maxKeyAgeMs)}`,
    );
  const maxDocumentAgeMs = options.maxDocumentAgeMs ?? DEFAULT_MAX_DOCUMENT_AGE_MS;
  if (!Number.isSafeInteger(maxDocumentAgeMs) || maxDocumentAgeMs < 0)
    throw new SecureClientError(
      'invalid-option',
      `maxDocumentAgeMs must be a non-negative integer (ms), got ${String(maxDocumentAgeMs)}`,
    );
  if (typeof fetchImpl !== 'function') throw new SecureClientError('invalid-option', 'no fetch: pass options.fetch');
  const trust = loadTrust(options);
  // Keep an unobserved rejection from surfacing before the first call observes it.
  trust.catch(() => undefined);

  let cached: AttestedKey | undefined;
  let attesting: Promise<AttestedKey> | undefined;

  const request = async (path: string, init: RequestInit, what: string): Promise<Response> => {
    try {
      // no-store: a browser's HTTP cache must not answer for the keys after a key-id error.
      const options: RequestInit & { cache?: string } = { ...init, cache: 'no-store', redirect: 'error' };
      return await fetchImpl(new URL(path, base), options);
    } catch (cause) {
      throw new SecureClientError(
        'gateway-unreachable',
        `${what}: the gateway at ${base.origin} could not be reached (${(cause as Error).message})`,
        { cause },
      );
    }
  };

  const attest = async (): Promise<AttestedKey> => {
    try {
      return await attestOnce();
    } catch (error) {
      // The key's enclave left between the key list and the attestation: one fresh list.
      if (error instanceof SecureClientError && error.status === 404 && error.code === ATTESTATION_UNKNOWN_KEY_CODE)
        return attestOnce();
      throw error;
    }
  };

  const attestOnce = async (): Promise<AttestedKey> => {
    const { roots, emulatedRootFingerprint } = await trust;
    const keysResponse = await request(PATHS.keys, {}, 'fetching the key configs');
    if (keysResponse.status !== 200) throw await gatewayError(keysResponse, 'fetching the key configs');
    let configs: KeyConfig[];
    try {
      const list = await bytesOf(keysResponse, MAX_KEYS_BYTES);
      if (list.length > MAX_KEYS_BYTES)
        throw new SecureClientError('keys-malformed', `${PATHS.keys} is larger than ${MAX_KEYS_BYTES} bytes`);
      configs = decodeKeyConfigList(list);
    } catch (cause) {
      if (cause instanceof SecureClientError) throw cause;
      throw new SecureClientError(
        'keys-malformed',
        `${PATHS.keys} is not a well-formed application/ohttp-keys list: ${(cause as Error).message}`,
        { cause },
      );
    }
    const usable = configs.flatMap((config) => {
      const suite = usableSuite(config);
      return suite ? [{ config, suite }] : [];
    });
    if (usable.length === 0)
      throw new SecureClientError(
        'no-usable-key',
        `none of the ${configs.length} key configs offers X25519 with HKDF-SHA256 and AES-128-GCM or AES-256-GCM`,
      );
    // Spread clients over the enclaves: each enclave has its own key.
    const { config, suite } = usable[randomIndex(usable.length)]!;
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const documentResponse = await request(
      `${PATHS.attestation}?nonce=${toHex(nonce)}&key-id=${config.keyId}`,
      {},
      `attesting key ${config.keyId}`,
    );
    if (documentResponse.status !== 200) throw await gatewayError(documentResponse, `attesting key ${config.keyId}`);
    // Read no further than the verifier's limit: past it, the verifier refuses the document (too_large).
    const document = await bytesOf(documentResponse, DEFAULT_MAX_DOCUMENT_BYTES);
    const verified = await verifyEnclave(document, config, {
      roots,
      emulatedRootFingerprint,
      pins,
      nonce,
      maxDocumentAgeMs,
      at: new Date(now()),
    });
    cached = { config, suite, verified, verifiedAt: now() };
    return cached;
  };

  const currentKey = (): Promise<AttestedKey> => {
    if (cached && now() - cached.verifiedAt < options.maxKeyAgeMs) return Promise.resolve(cached);
    // Single flight: every call that finds no fresh key waits for the same attestation.
    attesting ??= attest().finally(() => {
      attesting = undefined;
    });
    return attesting;
  };

  const send = async (key: AttestedKey, body: Uint8Array, contentType: string, query: string) => {
    const inner = encodeBinaryRequest({
      method: 'POST',
      scheme: base.protocol.replace(':', ''),
      authority: base.host,
      path: `/predict${query}`,
      headers: [['content-type', contentType]],
      body,
    });
    const sealed = await encapsulateRequest(key.config, inner, key.suite);
    const response = await request(
      PATHS.predict,
      { method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body: sealed.message },
      'sending the encrypted request',
    );
    return { response, sealed };
  };

  return {
    async predict(body, contentType, predictOptions = {}) {
      const { bytes, type } = requestBody(body, contentType);
      const query = predictOptions.topk === undefined ? '' : `?topk=${checkTopk(predictOptions.topk)}`;
      let key = await currentKey();
      let { response, sealed } = await send(key, bytes, type, query);
      let unknown = await unknownKeyCode(response);
      if (unknown) {
        // The enclave behind this key is gone (restarted, replaced): fresh keys, fresh proof, once.
        if (cached === key) cached = undefined;
        key = await currentKey();
        ({ response, sealed } = await send(key, bytes, type, query));
        unknown = await unknownKeyCode(response);
        if (unknown)
          throw new SecureClientError(
            'unknown-key',
            `the gateway does not know key ${key.config.keyId} even after the keys were refetched and the enclave re-attested (${unknown})`,
            { status: response.status, code: unknown },
          );
      }
      if (response.status !== 200) throw await gatewayError(response, 'the encrypted request');
      let inner;
      try {
        const sealedResponse = await bytesOf(response, MAX_RESPONSE_BYTES);
        if (sealedResponse.length > MAX_RESPONSE_BYTES)
          throw new SecureClientError(
            'response-malformed',
            `the encrypted response is larger than ${MAX_RESPONSE_BYTES} bytes`,
          );
        inner = decodeBinaryResponse(await sealed.openResponse(sealedResponse));
      } catch (cause) {
        if (cause instanceof SecureClientError) throw cause;
        throw new SecureClientError(
          'response-malformed',
          `the encrypted response could not be opened: ${cause instanceof OhttpError ? `${cause.reason}: ` : ''}${(cause as Error).message}`,
          { cause },
        );
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of inner.headers) headers[name.toLowerCase()] = value;
      return {
        status: inner.status,
        headers,
        json: parseJson(inner.body, headers['content-type']),
        body: inner.body,
        verified: key.verified,
      };
    },
    async verify() {
      return (await currentKey()).verified;
    },
    forgetKey() {
      cached = undefined;
    },
  };
}

function gatewayBase(url: string | URL): URL {
  let base: URL;
  try {
    base = new URL(url);
  } catch (cause) {
    throw new SecureClientError('invalid-option', `gatewayUrl ${JSON.stringify(String(url))} is not a URL`, { cause });
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:')
    throw new SecureClientError('invalid-option', `gatewayUrl must be http: or https:, got ${base.protocol}`);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

async function loadTrust(
  options: SecureClientOptions,
): Promise<{ roots: WebTrustedRoot[]; emulatedRootFingerprint?: string }> {
  if (!globalThis.crypto?.subtle)
    throw new SecureClientError(
      'webcrypto-unavailable',
      'WebCrypto (crypto.subtle) is not available: a browser gives it only to secure contexts (HTTPS, or http://localhost); nothing can be verified or encrypted here',
    );
  const pems =
    options.trustedRootsPem === undefined
      ? [AWS_NITRO_ROOT_G1_PEM]
      : typeof options.trustedRootsPem === 'string'
        ? [options.trustedRootsPem]
        : [...options.trustedRootsPem];
  try {
    const roots = await loadWebTrustedRoots(pems);
    if (options.insecureTrustEmulatedNsmRoot === undefined) return { roots };
    const emulated = await loadWebTrustedRoots([options.insecureTrustEmulatedNsmRoot]);
    if (emulated.length !== 1)
      throw new TrustedRootError(`the emulated NSM root must be one certificate, got ${emulated.length}`);
    return { roots: [...roots, ...emulated], emulatedRootFingerprint: emulated[0]!.fingerprint256 };
  } catch (cause) {
    if (cause instanceof TrustedRootError)
      throw new SecureClientError(
        'invalid-option',
        `${options.insecureTrustEmulatedNsmRoot === undefined ? 'trustedRootsPem' : 'trustedRootsPem or insecureTrustEmulatedNsmRoot'}: ${cause.message}`,
        { cause },
      );
    throw cause;
  }
}

function usableSuite(config: KeyConfig): SymmetricSuite | undefined {
  if (config.kemId !== KEM_X25519_HKDF_SHA256) return undefined;
  return config.suites.find(
    (suite) =>
      suite.kdfId === KDF_HKDF_SHA256 && (suite.aeadId === AEAD_AES_128_GCM || suite.aeadId === AEAD_AES_256_GCM),
  );
}

function randomIndex(length: number): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! % length;
}

function requestBody(body: Uint8Array | object, contentType: string | undefined): { bytes: Uint8Array; type: string } {
  if (body instanceof Uint8Array) {
    if (!contentType)
      throw new SecureClientError(
        'invalid-option',
        'an image body needs its content type (image/jpeg, image/png or image/webp)',
      );
    return { bytes: body, type: contentType };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new SecureClientError(
      'invalid-option',
      'the body must be image bytes (Uint8Array) or the JSON batch object {"images": [...]}',
    );
  if (contentType !== undefined && contentType !== JSON_TYPE)
    throw new SecureClientError('invalid-option', `an object body is sent as ${JSON_TYPE}, not ${contentType}`);
  return { bytes: new TextEncoder().encode(JSON.stringify(body)), type: JSON_TYPE };
}

function checkTopk(topk: number): number {
  if (!Number.isSafeInteger(topk) || topk < 1)
    throw new SecureClientError('invalid-option', `topk must be a positive integer, got ${String(topk)}`);
  return topk;
}

/**
 * The body, read up to `limit` + 1 bytes: a hostile gateway cannot make the client buffer more
 * than that (the caller refuses what is longer than `limit`).
 */
async function bytesOf(response: Response, limit: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  try {
    if (!response.body) return new Uint8Array(0);
    const reader = response.body.getReader();
    for (;;) {
      // Node's types leave the chunk untyped; fetch bodies are byte streams.
      const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
      if (done || !value) break;
      parts.push(value);
      length += value.length;
      if (length > limit) {
        await reader.cancel();
        break;
      }
    }
  } catch (cause) {
    throw new SecureClientError(
      'gateway-unreachable',
      `the gateway's answer was cut off (${(cause as Error).message})`,
      { cause },
    );
  }
  return concatBytes(parts).subarray(0, limit + 1);
}

/** The coded error of a 422 that says the key id is unknown, or undefined (the body stays unread otherwise). */
async function unknownKeyCode(response: Response): Promise<string | undefined> {
  if (response.status !== 422) return undefined;
  const code = (await codedBody(response.clone())).code;
  return code !== undefined && UNKNOWN_KEY_CODES.includes(code) ? code : undefined;
}

async function codedBody(response: Response): Promise<{ code?: string; message?: string }> {
  try {
    const body = (await response.json()) as { code?: unknown; message?: unknown };
    return {
      code: typeof body.code === 'string' ? body.code : undefined,
      message: typeof body.message === 'string' ? body.message : undefined,
    };
  } catch {
    return {};
  }
}

async function gatewayError(response: Response, what: string): Promise<SecureClientError> {
  const { code, message } = await codedBody(response);
  return new SecureClientError(
    'gateway-error',
    `${what}: the gateway answered ${response.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
    { status: response.status, code },
  );
}

function parseJson(body: Uint8Array, contentType: string | undefined): unknown {
  if (!contentType?.toLowerCase().includes('json')) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(body)) as unknown;
  } catch {
    return undefined;
  }
}
