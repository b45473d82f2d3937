// The members of one route (public or secure): keep-alive pools, active health checks, ejection
// on transport errors, and the choice of member by fewest requests in flight.
import { Pool } from 'undici';
import { MemberConnection } from './member-connection.js';
import type { PrivacyRoute } from './policy.js';
import type { ChallengeOutcome, ConnectionGuard, ReadyzReport } from './proven-connector.js';
import { provenConnector, readyzOn } from './proven-connector.js';
import type { UpstreamAddress } from './upstream-url.js';
import { parseUpstreamUrl } from './upstream-url.js';

/** How each member's keep-alive pool is sized and timed, and how often members are checked. */
export interface UpstreamPoolOptions {
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
}

// An ejected member sits out this many health-check intervals before a passing check can bring it
// back: a member whose /readyz answers while its /predict hangs must not be re-admitted at once.
export const EJECTION_INTERVALS = 5;

export interface UpstreamObserver {
  onHealthChange?(member: UpstreamMember, healthy: boolean, reason: string): void;
}

export type { ReadyzReport } from './proven-connector.js';

/**
 * A condition beyond /readyz for a member to take traffic (the secure route's attestation). Asked
 * after each passing health check; told whenever the member falls out of rotation. Its members
 * are checked on a connection of their own each time, which the gate attests on, and every
 * connection their pools open must prove the attested key first (proven-connector.ts).
 */
export interface MemberGate {
  /** The key a new connection for requests must prove: the attested one, only while its attestation holds. */
  connectionKey(member: UpstreamMember): Uint8Array | undefined;
  /** The key a health check challenges: the last attested one, kept until another process answers. */
  challengeKey(member: UpstreamMember): Uint8Array | undefined;
  /**
   * Whether the member holds an admission for the process behind it now (asked before admit(),
   * synchronously): when it does not, it is taken out of rotation before anything is awaited.
   */
  holds(member: UpstreamMember, readyz: ReadyzReport): boolean;
  /** undefined: admitted; otherwise why not. Any attestation runs on `connection`, the health check's. */
  admit(member: UpstreamMember, readyz: ReadyzReport, connection: MemberConnection): Promise<string | undefined>;
  forget(member: UpstreamMember): void;
  /** A connection opened for requests did not prove the attested key; returns why, for the log and the client. */
  connectionRefused(member: UpstreamMember, outcome: ChallengeOutcome | undefined, cause: unknown): string;
}

export class UpstreamMember {
  readonly route: PrivacyRoute;
  readonly url: string;
  readonly address: UpstreamAddress;
  readonly pool: Pool;
  /**
   * Health checks have a connection of their own: behind a busy pool a /readyz would queue after
   * the traffic and time out, and a member that is merely loaded would be thrown out.
   */
  readonly healthPool: Pool;
  healthy = false;
  inFlight = 0;
  /** performance.now() before which a passing health check does not re-admit the member. */
  ejectedUntil = 0;
  lastProblem: string | undefined = 'not checked yet';
  /** Whether the member is out because its attestation did not verify (not because it is unwell). */
  refusedByGate = false;
  /** Counts the times the member fell out of rotation for being unwell: an admission begun before one is void. */
  outages = 0;
  /**
   * The OHTTP key config (RFC 9458 section 3) of a secure member, set by the attestation gate only
   * once the member's attestation binds it, cleared when the gate forgets the member. Encrypted
   * requests are routed by its key id.
   */
  ohttpKeyConfig: { keyId: number; encoded: Uint8Array } | undefined = undefined;

  /** `guard`: every connection the pools open must first prove the member's attested key (secure members). */
  constructor(route: PrivacyRoute, url: string, options: UpstreamPoolOptions, guard?: ConnectionGuard) {
    const address = parseUpstreamUrl(url);
    this.route = route;
    this.url = url;
    this.address = address;
    const connect = guard
      ? provenConnector(address, guard, {
          connectTimeoutMs: options.connectTimeoutMs,
          proofTimeoutMs: options.healthTimeoutMs,
        })
      : { timeout: options.connectTimeoutMs, ...(address.socketPath ? { socketPath: address.socketPath } : {}) };
    this.pool = new Pool(address.origin ?? 'http://localhost', {
      connections: options.connections,
      pipelining: 1,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: 60_000,
      connect,
    });
    this.healthPool = new Pool(address.origin ?? 'http://localhost', {
      connections: 1,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      connect,
    });
  }
}

export class UpstreamGroup {
  readonly route: PrivacyRoute;
  readonly members: readonly UpstreamMember[];
  readonly #options: UpstreamPoolOptions;
  readonly #observer: UpstreamObserver;
  readonly #gate: MemberGate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #stopped = false;

  constructor(
    route: PrivacyRoute,
    urls: readonly string[],
    options: UpstreamPoolOptions,
    observer: UpstreamObserver = {},
    gate?: MemberGate,
  ) {
    this.route = route;
    this.members = urls.map((url) => {
      if (!gate) return new UpstreamMember(route, url, options);
      const guard: ConnectionGuard = {
        connectionKey: () => gate.connectionKey(member),
        refused: (outcome, cause) => this.#connectionRefused(member, outcome, cause),
      };
      const member: UpstreamMember = new UpstreamMember(route, url, options, guard);
      return member;
    });
    this.#options = options;
    this.#observer = observer;
    this.#gate = gate;
    // Behind a gate, a member is untrusted until the gate has admitted it.
    if (gate) {
      for (const member of this.members) {
        member.refusedByGate = true;
        member.lastProblem = 'attestation: not attested yet';
      }
    }
  }

  get healthyCount(): number {
    return this.members.filter((member) => member.healthy).length;
  }

  /** The healthy member with the fewest requests in flight, rotating among ties. */
  pick(): UpstreamMember | undefined {
    let best: UpstreamMember | undefined;
    const count = this.members.length;
    for (let offset = 0; offset < count; offset++) {
      const member = this.members[(this.#next + offset) % count]!;
      if (member.healthy && (!best || member.inFlight < best.inFlight)) best = member;
    }
    this.#next = (this.#next + 1) % Math.max(count, 1);
    return best;
  }

  /** Takes a member out of rotation at once; the health checks bring it back when it answers. */
  eject(member: UpstreamMember, reason: string): void {
    member.ejectedUntil = performance.now() + EJECTION_INTERVALS * this.#options.healthIntervalMs;
    this.#setHealth(member, false, reason);
  }

  /** Checks every member now and then at the configured interval. */
  async start(): Promise<void> {
    await this.checkAll();
    const tick = () => {
      this.#timer = setTimeout(() => {
        void this.checkAll().finally(() => {
          if (!this.#stopped) tick();
        });
      }, this.#options.healthIntervalMs);
      this.#timer.unref();
    };
    tick();
  }

  async checkAll(): Promise<void> {
    await Promise.all(this.members.map((member) => this.#check(member)));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await Promise.all(
      this.members
        .flatMap((member) => [member.pool, member.healthPool])
        .map((pool) => pool.close().catch(() => pool.destroy())),
    );
  }

  async #check(member: UpstreamMember): Promise<void> {
    if (this.#stopped) return;
    if (this.#gate) return this.#checkGated(member, this.#gate);
    try {
      const response = await member.healthPool.request({
        method: 'GET',
        path: '/readyz',
        headersTimeout: this.#options.healthTimeoutMs,
        bodyTimeout: this.#options.healthTimeoutMs,
        signal: AbortSignal.timeout(this.#options.healthTimeoutMs),
      });
      await response.body.dump();
      if (response.statusCode !== 200) {
        this.#setHealth(member, false, `/readyz answered ${response.statusCode}`);
        return;
      }
      if (performance.now() < member.ejectedUntil || this.#stopped) return;
      this.#setHealth(member, true, 'ready');
    } catch (error) {
      this.#setHealth(member, false, `/readyz failed: ${describeError(error)}`);
    }
  }

  /**
   * A gated member is checked on a new connection each time: a kept-alive one could still reach
   * the attested process after something else took over the member's address. The check
   * challenges the last attested key; the gate attests, when it must, on this same connection.
   */
  async #checkGated(member: UpstreamMember, gate: MemberGate): Promise<void> {
    let connection: MemberConnection | undefined;
    try {
      connection = await MemberConnection.open(member.address, this.#options.connectTimeoutMs);
      const { statusCode, report } = await readyzOn(
        connection,
        gate.challengeKey(member),
        this.#options.healthTimeoutMs,
      );
      // A member that is not ready (503) is unwell; any other answer without the proof asked for
      // is the gate's to judge (it is not the attested process).
      if (statusCode !== 200 && (report.proofOk !== false || statusCode === 503)) {
        this.#setHealth(member, false, `/readyz answered ${statusCode}`);
        return;
      }
      if (performance.now() < member.ejectedUntil || this.#stopped) return;
      // Not one request may reach a process the gate has not admitted: out first, then attest.
      if (!gate.holds(member, report) && member.healthy)
        this.#setHealth(member, false, 'attestation: being attested', true);
      const outages = member.outages;
      const refused = await gate.admit(member, report, connection);
      // Ejected or found unwell while the gate was working: that verdict stands.
      if (this.#stopped || member.outages !== outages || performance.now() < member.ejectedUntil) return;
      if (refused === undefined) this.#setHealth(member, true, 'ready');
      else this.#setHealth(member, false, `attestation: ${refused}`, true);
    } catch (error) {
      this.#setHealth(member, false, `/readyz failed: ${describeError(error)}`);
    } finally {
      connection?.close();
    }
  }

  /** A connection opened for requests could not prove the attested key: out of rotation at once. */
  #connectionRefused(member: UpstreamMember, outcome: ChallengeOutcome | undefined, cause: unknown): string {
    const why = this.#gate!.connectionRefused(member, outcome, cause);
    this.#setHealth(member, false, `attestation: ${why}`, true);
    return why;
  }

  #setHealth(member: UpstreamMember, healthy: boolean, reason: string, refusedByGate = false): void {
    const changed = member.healthy !== healthy;
    member.healthy = healthy;
    member.lastProblem = healthy ? undefined : reason;
    member.refusedByGate = !healthy && refusedByGate;
    // Out of rotation for being unwell: whatever comes back must prove itself again.
    if (!healthy && !refusedByGate) {
      member.outages += 1;
      this.#gate?.forget(member);
    }
    if (changed) this.#observer.onHealthChange?.(member, healthy, reason);
  }
}

export function describeError(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  return code ? `${code}${message && !message.includes(code) ? ` (${message})` : ''}` : (message ?? String(error));
}
