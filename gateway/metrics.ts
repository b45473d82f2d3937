// The gateway's Prometheus metrics, on a registry the caller owns. The same names serve both
// routes; the `route` label tells them apart.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { durationBucketsUpTo } from '../common/index.js';

// 0.5 ms to 10 s: from the gateway's own cost on a trivial upstream to a queued inference.
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
// The defaults: 30 s to receive a request, then 30 s for the upstream's response headers.
const DEFAULT_LONGEST_REQUEST_SECONDS = 60;

export function createGatewayMetrics(
  registry = new Registry(),
  longestRequestSeconds = DEFAULT_LONGEST_REQUEST_SECONDS,
) {
  collectDefaultMetrics({ register: registry, prefix: 'mpg_gateway_' });
  const durationBuckets = durationBucketsUpTo(DURATION_BUCKETS_SECONDS, longestRequestSeconds);
  return {
    registry,
    requests: new Counter({
      name: 'mpg_gateway_requests_total',
      help: 'Requests answered, by privacy route and HTTP status',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'mpg_gateway_request_duration_seconds',
      help: 'Whole requests through the gateway, by privacy route and status class (2xx, 4xx, 5xx)',
      labelNames: ['route', 'status_class'] as const,
      buckets: durationBuckets,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'mpg_gateway_upstream_duration_seconds',
      help: "The upstream leg: from dispatch to the upstream's response headers, by privacy route and the upstream's status class",
      labelNames: ['route', 'status_class'] as const,
      buckets: durationBuckets,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'mpg_gateway_requests_in_flight',
      help: 'Requests being served, by privacy route',
      labelNames: ['route'] as const,
      registers: [registry],
    }),
    upstreamUp: new Gauge({
      name: 'mpg_gateway_upstream_up',
      help: 'Whether an upstream member is healthy (1) or not (0)',
      labelNames: ['route', 'member'] as const,
      registers: [registry],
    }),
    upstreamEjections: new Counter({
      name: 'mpg_gateway_upstream_ejections_total',
      help: 'Members taken out of rotation after a transport error',
      labelNames: ['route', 'member'] as const,
      registers: [registry],
    }),
    policyDecisions: new Counter({
      name: 'mpg_gateway_policy_decisions_total',
      help: 'Privacy policy outcomes: upgraded to secure, or rejected with a code',
      labelNames: ['decision'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'mpg_gateway_errors_total',
      help: 'Error answers made by the gateway, by code',
      labelNames: ['route', 'code'] as const,
      registers: [registry],
    }),
    bytesIn: new Counter({
      name: 'mpg_gateway_request_bytes_total',
      help: 'Request body bytes received from clients, by privacy route',
      labelNames: ['route'] as const,
      registers: [registry],
    }),
    attestationVerified: new Gauge({
      name: 'mpg_gateway_attestation_verified',
      help: 'Whether a secure member holds a verified attestation (1) or not (0)',
      labelNames: ['member'] as const,
      registers: [registry],
    }),
    attestationAge: new Gauge({
      name: 'mpg_gateway_attestation_age_seconds',
      help: "Seconds since a secure member's attestation was last verified; -1 when it holds none",
      labelNames: ['member'] as const,
      registers: [registry],
    }),
    attestationVerifications: new Counter({
      name: 'mpg_gateway_attestation_verifications_total',
      help: 'Attestations of secure members, by result (ok, failed)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    attestationFailures: new Counter({
      name: 'mpg_gateway_attestation_failures_total',
      help: "Attestations that failed, by reason (the verifier's reasons, and unreachable, bad_response, identity)",
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    attestationDuration: new Histogram({
      name: 'mpg_gateway_attestation_duration_seconds',
      help: 'One attestation of a secure member: fetching the document and verifying it',
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    }),
    attestationTrust: new Gauge({
      name: 'mpg_gateway_attestation_trust',
      help: 'What secure members are trusted on: 1 for the active mode (aws_root; insecure_emulated_nsm_root and insecure_skipped say attestation proves nothing)',
      labelNames: ['mode'] as const,
      registers: [registry],
    }),
    bytesOut: new Counter({
      name: 'mpg_gateway_response_bytes_total',
      help: 'Response body bytes relayed from upstreams, by privacy route',
      labelNames: ['route'] as const,
      registers: [registry],
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
