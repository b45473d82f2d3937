// Proof that the process behind a member holds the private half of the X25519 key its attested
// document carries. The gateway sends a challenge (a fresh X25519 public key of its own and a
// nonce); the enclave answers with an HMAC keyed by the X25519 shared secret. Only the holder of
// the attested key can answer, so a process that merely repeats the attested key's hash (another
// enclave behind the same relay, a replayed /readyz) is found out at the next health check.
// It proves who answers the health check; binding every request to the attested key takes
// end-to-end encryption to it, which this does not do.
import type { KeyObject } from 'node:crypto';
import {
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

export const X25519_PUBLIC_KEY_BYTES = 32;
const NONCE_BYTES = 16;
/** The challenge: the verifier's ephemeral X25519 public key, then a nonce. */
export const CHALLENGE_BYTES = X25519_PUBLIC_KEY_BYTES + NONCE_BYTES;
// SubjectPublicKeyInfo of an X25519 key: this prefix, then the 32 raw bytes (RFC 8410).
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const INFO = Buffer.from('mixed-privacy-gateway boot-key proof v1');

function x25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_PUBLIC_KEY_BYTES)
    throw new Error(`an X25519 public key is ${X25519_PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw 32 bytes of an X25519 public key. */
export function rawX25519PublicKey(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' }).subarray(-X25519_PUBLIC_KEY_BYTES);
}

function proof(privateKey: KeyObject, peerPublicKey: KeyObject, challenge: Uint8Array): Buffer {
  const shared = diffieHellman({ privateKey, publicKey: peerPublicKey });
  const key = Buffer.from(hkdfSync('sha256', shared, challenge.subarray(X25519_PUBLIC_KEY_BYTES), INFO, 32));
  return createHmac('sha256', key).update(challenge).digest();
}

/** The enclave's answer to a challenge; throws on a malformed one. */
export function answerChallenge(privateKey: KeyObject, challenge: Uint8Array): Buffer {
  if (challenge.length !== CHALLENGE_BYTES)
    throw new Error(`a challenge is ${CHALLENGE_BYTES} bytes, got ${challenge.length}`);
  return proof(privateKey, x25519PublicKey(challenge.subarray(0, X25519_PUBLIC_KEY_BYTES)), challenge);
}

export interface Challenge {
  /** To send, hex. */
  hex: string;
  /** Whether `answerHex` proves possession of the private half of `attestedPublicKey` (raw, 32 bytes). */
  check(attestedPublicKey: Uint8Array, answerHex: unknown): boolean;
}

export function createChallenge(): Challenge {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const challenge = Buffer.concat([rawX25519PublicKey(publicKey), randomBytes(NONCE_BYTES)]);
  return {
    hex: challenge.toString('hex'),
    check(attestedPublicKey, answerHex) {
      if (typeof answerHex !== 'string' || !/^[0-9a-f]{64}$/.test(answerHex)) return false;
      let expected: Buffer;
      try {
        expected = proof(privateKey, x25519PublicKey(attestedPublicKey), challenge);
      } catch {
        return false;
      }
      return timingSafeEqual(expected, Buffer.from(answerHex, 'hex'));
    },
  };
}
