// What the gateway's plugins share: built once by buildGateway, handed to each plugin as its options.
import type { GatewayConfig } from './config.js';
import type { GatewayMetrics } from './metrics.js';
import type { PrivacyPolicy, PrivacyRoute } from './policy.js';
import type { UpstreamGroup, UpstreamMember } from './upstream-group.js';
import type { AttestationGate } from './attestation-gate.js';
import type { AttestationTrust } from './attestation-trust.js';

/** Where a request was routed, and to whom; set once per request, read by hooks and logs. */
export interface RequestPrivacy {
  route: PrivacyRoute;
  tenant: string | undefined;
  upgraded: boolean;
  member?: UpstreamMember;
  upstreamStartedAt?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    privacy: RequestPrivacy | undefined;
  }
}

export const ROUTE_PATHS: Readonly<Record<PrivacyRoute, string>> = {
  public: '/predict-public',
  secure: '/predict-secure',
};

/** Set while the gateway closes: new requests are refused and connections not kept. */
export interface GatewayState {
  closing: boolean;
}

// A type rather than an interface, so that it is a valid Fastify plugin options object.
export type GatewayContext = {
  config: GatewayConfig;
  policy: PrivacyPolicy;
  metrics: GatewayMetrics;
  groups: Readonly<Record<PrivacyRoute, UpstreamGroup>>;
  state: GatewayState;
  /** What secure members are trusted on; undefined without secure upstreams. */
  trust: AttestationTrust | undefined;
  /** The secure route's attestation gate; undefined when attestation is skipped (insecure) or there is no secure route. */
  gate: AttestationGate | undefined;
  /** Brings computed gauges (attestation age) up to date before /metrics is rendered. */
  beforeScrape: () => void;
};
