// The gateway's Prometheus metrics, on a registry the caller owns. The same names serve both
// routes; the `route` label tells them apart.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// 1 ms to 10 s: from the gateway's own cost on a trivial upstream to a queued inference.
export const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createGatewayMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'mpg_gateway_' });
  return {
    registry,
    requests: new Counter({ name: 'mpg_gateway_requests_total', help: 'Requests answered, by privacy route and HTTP status', labelNames: ['route', 'status'] as const, registers: [registry] }),
    requestDuration: new Histogram({ name: 'mpg_gateway_request_duration_seconds', help: 'Whole requests through the gateway, by privacy route', labelNames: ['route'] as const, buckets: DURATION_BUCKETS_SECONDS, registers: [registry] }),
    upstreamDuration: new Histogram({ name: 'mpg_gateway_upstream_duration_seconds', help: "The upstream leg: from dispatch to the upstream's response headers, by privacy route", labelNames: ['route'] as const, buckets: DURATION_BUCKETS_SECONDS, registers: [registry] }),
    inFlight: new Gauge({ name: 'mpg_gateway_requests_in_flight', help: 'Requests being served, by privacy route', labelNames: ['route'] as const, registers: [registry] }),
    upstreamUp: new Gauge({ name: 'mpg_gateway_upstream_up', help: 'Whether an upstream member is healthy (1) or not (0)', labelNames: ['route', 'member'] as const, registers: [registry] }),
    upstreamEjections: new Counter({ name: 'mpg_gateway_upstream_ejections_total', help: 'Members taken out of rotation after a transport error', labelNames: ['route', 'member'] as const, registers: [registry] }),
    policyDecisions: new Counter({ name: 'mpg_gateway_policy_decisions_total', help: 'Privacy policy outcomes: upgraded to secure, or rejected with a code', labelNames: ['decision'] as const, registers: [registry] }),
    errors: new Counter({ name: 'mpg_gateway_errors_total', help: 'Error answers made by the gateway, by code', labelNames: ['route', 'code'] as const, registers: [registry] }),
    bytesIn: new Counter({ name: 'mpg_gateway_request_bytes_total', help: 'Request body bytes received from clients, by privacy route', labelNames: ['route'] as const, registers: [registry] }),
    bytesOut: new Counter({ name: 'mpg_gateway_response_bytes_total', help: 'Response body bytes relayed from upstreams, by privacy route', labelNames: ['route'] as const, registers: [registry] }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
