// The one place that knows which member a proxied request goes to and how it gets there: the
// choice of member (or the coded 503 that says why there is none), the count of requests each
// holds, and an undici Dispatcher that sends each request down its member's pool.
//
// Why a key per member: @fastify/reply-from hands its dispatcher nothing of the request but
// undici's dispatch options, so the member must travel in `origin`. Each member's key is a
// reserved `.invalid` name (RFC 6761) made of its route and place: two members never share one,
// even when two URLs name the same address, and no network could resolve one. Keys are made and
// read here only; the Host header the member sees is its own (hostOf).
//
// The pools belong to their UpstreamGroup, which also health-checks through them: closing or an
// error here never destroys a pool (undici's Agent would own and destroy the pools it is given).
import { Dispatcher } from 'undici';
import { gatewayErrors } from './errors.js';
import type { PrivacyRoute } from './policy.js';
import type { UpstreamGroup, UpstreamMember } from './upstream-group.js';
import { parseUpstreamUrl } from './upstream-url.js';

/** How many requests one member may hold: its pool's connections, and those waiting for one. */
export interface MemberCapacity {
  connections: number;
  upstreamQueue: number;
}

export class MemberDispatcher extends Dispatcher {
  readonly #groups: Readonly<Record<PrivacyRoute, UpstreamGroup>>;
  readonly #maxPerMember: number;
  readonly #memberByKey = new Map<string, UpstreamMember>();
  readonly #keyByMember = new Map<UpstreamMember, string>();
  readonly #hostByMember = new Map<UpstreamMember, string>();

  constructor(groups: Readonly<Record<PrivacyRoute, UpstreamGroup>>, capacity: MemberCapacity) {
    super();
    this.#groups = groups;
    this.#maxPerMember = capacity.connections + capacity.upstreamQueue;
    for (const group of Object.values(groups)) {
      group.members.forEach((member, index) => {
        const key = `http://${member.route}-${index}.member.invalid`;
        this.#memberByKey.set(key, member);
        this.#keyByMember.set(member, key);
        const origin = parseUpstreamUrl(member.url).origin;
        this.#hostByMember.set(member, origin ? new URL(origin).host : 'localhost');
      });
    }
  }

  /** Throws the coded 503 at once when no member of `route` could take a request. */
  ensureRoutable(route: PrivacyRoute): void {
    const group = this.#groups[route];
    if (group.healthyCount === 0) throw noMemberError(group);
  }

  /**
   * The healthy member of `route` with the fewest requests in flight, now counting this one; the
   * caller calls release() when the request is done. Throws the coded 503 that says why none can
   * take it: a secure request is refused here, before any byte of it is sent anywhere. A member
   * whose connections are all busy and whose queue is full takes no more: the answer is a fast
   * 503, not a wait behind requests that may never finish.
   */
  choose(route: PrivacyRoute): UpstreamMember {
    const group = this.#groups[route];
    const member = group.pick();
    if (!member) throw noMemberError(group);
    return this.#take(member, route);
  }

  #take(member: UpstreamMember, route: PrivacyRoute): UpstreamMember {
    if (member.inFlight >= this.#maxPerMember) {
      throw gatewayErrors.GW_UPSTREAM_BUSY(
        `Every ${route} member that could take the request is holding ${this.#maxPerMember} requests (--connections plus --upstream-queue); retry after Retry-After`,
        { headers: { 'retry-after': '1' } },
      );
    }
    member.inFlight++;
    return member;
  }

  /**
   * For an OHTTP request (message/ohttp-req) on the secure route: the healthy secure member that
   * holds the key the request was encrypted to (its first byte), with the fewest in flight. The
   * request is never decrypted here; a key no healthy member holds is 422, so the client fetches
   * the keys again.
   */
  chooseByKeyId(keyId: number): UpstreamMember {
    const group = this.#groups.secure;
    let best: UpstreamMember | undefined;
    for (const member of group.members) {
      if (member.healthy && member.ohttpKeyConfig?.keyId === keyId && (!best || member.inFlight < best.inFlight))
        best = member;
    }
    if (!best) {
      if (group.healthyCount === 0) throw noMemberError(group);
      throw gatewayErrors.GW_OHTTP_UNKNOWN_KEY(
        `No attested secure upstream holds OHTTP key id ${keyId}; fetch /.well-known/ohttp-gateway again, re-attest, and retry once`,
      );
    }
    return this.#take(best, 'secure');
  }

  release(member: UpstreamMember): void {
    member.inFlight--;
  }

  /** What reply-from's getUpstream returns for a request to `member`. */
  keyOf(member: UpstreamMember): string {
    return this.#keyByMember.get(member)!;
  }

  /** The Host header for a request to `member`: its own host and port, or localhost over a Unix socket. */
  hostOf(member: UpstreamMember): string {
    return this.#hostByMember.get(member)!;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const key = typeof options.origin === 'string' ? options.origin : options.origin?.origin;
    const member = key === undefined ? undefined : this.#memberByKey.get(key);
    if (!member) throw new Error(`no upstream member for ${key}`);
    return member.pool.dispatch(options, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    if (callback) return void queueMicrotask(callback);
    return Promise.resolve();
  }

  override destroy(): Promise<void>;
  override destroy(error: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(first?: Error | null | (() => void), second?: () => void): Promise<void> | void {
    const callback = typeof first === 'function' ? first : second;
    if (callback) return void queueMicrotask(callback);
    return Promise.resolve();
  }
}

function noMemberError(group: UpstreamGroup) {
  const retry = { headers: { 'retry-after': '1' } };
  const refused = group.members.filter((candidate) => candidate.refusedByGate);
  if (group.route === 'secure' && refused.length > 0) {
    // Members that answer but did not prove what they are: say so, and why.
    const why = refused.map((candidate) => candidate.lastProblem?.replace(/^attestation: /, '')).join('; ');
    return gatewayErrors.GW_SECURE_NOT_ATTESTED(
      `No secure upstream holds a verified attestation (${why}); the request was not sent anywhere else`,
      retry,
    );
  }
  const why = group.members.length === 0 ? 'none is configured' : `none of ${group.members.length} is healthy`;
  return group.route === 'secure'
    ? gatewayErrors.GW_NO_SECURE_UPSTREAM(
        `No secure upstream can take the request (${why}); it was not sent anywhere else`,
        retry,
      )
    : gatewayErrors.GW_NO_HEALTHY_UPSTREAM(`No public upstream can take the request (${why})`, retry);
}
