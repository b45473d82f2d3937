// The attestation gate of the secure route. A secure member takes traffic only while its
// attestation holds: the health check (upstream-group.ts) asks the gate after every passing
// /readyz, and the gate answers from what it verified, attesting again
//   - before the member's first request,
//   - every --attestation-interval-ms,
//   - whenever the process behind the member is not the one attested: /readyz reports another
//     boot key, or cannot prove it holds the attested one (every health check sends a possession
//     challenge that only the holder of the attested X25519 key can answer),
//   - after the member failed a health check or a request (the gate forgets it).
// Attesting: a fresh nonce, GET /attestation?nonce= on the member's health connection, then every
// check of attestation/ (chain to the trusted root, COSE signature, pinned PCRs, the nonce,
// freshness), the document's public_key must hash to the boot key /readyz gave, and the member
// must prove it holds that key's private half. Requests never wait for any of this: routing
// reads a boolean. What this cannot do: bind each request to the attested key (a relay could send
// health checks to the enclave and requests elsewhere); that takes end-to-end encryption to it.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { AttestationVerifier } from '../attestation/index.js';
import { AWS_NITRO_ROOT_G1_PEM, createAttestationVerifier, createChallenge, createNonce } from '../attestation/index.js';
import type { AttestationTrust } from './attestation-trust.js';
import type { GatewayMetrics } from './metrics.js';
import type { MemberGate, ReadyzProbe, ReadyzReport, UpstreamMember } from './upstream-group.js';
import { describeError } from './upstream-group.js';

/** Far above a genuine document (about 4.5 KiB), far below anything that could hurt. */
const MAX_DOCUMENT_BYTES = 16 * 1024;
const ATTESTATION_TIMEOUT_MS = 5_000;

interface MemberAttestation {
  /** Bumped by forget(): an attestation begun before it is void. */
  generation: number;
  verifiedAt?: number;
  /** The attested document's public_key (raw X25519): the enclave's boot key. */
  publicKey?: Uint8Array;
  /** Its SHA-256 (hex), as /readyz reports it. */
  publicKeySha256?: string;
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

export class AttestationGate implements MemberGate {
  readonly trust: AttestationTrust;
  readonly #metrics: GatewayMetrics;
  readonly #log: FastifyBaseLogger;
  readonly #states = new Map<UpstreamMember, MemberAttestation>();
  #verifier: AttestationVerifier | undefined;
  #rootStamp = '';

  constructor(trust: AttestationTrust, metrics: GatewayMetrics, log: FastifyBaseLogger) {
    this.trust = trust;
    this.#metrics = metrics;
    this.#log = log;
  }

  probe(member: UpstreamMember): ReadyzProbe | undefined {
    const attested = this.#state(member).publicKey;
    if (!attested) return undefined;
    const challenge = createChallenge();
    return { query: challenge.hex, verify: (proof) => challenge.check(attested, proof) };
  }

  holds(member: UpstreamMember, readyz: ReadyzReport): boolean {
    const state = this.#state(member);
    // The same boot key, and proven: the process that answered holds the attested key's private half.
    return state.verifiedAt !== undefined && readyz.publicKeySha256 === state.publicKeySha256 && readyz.proofOk === true;
  }

  async admit(member: UpstreamMember, readyz: ReadyzReport): Promise<string | undefined> {
    const state = this.#state(member);
    const now = performance.now();
    if (state.verifiedAt !== undefined) {
      const sameBoot = this.holds(member, readyz);
      if (sameBoot && now - state.verifiedAt < this.trust.intervalMs) return undefined;
      if (!sameBoot) {
        const why = readyz.publicKeySha256 !== state.publicKeySha256 ? 'its boot key changed' : 'it could not prove it holds the attested boot key';
        this.#log.warn({ member: member.url }, `the process behind this member is not the one attested (${why}): attesting it again`);
        this.forget(member);
      }
    } else if (state.failedAt !== undefined && now - state.failedAt < this.trust.retryMs) {
      return state.problem;
    }
    return this.#attest(member, readyz, state);
  }

  /** The member's attestation no longer holds: it must be attested again before its next request. */
  forget(member: UpstreamMember): void {
    const state = this.#state(member);
    state.generation += 1;
    if (state.verifiedAt === undefined) return;
    state.verifiedAt = undefined;
    state.publicKey = undefined;
    state.publicKeySha256 = undefined;
    this.#metrics.attestationVerified.set({ member: member.url }, 0);
  }

  status(member: UpstreamMember): MemberAttestationStatus {
    const state = this.#state(member);
    if (state.verifiedAt === undefined) return { attested: false, ...(state.problem ? { problem: state.problem } : {}) };
    return { attested: true, ageSeconds: Math.round((performance.now() - state.verifiedAt) / 100) / 10, ...(state.moduleId ? { moduleId: state.moduleId } : {}) };
  }

  /** Seconds since the member's last successful attestation, or -1 when it holds none. */
  ageSeconds(member: UpstreamMember): number {
    const verifiedAt = this.#state(member).verifiedAt;
    return verifiedAt === undefined ? -1 : (performance.now() - verifiedAt) / 1000;
  }

  #state(member: UpstreamMember): MemberAttestation {
    let state = this.#states.get(member);
    if (!state) this.#states.set(member, (state = { generation: 0 }));
    return state;
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
        throw new AttestationProblem('root', `the emulated NSM root file ${rootFile} cannot be read (${describeError(error)})`);
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

  async #attest(member: UpstreamMember, readyz: ReadyzReport, state: MemberAttestation): Promise<string | undefined> {
    const started = performance.now();
    const generation = state.generation;
    try {
      const verifier = this.#currentVerifier();
      const nonce = createNonce();
      const document = await fetchDocument(member, nonce);
      const result = verifier.verify(document, { nonce });
      if (!result.ok) {
        const failed = result.checks.at(-1);
        throw new AttestationProblem(result.reason ?? 'unknown', failed?.detail ?? 'verification failed');
      }
      const publicKey = result.document!.publicKey;
      const publicKeySha256 = publicKey ? createHash('sha256').update(publicKey).digest('hex') : undefined;
      if (readyz.publicKeySha256 === undefined || publicKeySha256 !== readyz.publicKeySha256) {
        throw new AttestationProblem('identity', "the attested public_key is not the boot key the member's /readyz reports");
      }
      // And the process answering holds its private half.
      if (!(await provesPossession(member, publicKey!))) {
        throw new AttestationProblem('identity', 'the member could not prove it holds the private half of the attested public_key');
      }
      // The member fell out of rotation while this ran: what was verified may be another process.
      if (state.generation !== generation) throw new AttestationProblem('superseded', 'the member failed a health check or a request while it was being attested');
      Object.assign(state, { verifiedAt: performance.now(), publicKey, publicKeySha256, moduleId: result.document!.moduleId, failedAt: undefined, problem: undefined });
      this.#metrics.attestationVerifications.inc({ result: 'ok' });
      this.#metrics.attestationVerified.set({ member: member.url }, 1);
      this.#metrics.attestationDuration.observe((performance.now() - started) / 1000);
      this.#log.info({ member: member.url, moduleId: result.document!.moduleId, trust: this.trust.mode }, 'secure member attested');
      return undefined;
    } catch (error) {
      const problem = error instanceof AttestationProblem ? error : new AttestationProblem('unreachable', describeError(error));
      Object.assign(state, { verifiedAt: undefined, publicKey: undefined, publicKeySha256: undefined, failedAt: performance.now(), problem: `${problem.reason}: ${problem.message}` });
      this.#metrics.attestationVerifications.inc({ result: 'failed' });
      this.#metrics.attestationFailures.inc({ reason: problem.reason });
      this.#metrics.attestationVerified.set({ member: member.url }, 0);
      this.#log.warn({ member: member.url, reason: problem.reason, detail: problem.message }, 'secure member refused: its attestation did not verify');
      return state.problem;
    }
  }
}

class AttestationProblem extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** One /readyz with a possession challenge for `publicKey`. */
async function provesPossession(member: UpstreamMember, publicKey: Uint8Array): Promise<boolean> {
  const challenge = createChallenge();
  const response = await member.healthPool.request({
    method: 'GET',
    path: `/readyz?proof=${challenge.hex}`,
    headersTimeout: ATTESTATION_TIMEOUT_MS,
    bodyTimeout: ATTESTATION_TIMEOUT_MS,
    signal: AbortSignal.timeout(ATTESTATION_TIMEOUT_MS),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200 || text.length > 4096) return false;
  try {
    return challenge.check(publicKey, (JSON.parse(text) as { proof?: unknown }).proof);
  } catch {
    return false;
  }
}

async function fetchDocument(member: UpstreamMember, nonce: Uint8Array): Promise<Uint8Array> {
  const response = await member.healthPool.request({
    method: 'GET',
    path: `/attestation?nonce=${Buffer.from(nonce).toString('hex')}`,
    headersTimeout: ATTESTATION_TIMEOUT_MS,
    bodyTimeout: ATTESTATION_TIMEOUT_MS,
    signal: AbortSignal.timeout(ATTESTATION_TIMEOUT_MS),
  });
  const declared = Number(response.headers['content-length'] ?? 0);
  if (response.statusCode !== 200 || declared > MAX_DOCUMENT_BYTES) {
    await response.body.dump();
    throw new AttestationProblem('bad_response', response.statusCode !== 200 ? `GET /attestation answered ${response.statusCode}` : `the document declares ${declared} bytes`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_DOCUMENT_BYTES) {
      response.body.destroy();
      throw new AttestationProblem('bad_response', `the document is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
