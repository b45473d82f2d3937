// Every connection the gateway opens to a secure member proves, before undici may send anything on
// it, that the process at the other end holds the private half of the member's attested boot key:
// the connector opens the socket, sends GET /readyz?proof=<challenge> on it, checks the answer
// against the attested key, and only then hands the socket to the pool. Without this, a process
// that takes over the member's address (another listener on the parent relay's socket path) would
// receive every request sent on a new connection while older connections, the health checks among
// them, still reached the enclave and vouched for it.
// What it does not do: stop a process that can read or alter an already proven connection (root on
// the parent can, through the relay); that takes end-to-end encryption to the attested key (OHTTP).
import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';
import { createChallenge } from '../attestation/index.js';
import { gatewayErrors } from './errors.js';
import { MemberConnection, MemberConnectionError } from './member-connection.js';
import type { UpstreamAddress } from './upstream-url.js';

/** A /readyz answer with a proof is about 300 bytes. */
const MAX_READYZ_BYTES = 4096;

/** What a member's /readyz said beyond its status. */
export interface ReadyzReport {
  /** SHA-256 of the enclave's boot key, when the member is an enclave. */
  publicKeySha256?: string;
  /** Whether it proved possession of the key it was challenged for (present only when challenged). */
  proofOk?: boolean;
}

export interface ChallengeOutcome {
  statusCode: number;
  report: ReadyzReport;
}

/** GET /readyz on `connection`, with a possession challenge for `key` when one is given. */
export async function readyzOn(
  connection: MemberConnection,
  key: Uint8Array | undefined,
  timeoutMs: number,
): Promise<ChallengeOutcome> {
  const challenge = key ? createChallenge() : undefined;
  const answer = await connection.get(challenge ? `/readyz?proof=${challenge.hex}` : '/readyz', {
    maxBodyBytes: MAX_READYZ_BYTES,
    timeoutMs,
  });
  let parsed: { publicKeySha256?: unknown; proof?: unknown } = {};
  try {
    parsed = JSON.parse(answer.body.toString('utf8')) as typeof parsed;
  } catch {
    // Not JSON: no key reported, no proof given.
  }
  const report: ReadyzReport = {
    ...(typeof parsed?.publicKeySha256 === 'string' ? { publicKeySha256: parsed.publicKeySha256 } : {}),
    ...(challenge ? { proofOk: answer.statusCode === 200 && challenge.check(key!, parsed?.proof) } : {}),
  };
  return { statusCode: answer.statusCode, report };
}

/** Asked by the connector of every secure member's pools. */
export interface ConnectionGuard {
  /** The attested key a new connection must prove; undefined while none is attested (no connection is opened). */
  connectionKey(): Uint8Array | undefined;
  /** A connection could not prove the attested key: the member goes out of rotation. Returns why, for the request. */
  refused(outcome: ChallengeOutcome | undefined, cause: unknown): string;
}

export interface ProvenConnectorOptions {
  connectTimeoutMs: number;
  proofTimeoutMs: number;
}

/** An undici `connect` function that hands over only sockets whose peer proved the attested key. */
export function provenConnector(
  address: UpstreamAddress,
  guard: ConnectionGuard,
  options: ProvenConnectorOptions,
): buildConnector.connector {
  const refuse = (why: string) =>
    // No cause: the one place that maps upstream failures passes a coded error through as it is.
    gatewayErrors.GW_SECURE_NOT_ATTESTED(
      `The secure upstream was not used: ${why}; the request was not sent anywhere`,
      { headers: { 'retry-after': '1' } },
    );
  return (_options, callback) => {
    const key = guard.connectionKey();
    if (!key) {
      callback(refuse('it holds no verified attestation, so no connection to it is opened'), null);
      return;
    }
    void (async () => {
      let connection: MemberConnection | undefined;
      let outcome: ChallengeOutcome | undefined;
      try {
        connection = await MemberConnection.open(address, options.connectTimeoutMs);
        outcome = await readyzOn(connection, key, options.proofTimeoutMs);
        if (outcome.report.proofOk === true) {
          const socket: Socket = connection.release();
          callback(null, socket);
          return;
        }
      } catch (error) {
        connection?.close();
        // Not reached, cut off or silent: an ordinary upstream failure, mapped as any other. Only
        // an answer that is not a proof says that something else holds the member's address.
        if (!(error instanceof MemberConnectionError) || error.code !== 'GW_MEMBER_BAD_ANSWER') {
          callback(error as Error, null);
          return;
        }
        callback(refuse(guard.refused(outcome, error)), null);
        return;
      }
      connection.close();
      callback(refuse(guard.refused(outcome, undefined)), null);
    })();
  };
}
