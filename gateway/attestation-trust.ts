// What the gateway trusts an enclave on, read once at start: the pinned measurements, and the
// roots. The AWS Nitro Enclaves root always; the emulated NSM's throwaway root only when an
// explicitly insecure flag names its file (re-read when the file changes: each emulated enclave
// start makes a new root). Or, for routing tests, nothing at all, which says so everywhere.
import type { PcrMeasurements } from '../attestation/index.js';
import { readMeasurementsFile } from '../attestation/index.js';
import { OptionError } from '../common/index.js';
import type { GatewayConfig } from './config.js';

export type TrustMode = 'aws-root' | 'insecure-emulated-nsm-root' | 'insecure-skipped';

export interface AttestationTrust {
  mode: TrustMode;
  expectedPcrs?: PcrMeasurements;
  /** The emulated NSM's root certificate file (insecure-emulated-nsm-root only). */
  emulatedRootFile?: string;
  allowDebugMode: boolean;
  intervalMs: number;
  retryMs: number;
  maxAgeMs: number;
}

export const TRUST_WARNINGS: Readonly<Record<Exclude<TrustMode, 'aws-root'>, string>> = {
  'insecure-emulated-nsm-root':
    "INSECURE: the emulated NSM's throwaway root is trusted: attestation proves nothing about the enclave (local emulation only)",
  'insecure-skipped': 'INSECURE: attestation is skipped: secure requests go to members that were never attested',
};

/** Reads the measurements file; an unreadable or malformed one stops the gateway (OptionError, exit 2). */
export async function loadAttestationTrust(config: GatewayConfig): Promise<AttestationTrust | undefined> {
  if (config.secureUpstream.length === 0) return undefined;
  const timing = {
    allowDebugMode: config.attestationAllowDebugMode,
    intervalMs: config.attestationIntervalMs,
    retryMs: config.attestationRetryMs,
    maxAgeMs: config.attestationMaxAgeMs,
  };
  if (config.insecureSkipAttestation) return { mode: 'insecure-skipped', ...timing };
  let expectedPcrs: PcrMeasurements;
  try {
    expectedPcrs = await readMeasurementsFile(config.attestationPcrs!);
  } catch (error) {
    throw new OptionError(`--attestation-pcrs: ${(error as Error).message}`, { cause: error });
  }
  if (!config.insecureTrustEmulatedNsmRoot) return { mode: 'aws-root', expectedPcrs, ...timing };
  return {
    mode: 'insecure-emulated-nsm-root',
    expectedPcrs,
    emulatedRootFile: config.insecureTrustEmulatedNsmRoot,
    ...timing,
  };
}
