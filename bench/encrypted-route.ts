// bench:enclave's encrypted secure route: the client SDK as users run it (createSecureClient,
// pinned to the stack's measurements file, trusting its emulated NSM root INSECURELY as the stack
// prints), one client shared by every worker, so the enclave is attested once and its key cached
// while each request is sealed afresh (a new HPKE ephemeral key) and each answer opened and checked.
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFile } from 'node:fs/promises';
import { setTimeout } from 'node:timers/promises';
import type { SecureClient } from '../client/index.js';
import { SecureClientError, createSecureClient } from '../client/index.js';
import { percentile } from '../common/index.js';
import type { SendRequest, Verdict } from '../loadtest/index.js';
import { IMAGES_PER_REQUEST } from '../loadtest/index.js';

/** Long enough that the key verified before the sweep serves all of it: per request, only seal and open. */
const KEY_AGE_MS = 24 * 3600_000;

/** The gateway's Retry-After for GET /attestation at its default rate (1 per second per address). */
const RATE_LIMITED_WAIT_MS = 1_000;

/** Where `mpg stack` said the client's pins and the emulated root are (its `mpg client predict` line). */
export interface ClientFiles {
  pcrsFile: string;
  emulatedRootFile: string;
}

export function clientFilesFromStackOutput(stdout: string): ClientFiles {
  const pcrs = /--pcrs\s+(\S+)/.exec(stdout);
  const root = /--insecure-trust-emulated-nsm-root\s+(\S+)/.exec(stdout);
  if (!pcrs || !root)
    throw new Error(
      "mpg stack did not print the client's --pcrs and --insecure-trust-emulated-nsm-root files (is the enclave emulated?)",
    );
  return { pcrsFile: pcrs[1]!, emulatedRootFile: root[1]! };
}

// The SDK takes one fetch for all its requests; each worker's request carries its own timeout signal here.
const requestSignal = new AsyncLocalStorage<AbortSignal>();

export async function encryptedClient(gatewayUrl: string, files: ClientFiles): Promise<SecureClient> {
  const [pcrs, emulatedRoot] = await Promise.all([
    readFile(files.pcrsFile, 'utf8'),
    readFile(files.emulatedRootFile, 'utf8'),
  ]);
  return createSecureClient({
    gatewayUrl,
    pcrs,
    insecureTrustEmulatedNsmRoot: emulatedRoot,
    maxKeyAgeMs: KEY_AGE_MS,
    fetch: (input, init) => {
      const signal = requestSignal.getStore();
      return fetch(input, signal ? { ...init, signal } : init);
    },
  });
}

/** One encrypted request of `body` (the study's JSON batch), its answer opened and judged like checkAnswer. */
export function encryptedRequest(client: SecureClient, body: Uint8Array): SendRequest {
  return (signal) =>
    requestSignal.run(signal, async (): Promise<Verdict> => {
      let response;
      try {
        response = await client.predict(body, 'application/json');
      } catch (error) {
        // The gateway refused the sealed request with a status: a non-2xx answer, not a lost connection.
        if (
          error instanceof SecureClientError &&
          error.reason === 'gateway-error' &&
          error.status !== undefined &&
          !signal.aborted
        )
          return 'non2xx';
        throw error;
      }
      if (response.status < 200 || response.status >= 300) return 'non2xx';
      if (response.status !== 200) return 'mismatch';
      const predictions = (response.json as { predictions?: unknown } | undefined)?.predictions;
      return Array.isArray(predictions) && predictions.length === IMAGES_PER_REQUEST ? 'ok' : 'mismatch';
    });
}

export interface VerifyCost {
  iterations: number;
  /** Median ms of client.verify() with no key cached: key list, attestation with a fresh nonce, full WebCrypto verification, over the stack's gateway. */
  coldMs: number;
  /** Median ms of client.verify() with the key cached (what every request pays after the first). */
  cachedMs: number;
}

export async function measureVerifyCost(client: SecureClient, iterations: number): Promise<VerifyCost> {
  const median = async (before: () => void) => {
    const samples: number[] = [];
    while (samples.length < iterations) {
      before();
      const started = performance.now();
      try {
        await client.verify();
      } catch (error) {
        // The gateway lets one address ask for only so many documents a second (its burst, then
        // --attestation-requests-per-second): wait as it says and try again, untimed.
        if (!(error instanceof SecureClientError && error.status === 429)) throw error;
        await setTimeout(RATE_LIMITED_WAIT_MS);
        continue;
      }
      samples.push(performance.now() - started);
    }
    return percentile(
      samples.sort((a, b) => a - b),
      50,
    );
  };
  const coldMs = await median(() => client.forgetKey());
  const cachedMs = await median(() => undefined);
  return { iterations, coldMs, cachedMs };
}
