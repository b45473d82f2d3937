// Every way the secure client refuses, as one typed error with a stable reason. The SDK never
// sends a request to an enclave it has not verified, so most of these mean "nothing was sent".
import type { AttestationCheck, FailureReason } from '../attestation/web.js';

export const SECURE_CLIENT_REASONS = [
  /** createSecureClient or predict was given something it cannot use (see the message). */
  'invalid-option',
  /** No WebCrypto: in a browser, the page is not a secure context (HTTPS, or http://localhost). */
  'webcrypto-unavailable',
  /** The gateway could not be reached, or the connection failed mid-way. */
  'gateway-unreachable',
  /** The gateway answered with an error status; `status` and `code` say which. */
  'gateway-error',
  /** /.well-known/ohttp-gateway did not hold a well-formed application/ohttp-keys list. */
  'keys-malformed',
  /** No key config offers a suite this client speaks (X25519, HKDF-SHA256, AES-128/256-GCM). */
  'no-usable-key',
  /** The attestation document did not verify; `attestationReason` and `checks` say where. */
  'attestation-failed',
  /** The document verified but does not bind the key config offered (public_key or user_data differ). */
  'key-not-bound',
  /** The gateway still did not know the key after keys were refetched and the enclave re-attested. */
  'unknown-key',
  /** The encrypted response (or the Binary HTTP inside it) could not be opened or decoded. */
  'response-malformed',
] as const;

export type SecureClientReason = (typeof SECURE_CLIENT_REASONS)[number];

export interface SecureClientErrorDetails {
  cause?: unknown;
  /** HTTP status of the gateway's answer (gateway-error, unknown-key). */
  status?: number;
  /** The gateway's coded error (GW_…, MS_…), when it sent one. */
  code?: string;
  /** attestation-failed: the verifier's reason (failure.ts). */
  attestationReason?: FailureReason;
  /** attestation-failed: the checks that ran, up to the one that failed. */
  checks?: readonly AttestationCheck[];
}

export class SecureClientError extends Error {
  override name = 'SecureClientError';
  readonly reason: SecureClientReason;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly attestationReason: FailureReason | undefined;
  readonly checks: readonly AttestationCheck[] | undefined;

  constructor(reason: SecureClientReason, message: string, details: SecureClientErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.reason = reason;
    this.status = details.status;
    this.code = details.code;
    this.attestationReason = details.attestationReason;
    this.checks = details.checks;
  }
}
