// The gateway: mixed-privacy routing on the parent instance, failing closed, with per-route metrics.
import type { Gateway, GatewayDependencies } from './app.js';
import type { GatewayConfig } from './config.js';
import type { PrivacyPolicy } from './policy.js';
import { loadAttestationTrust } from './attestation-trust.js';

export { gatewayCommand } from './command.js';
export type { Gateway, GatewayDependencies } from './app.js';
export { gatewayOptions, parseGatewayConfig } from './config.js';
export type { GatewayConfig } from './config.js';
export { gatewayErrors } from './errors.js';
export { OPEN_POLICY, PolicyError, classifyRequest, loadPolicyFile, parsePolicy } from './policy.js';
export type { PrivacyPolicy, PrivacyRoute } from './policy.js';

export { loadAttestationTrust, TRUST_WARNINGS } from './attestation-trust.js';
export type { AttestationTrust, TrustMode } from './attestation-trust.js';

/**
 * Reads what the configuration names (the attestation trust: --attestation-pcrs ...) unless given,
 * then builds the gateway (buildGateway); nothing listens until the caller's listen().
 */
export async function loadGateway(
  config: GatewayConfig,
  policy: PrivacyPolicy,
  dependencies: GatewayDependencies = {},
): Promise<Gateway> {
  const attestationTrust = dependencies.attestationTrust ?? (await loadAttestationTrust(config));
  return (await import('./app.js')).buildGateway(config, policy, {
    ...dependencies,
    ...(attestationTrust ? { attestationTrust } : {}),
  });
}
