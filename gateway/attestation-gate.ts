// The attestation gate of the secure route. A secure member takes traffic only while its
// attestation holds: the health check (upstream-group.ts) asks the gate after every passing
// /readyz, and the gate answers from what it verified, attesting again
//   - before the member's first request,
//   - every --attestation-interval-ms,
//   - whenever the process behind the member is not the one attested (/readyz reports another
//     boot key),
//   - after the member failed a health check or a request (the gate forgets it).
// Every health check runs on a new connection and challenges the last attested boot key; every
// connection opened for requests must answer that challenge before it carries one
// (proven-connector.ts). A process that answers at the member's address without the proof, and
// claims no other boot key, is refused without being attested: it learns nothing but challenges.
// Attesting: on the health check's own connection, a fresh nonce, GET /attestation?nonce=, every
// check of attestation/ (chain to the trusted root, COSE signature, pinned PCRs, the nonce,
// freshness); the document's public_key must hash to the boot key /readyz gave on that connection,
// and the process on it must prove it holds that key's private half. Requests never wait for any
// of this: routing reads a boolean. What this cannot do: stop whoever can read an already proven
// connection on the parent (root, through the relay); the client's end-to-end encryption to the
// attested key (OHTTP) is what protects a secure request's content from the parent.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { AttestationDocument, AttestationVerifier } from '../attestation/index.js';
import { AWS_NITRO_ROOT_G1_PEM, createAttestationVerifier, createNonce } from '../attestation/index.js';
import type { AttestationTrust } from './attestation-trust.js';
import type { GatewayMetrics } from './metrics.js';
import type { MemberConnection } from './member-connection.js';
import type { ChallengeOutcome, ReadyzReport } from './proven-connector.js';
import { readyzOn } from './proven-connector.js';
import type { MemberGate, UpstreamMember } from './upstream-group.js';
import { describeError } from './upstream-group.js';

/** Far above a genuine document (about 4.5 KiB), far below anything that could hurt. */
const MAX_DOCUMENT_BYTES = 16 * 1024;
const ATTESTATION_TIMEOUT_MS = 5_000;

interface MemberAttestation {
  /** Bumped by forget(): an attestation begun before it is void. */
  generation: number;
  verifiedAt?: number;
  /**
   * The last attested document's public_key (raw X25519): the enclave's boot key. Kept after
   * forget(), for the health checks to challenge, until a process reporting another key answers.
   */
  bootKey?: Uint8Array;
  /** Its SHA-256 (hex), as /readyz reports it. */
  bootKeySha256?: string;
  moduleId?: string;
  failedAt?: number;
  problem?: string;
}

export interface MemberAttestationStatus {
  attested: boolean;
  ageSeconds?: number;
  moduleId?: string;
  problem?: string;
}

/** Learns the OHTTP key config an attested member serves, once its document binds it (ohttp-key-binding.ts). */
export interface KeyConfigBinding {
  /** The bound config, undefined when the member serves none; throws AttestationProblem when it does not bind. */
  bind(
    member: UpstreamMember,
    connection: MemberConnection,
    document: AttestationDocument,
  ): Promise<UpstreamMember['ohttpKeyConfig']>;
}

const NO_KEY_CONFIG: KeyConfigBinding = { bind: () => Promise.resolve(undefined) };

export class AttestationGate implements MemberGate {
  readonly trust: AttestationTrust;
  readonly #metrics: GatewayMetrics;
  readonly #log: FastifyBaseLogger;
  readonly #states = new Map<UpstreamMember, MemberAttestation>();
  #verifier: AttestationVerifier | undefined;
  #rootStamp = '';

  readonly #keyBinding: KeyConfigBinding;
  /** Milliseconds on a monotonic clock: passed in so that tests move time instead of sleeping. */
  readonly #now: () => number;

  constructor(
    trust: AttestationTrust,
    metrics: GatewayMetrics,
    log: FastifyBaseLogger,
    keyBinding: KeyConfigBinding = NO_KEY_CONFIG,
    now: () => number = () => performance.now(),
  ) {
    this.trust = trust;
    this.#now = now;
    this.#keyBinding = keyBinding;
    this.#metrics = metrics;
    this.#log = log;
  }

  connectionKey(member: UpstreamMember): Uint8Array | undefined {
    const state = this.#state(member);
    return state.verifiedAt === undefined ? undefined : state.bootKey;
  }

  challengeKey(member: UpstreamMember): Uint8Array | undefined {
    return this.#state(member).bootKey;
  }

  holds(member: UpstreamMember, readyz: ReadyzReport): boolean {
    const state = this.#state(member);
    // The same boot key, and proven: the process that answered holds the attested key's private half.
    return state.verifiedAt !== undefined && readyz.publicKeySha256 === state.bootKeySha256 && readyz.proofOk === true;
  }

  async admit(member: UpstreamMember, readyz: ReadyzReport, connection: MemberConnection): Promise<string | undefined> {
    const state = this.#state(member);
    const now = this.#now();
    if (readyz.proofOk === false) {
      // Challenged for the attested key and not proven. Only a process that says it is another
      // enclave (another boot key) is worth attesting; anything else is refused unasked.
      if (!this.#claimsAnotherKey(state, readyz))
        return this.#refuseUnproven(
          member,
          state,
          'the process at its address did not prove it holds the attested boot key (another process may be listening there)',
        );
      this.#log.warn({ member: member.url }, 'the process behind this member reports another boot key: attesting it');
      this.#dropBootKey(member, state);
    } else if (state.verifiedAt !== undefined) {
      const sameBoot = this.holds(member, readyz);
      if (sameBoot && now - state.verifiedAt < this.trust.intervalMs) return undefined;
      if (!sameBoot) {
        this.#log.warn(
          { member: member.url },
          'the process behind this member is not the one attested (its boot key changed): attesting it again',
        );
        this.#dropBootKey(member, state);
      }
    }
    if (state.verifiedAt === undefined && state.failedAt !== undefined && now - state.failedAt < this.trust.retryMs)
      return state.problem;
    return this.#attest(member, readyz, state, connection);
  }

  connectionRefused(member: UpstreamMember, outcome: ChallengeOutcome | undefined, cause: unknown): string {
    const state = this.#state(member);
    if (outcome && this.#claimsAnotherKey(state, outcome.report)) {
      this.#dropBootKey(member, state);
      state.problem = 'the process behind it reports another boot key and must be attested first';
      return state.problem;
    }
    const detail = outcome
      ? `it answered the challenge with ${outcome.statusCode} and no valid proof`
      : `its answer to the challenge was unreadable (${describeError(cause)})`;
    return this.#refuseUnproven(
      member,
      state,
      `a new connection to it did not prove it holds the attested boot key: ${detail} (another process may be listening at its address)`,
    );
  }

  /** The member's attestation no longer holds: it must be attested again before its next request. */
  forget(member: UpstreamMember): void {
    const state = this.#state(member);
    state.generation += 1;
    member.ohttpKeyConfig = undefined;
    if (state.verifiedAt === undefined) return;
    state.verifiedAt = undefined;
    this.#metrics.attestationVerified.set({ member: member.url }, 0);
  }

  status(member: UpstreamMember): MemberAttestationStatus {
    const state = this.#state(member);
    if (state.verifiedAt === undefined)
      return { attested: false, ...(state.problem ? { problem: state.problem } : {}) };
    return {
      attested: true,
      ageSeconds: Math.round((this.#now() - state.verifiedAt) / 100) / 10,
      ...(state.moduleId ? { moduleId: state.moduleId } : {}),
    };
  }

  /** Seconds since the member's last successful attestation, or -1 when it holds none. */
  ageSeconds(member: UpstreamMember): number {
    const verifiedAt = this.#state(member).verifiedAt;
    return verifiedAt === undefined ? -1 : (this.#now() - verifiedAt) / 1000;
  }

  #state(member: UpstreamMember): MemberAttestation {
    let state = this.#states.get(member);
    if (!state) this.#states.set(member, (state = { generation: 0 }));
    return state;
  }

  #claimsAnotherKey(state: MemberAttestation, readyz: ReadyzReport): boolean {
    return readyz.publicKeySha256 !== undefined && readyz.publicKeySha256 !== state.bootKeySha256;
  }

  /** Another process answers: nothing of the old one is challenged any more. */
  #dropBootKey(member: UpstreamMember, state: MemberAttestation): void {
    this.forget(member);
    state.bootKey = undefined;
    state.bootKeySha256 = undefined;
  }

  #refuseUnproven(member: UpstreamMember, state: MemberAttestation, problem: string): string {
    this.forget(member);
    const full = `unproven: ${problem}`;
    this.#metrics.attestationFailures.inc({ reason: 'unproven' });
    // Said once per episode: the health checks repeat the refusal every interval.
    if (state.problem !== full) this.#log.warn({ member: member.url }, `secure member refused: ${problem}`);
    state.problem = full;
    return full;
  }

  /** The verifier, rebuilt when the emulated root's file changes (every emulated enclave start writes a new root). */
  #currentVerifier(): AttestationVerifier {
    const rootFile = this.trust.emulatedRootFile;
    let stamp = 'aws';
    if (rootFile) {
      try {
        const info = statSync(rootFile);
        stamp = `${info.mtimeMs}:${info.size}:${info.ino}`;
      } catch (error) {
        throw new AttestationProblem(
          'root',
          `the emulated NSM root file ${rootFile} cannot be read (${describeError(error)})`,
        );
      }
    }
    if (!this.#verifier || stamp !== this.#rootStamp) {
      const trustedRoots = rootFile ? [AWS_NITRO_ROOT_G1_PEM, readFileSync(rootFile, 'utf8')] : [AWS_NITRO_ROOT_G1_PEM];
      this.#verifier = createAttestationVerifier({
        expectedPcrs: this.trust.expectedPcrs!,
        trustedRoots,
        allowDebugMode: this.trust.allowDebugMode,
        maxAgeMs: this.trust.maxAgeMs,
        requirePublicKey: true,
      });
      this.#rootStamp = stamp;
    }
    return this.#verifier;
  }

  async #attest(
    member: UpstreamMember,
    readyz: ReadyzReport,
    state: MemberAttestation,
    connection: MemberConnection,
  ): Promise<string | undefined> {
    const started = performance.now();
    const generation = state.generation;
    try {
      const verifier = this.#currentVerifier();
      const nonce = createNonce();
      const answer = await connection.get(`/attestation?nonce=${Buffer.from(nonce).toString('hex')}`, {
        maxBodyBytes: MAX_DOCUMENT_BYTES,
        timeoutMs: ATTESTATION_TIMEOUT_MS,
      });
      if (answer.statusCode !== 200)
        throw new AttestationProblem('bad_response', `GET /attestation answered ${answer.statusCode}`);
      const result = verifier.verify(answer.body, { nonce });
      if (!result.ok) {
        const failed = result.checks.at(-1);
        throw new AttestationProblem(result.reason ?? 'unknown', failed?.detail ?? 'verification failed');
      }
      const document = result.document!;
      const bootKey = document.publicKey!;
      const bootKeySha256 = createHash('sha256').update(bootKey).digest('hex');
      if (readyz.publicKeySha256 === undefined || bootKeySha256 !== readyz.publicKeySha256) {
        throw new AttestationProblem(
          'identity',
          "the attested public_key is not the boot key the member's /readyz reports",
        );
      }
      // And the process on this connection holds its private half: proven already when /readyz
      // answered a challenge for this very key, else asked now.
      const proven =
        readyz.proofOk === true && state.bootKey !== undefined && Buffer.from(state.bootKey).equals(bootKey);
      if (!proven && (await readyzOn(connection, bootKey, ATTESTATION_TIMEOUT_MS)).report.proofOk !== true) {
        throw new AttestationProblem(
          'identity',
          'the member could not prove it holds the private half of the attested public_key',
        );
      }
      const ohttpKeyConfig = await this.#keyBinding.bind(member, connection, document);
      // The member fell out of rotation while this ran: what was verified may be another process.
      if (state.generation !== generation)
        throw new AttestationProblem(
          'superseded',
          'the member failed a health check or a request while it was being attested',
        );
      Object.assign(state, {
        verifiedAt: this.#now(),
        bootKey,
        bootKeySha256,
        moduleId: document.moduleId,
        failedAt: undefined,
        problem: undefined,
      });
      member.ohttpKeyConfig = ohttpKeyConfig;
      this.#metrics.attestationVerifications.inc({ result: 'ok' });
      this.#metrics.attestationVerified.set({ member: member.url }, 1);
      this.#metrics.attestationDuration.observe((performance.now() - started) / 1000);
      this.#log.info(
        { member: member.url, moduleId: document.moduleId, trust: this.trust.mode, ohttpKeyId: ohttpKeyConfig?.keyId },
        'secure member attested',
      );
      return undefined;
    } catch (error) {
      const problem =
        error instanceof AttestationProblem ? error : new AttestationProblem('unreachable', describeError(error));
      this.#dropBootKey(member, state);
      Object.assign(state, { failedAt: this.#now(), problem: `${problem.reason}: ${problem.message}` });
      this.#metrics.attestationVerifications.inc({ result: 'failed' });
      this.#metrics.attestationFailures.inc({ reason: problem.reason });
      this.#metrics.attestationVerified.set({ member: member.url }, 0);
      this.#log.warn(
        { member: member.url, reason: problem.reason, detail: problem.message },
        'secure member refused: its attestation did not verify',
      );
      return state.problem;
    }
  }
}

export class AttestationProblem extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}
