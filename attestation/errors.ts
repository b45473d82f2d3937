// Coded errors of the attestation API (ATT_…). A document that does not verify is not an error
// here: verifyAttestation reports it as a failed check with a reason (see failure.ts); only
// createAttestationVerifier's verifyOrThrow turns it into ATT_VERIFICATION_FAILED for callers that
// want an exception.
import { defineErrors } from '../common/index.js';

export const attestationErrors = defineErrors({
  ATT_VERIFICATION_FAILED: {
    statusCode: 503,
    message:
      "The enclave's attestation document did not verify, so the secure route stays closed: see the failed check's reason",
  },
  ATT_ROOT_INVALID: {
    statusCode: 500,
    message:
      'A trusted root is not a PEM or DER X.509 certificate: give the AWS Nitro Enclaves root (the default) or the emulated NSM root',
  },
  ATT_MEASUREMENTS_INVALID: {
    statusCode: 500,
    message:
      'The measurements file is not what "nitro-cli build-enclave" prints: {"Measurements": {"HashAlgorithm", "PCR0", "PCR1", "PCR2"}} with 96 hex digits per PCR',
  },
  ATT_OPTION_INVALID: {
    statusCode: 500,
    message: 'An attestation verifier option is invalid: see the message for which one',
  },
  ATT_NSM_REQUEST_INVALID: {
    statusCode: 400,
    message:
      'The attestation request is invalid: public_key must be at most 1024 bytes, user_data and nonce at most 512',
  },
});
