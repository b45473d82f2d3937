// The browser-safe door of attestation: what runs in a browser as well as in Node (no node:
// imports, no Buffer anywhere in the files it reaches), for the client SDK and the page the
// gateway serves. index.ts is the door for Node code and re-exports all of this; a test walks the
// import graph from here and fails on any node: import.
export { verifyAttestationWeb, resolveWebTrustedRoots } from './web-verifier.js';
export type { WebVerificationResult, WebVerifyOptions } from './web-verifier.js';
export { fingerprint, loadWebTrustedRoots, TrustedRootError } from './web-chain.js';
export type { WebTrustedRoot } from './web-chain.js';
export type { WebCertificate } from './web-certificate.js';
export { CHECK_NAMES, DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_MAX_DOCUMENT_BYTES } from './checks.js';
export type { AttestationCheck, CheckName, VerificationResult } from './checks.js';
export { AttestationFailure, FAILURE_REASONS } from './failure.js';
export type { FailureReason } from './failure.js';
export type { AttestationDocument } from './document.js';
export type { PcrMeasurements } from './measurements.js';
export { AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256 } from './aws-root.js';
export { bytesEqual, concatBytes, fromBase64, fromHex, toBase64, toHex } from './bytes.js';
