// What the gateway's parts share: built once by createGateway, passed to each part.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CodedError } from '../common/index.js';
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
  interface FastifyContextConfig {
    /** The route a request's path asks for; only the two predict routes have one. */
    privacyRoute?: PrivacyRoute;
  }
}

export const ROUTE_PATHS: Readonly<Record<PrivacyRoute, string>> = { public: '/predict-public', secure: '/predict-secure' };

export interface GatewayContext {
  app: FastifyInstance;
  config: GatewayConfig;
  policy: PrivacyPolicy;
  metrics: GatewayMetrics;
  groups: Readonly<Record<PrivacyRoute, UpstreamGroup>>;
  state: { closing: boolean };
  /** What secure members are trusted on; undefined without secure upstreams. */
  trust: AttestationTrust | undefined;
  /** The secure route's attestation gate; undefined when attestation is skipped (insecure) or there is no secure route. */
  gate: AttestationGate | undefined;
  /** Brings computed gauges (attestation age) up to date before /metrics is rendered. */
  beforeScrape: () => void;
  /** Answers with a coded error, counting and logging it: the one way the gateway says no. */
  sendError: (request: FastifyRequest, reply: FastifyReply, error: CodedError) => FastifyReply;
}
