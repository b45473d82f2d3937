// Attestation: the verifier of AWS Nitro Enclaves attestation documents (COSE_Sign1, ES384, the
// certificate chain to the pinned AWS root, PCR policy), the emulated NSM that signs documents of
// the same structure for the local emulation, and `mpg attestation verify`. This is the only door.
import type { Command } from '../common/index.js';

export { verifyAttestationWeb, resolveWebTrustedRoots, loadWebTrustedRoots, TrustedRootError } from './web.js';
export type { WebTrustedRoot, WebVerificationResult, WebVerifyOptions } from './web.js';
export {
  verifyAttestation,
  resolveTrustedRoots,
  CHECK_NAMES,
  DEFAULT_MAX_DOCUMENT_BYTES,
  DEFAULT_MAX_CLOCK_SKEW_MS,
} from './verifier.js';
export type { AttestationCheck, CheckName, VerificationResult, VerifyOptions } from './verifier.js';
export {
  createAttestationVerifier,
  createNonce,
  DEFAULT_MAX_DOCUMENT_AGE_MS,
  NONCE_BYTES,
} from './attestation-verifier.js';
export type { AttestationVerifier, AttestationVerifierOptions } from './attestation-verifier.js';
export { AttestationFailure, FAILURE_REASONS } from './failure.js';
export type { FailureReason } from './failure.js';
export { attestationErrors } from './errors.js';
export { parseAttestationPayload, MAX_OPTIONAL_FIELD_BYTES, OPTIONAL_FIELD_BYTES } from './document.js';
export type { AttestationDocument } from './document.js';
export { checkChainLinks, checkValidity, findRoot, loadTrustedRoots, parseChain, VerifiedLinkCache } from './chain.js';
export type { ChainCertificate, TrustedRoot } from './chain.js';
export { AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256 } from './aws-root.js';
export { parseMeasurements, readMeasurementsFile, formatMeasurements, writeMeasurementsFile } from './measurements.js';
export type { PcrMeasurements } from './measurements.js';
export { decodeCbor, encodeCbor, CborError, CborTag } from './cbor.js';
export type { CborValue, CborKey, DecodeLimits } from './cbor.js';
export { parseCoseSign1, sigStructure, checkEs384, COSE_ALG_ES384, COSE_SIGN1_TAG } from './cose.js';
export type { CoseSign1 } from './cose.js';
export { createEmulatedNsm, EMULATED_NSM_WARNING } from './emulated-nsm.js';
export type { AttestationRequest, DocumentOverrides, EmulatedNsm, EmulatedNsmOptions } from './emulated-nsm.js';
export { emulatedMeasurements, extendPcr, SHA384_HASH_ALGORITHM } from './emulated-measurements.js';
export type { EmulatedImageContents, MeasuredContent } from './emulated-measurements.js';

export async function loadAttestationCommand(): Promise<Command> {
  return (await import('./command.js')).attestationCommand;
}
export { DIST_ROOT, emulatedImageMeasurements } from './emulated-image.js';
export type { EmulatedImage } from './emulated-image.js';
export {
  createEmulatedNsmSource,
  createNitroNsmSource,
  DEFAULT_NSM_HELPER,
  NsmError,
  nsmAttestationDocument,
  nsmAttestationRequest,
} from './nsm-source.js';
export type { EmulatedNsmSource, NsmSource } from './nsm-source.js';
export {
  answerChallenge,
  CHALLENGE_BYTES,
  createChallenge,
  rawX25519PublicKey,
  X25519_PUBLIC_KEY_BYTES,
} from './possession-proof.js';
export type { Challenge } from './possession-proof.js';
