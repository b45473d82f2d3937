// The attestation gate learns each secure member's OHTTP key config, on the connection it attests
// on, once the document verifies: GET /ohttp-keys must list exactly one config, whose public key
// is the document's public_key (the boot key the member just proved it holds) and whose encoding
// hashes (SHA-256) to the document's user_data, which binds its key id and suites too. Only then
// does the member route and advertise that key id; a second attested member with the same key id
// is refused, since requests are routed by key id alone.
import { createHash } from 'node:crypto';
import type { AttestationDocument } from '../attestation/index.js';
import { decodeKeyConfigList, encodeKeyConfig, encodeKeyConfigList } from '../ohttp/index.js';
import type { KeyConfigBinding } from './attestation-gate.js';
import { AttestationProblem } from './attestation-gate.js';
import type { MemberConnection } from './member-connection.js';
import type { UpstreamMember } from './upstream-group.js';

/** One X25519 key config with two suites is 45 bytes; a list far longer is not an enclave's. */
const MAX_KEY_LIST_BYTES = 4096;
const KEY_LIST_TIMEOUT_MS = 5_000;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/** `members`: every member of the secure route, read when a member is bound (for key id clashes). */
export function ohttpKeyBinding(members: () => readonly UpstreamMember[]): KeyConfigBinding {
  return {
    async bind(member: UpstreamMember, connection: MemberConnection, document: AttestationDocument) {
      const answer = await connection.get('/ohttp-keys', {
        maxBodyBytes: MAX_KEY_LIST_BYTES,
        timeoutMs: KEY_LIST_TIMEOUT_MS,
      });
      // A model server without OHTTP: attested for plaintext secure requests, never advertised.
      if (answer.statusCode === 404) return undefined;
      if (answer.statusCode !== 200)
        throw new AttestationProblem('ohttp_keys', `GET /ohttp-keys answered ${answer.statusCode}`);
      let configs;
      try {
        configs = decodeKeyConfigList(answer.body);
      } catch (error) {
        throw new AttestationProblem(
          'ohttp_keys',
          `GET /ohttp-keys sent no valid key config list (${(error as Error).message})`,
        );
      }
      if (configs.length !== 1)
        throw new AttestationProblem(
          'ohttp_keys',
          `GET /ohttp-keys listed ${configs.length} key configs; an enclave serves exactly one, its boot key's`,
        );
      const config = configs[0]!;
      // Canonical: what is hashed is exactly what the member sent.
      if (!equalBytes(encodeKeyConfigList([config]), answer.body))
        throw new AttestationProblem(
          'ohttp_keys',
          'GET /ohttp-keys sent a key config list that is not in its canonical encoding',
        );
      if (!document.publicKey || !equalBytes(config.publicKey, document.publicKey)) {
        throw new AttestationProblem(
          'ohttp_key_mismatch',
          "the OHTTP key config's public key is not the attested public_key",
        );
      }
      const encoded = encodeKeyConfig(config);
      const digest = createHash('sha256').update(encoded).digest();
      if (!document.userData || !equalBytes(digest, document.userData)) {
        throw new AttestationProblem(
          'ohttp_key_mismatch',
          'the attested user_data is not the SHA-256 of the OHTTP key config (its key id or suites are not the attested ones)',
        );
      }
      const holder = members().find((other) => other !== member && other.ohttpKeyConfig?.keyId === config.keyId);
      if (holder) {
        throw new AttestationProblem(
          'ohttp_key_id_taken',
          `key id ${config.keyId} is already held by the attested member ${holder.url}; give each enclave its own key id (--ohttp-key-id)`,
        );
      }
      return { keyId: config.keyId, encoded };
    },
  };
}
