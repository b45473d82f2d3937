// The client SDK as browsers load it: the entry of the bundle the gateway's page imports
// (scripts/bundle-client.mjs). Everything here is browser-safe; index.ts adds the Node command.
export {
  ATTESTATION_UNKNOWN_KEY_CODE,
  createSecureClient,
  DEFAULT_MAX_DOCUMENT_AGE_MS,
  MAX_KEYS_BYTES,
  MAX_RESPONSE_BYTES,
  NONCE_BYTES,
  PATHS,
  UNKNOWN_KEY_CODES,
} from './secure-client.js';
export type { PredictOptions, SecureClient, SecureClientOptions, SecureResponse } from './secure-client.js';
export { SECURE_CLIENT_REASONS, SecureClientError } from './errors.js';
export type { SecureClientErrorDetails, SecureClientReason } from './errors.js';
export { verifyEnclave } from './verify-enclave.js';
export type { VerifiedEnclave, VerifyEnclaveOptions } from './verify-enclave.js';
export { parsePins } from './pins.js';
export type { PcrPins } from './pins.js';
export {
  verifyAttestationWeb,
  loadWebTrustedRoots,
  AWS_NITRO_ROOT_G1_PEM,
  FAILURE_REASONS,
} from '../attestation/web.js';
export type {
  AttestationCheck,
  FailureReason,
  PcrMeasurements,
  WebVerificationResult,
  WebVerifyOptions,
} from '../attestation/web.js';
