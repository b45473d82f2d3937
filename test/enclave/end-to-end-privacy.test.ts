// Issue 11's promise, end to end through the real gateway: the client SDK encrypts to an enclave it
// has verified itself, and nothing on the parent instance can read what it sent.
//
// Real parts throughout: the emulated enclave (entrypoint, relays, model server in their own
// process group), a public model server, the real gateway (in this process, logging at trace level
// into a JSON-line sink) with --secure-plaintext refuse, and the SDK. Between the gateway and the
// enclave's parent socket sits a recording relay: every byte that crosses the parent side of the
// channel, both ways, is kept. The image carries a unique marker in a JPEG comment segment.
//
// 1. The SDK's answers (raw image and JSON batch) are the public route's predictions for the same
//    image; the marker (raw, hex, base64) is in no recorded byte and no gateway log line, while the
//    recording does hold the sealed requests and answers the SDK exchanged.
// 2. The enclave's model server is killed and a new enclave (new boot, new key id) takes the same
//    socket: the same client, still holding the old key, succeeds after exactly one retry.
// 3. A plain model server takes the enclave's socket: the SDK's encrypted request gets the coded
//    503 and the impostor receives nothing but the gateway's possession challenges.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import sharp from 'sharp';
import { emulatedImageMeasurements, writeMeasurementsFile } from '../../attestation/index.js';
import type { SecureClientError } from '../../client/index.js';
import { createSecureClient } from '../../client/index.js';
import { sampleImage } from '../../common/index.js';
import type { EmulatedEnclave } from '../../enclave/index.js';
import { startEmulatedEnclave } from '../../enclave/index.js';
import { decodeKeyConfigList } from '../../ohttp/index.js';
import { startGateway, waitFor } from '../helpers/gateway.js';
import { startModelServer, testModelPath } from '../helpers/model-server.js';
import { findDescendant } from '../helpers/process-tree.js';
import { startRecordingRelay } from '../helpers/recording-relay.js';

const KEY_BEFORE = 11;
const KEY_AFTER = 12;
const TOPK = 3;
/** Upper bounds on polling: they only catch a hang and are not measured figures. */
const PHASE_TIMEOUT_MS = 60_000;

/** A JPEG with `marker` in a comment (COM) segment right after SOI: decoders skip it. */
function withComment(jpeg: Buffer, marker: string): Buffer {
  const text = Buffer.from(marker, 'latin1');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(text.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xfe]), length, text, jpeg.subarray(2)]);
}

/**
 * Every form in which the marker could cross: as is, as hex (either case), and as base64 at each of
 * the three alignments it can have inside a longer base64 text (the JSON batch's image).
 */
function markerForms(marker: string): Buffer[] {
  const bytes = Buffer.from(marker, 'latin1');
  const hex = bytes.toString('hex');
  const base64 = [0, 1, 2].map((skip) => {
    const aligned = bytes.subarray(skip);
    return aligned.subarray(0, aligned.length - (aligned.length % 3)).toString('base64');
  });
  return [bytes, Buffer.from(hex), Buffer.from(hex.toUpperCase()), ...base64.map((form) => Buffer.from(form))];
}

function carriesMarker(bytes: Buffer, forms: readonly Buffer[]): boolean {
  return forms.some((form) => bytes.indexOf(form) !== -1);
}

/** The gateway's JSON-line log, kept in memory. */
class LogCapture extends Writable {
  text = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }

  lines(): { msg?: string; route?: string; status?: number }[] {
    return this.text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { msg?: string; route?: string; status?: number });
  }
}

/** What the SDK sent and received over its own transport, per gateway route. */
interface Transport {
  keys: number;
  attestation: number;
  predict: number;
  sealedRequests: Buffer[];
  sealedResponses: Buffer[];
}

function countingFetch(transport: Transport): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === '/.well-known/ohttp-gateway') transport.keys++;
    if (url.pathname === '/attestation') transport.attestation++;
    if (url.pathname === '/predict-secure') {
      transport.predict++;
      transport.sealedRequests.push(Buffer.from(init!.body as Uint8Array));
    }
    const response = await fetch(input, init);
    if (url.pathname === '/predict-secure' && response.status === 200)
      transport.sealedResponses.push(Buffer.from(await response.clone().arrayBuffer()));
    return response;
  };
}

function assertNotLogged(log: LogCapture, forms: readonly Buffer[]): void {
  const logged = log.text.split('\n').filter((line) => carriesMarker(Buffer.from(line), forms));
  // The start of each offending line is enough to find it; the lines themselves can be huge.
  assert.deepEqual(
    logged.map((line) => line.slice(0, 200)),
    [],
    `${logged.length} gateway log line(s) carry the marker`,
  );
}

async function advertisedKeyIds(url: string): Promise<number[]> {
  const response = await fetch(`${url}/.well-known/ohttp-gateway`);
  if (response.status !== 200) {
    await response.arrayBuffer();
    return [];
  }
  return decodeKeyConfigList(new Uint8Array(await response.arrayBuffer())).map((config) => config.keyId);
}

async function secureMember(url: string): Promise<{ attested: boolean; problem?: string }> {
  const body = (await (await fetch(`${url}/readyz`)).json()) as {
    attestation: { members: { attested: boolean; problem?: string }[] };
  };
  return body.attestation.members[0]!;
}

async function startEnclave(
  t: TestContext,
  socketPath: string,
  nsmRootFile: string,
  keyId: number,
): Promise<EmulatedEnclave> {
  const enclave = await startEmulatedEnclave({
    socketPath,
    nsmRootFile,
    modelServerArgs: ['--threads', '1', '--log-level', 'warn', '--ohttp-key-id', String(keyId)],
  });
  t.after(() => enclave.stop());
  await enclave.ready;
  return enclave;
}

/** Ordered POST /predict requests in the recorded bytes toward the enclave, from chunk `from` on. */
function sealedRequestsCrossing(streams: Buffer[]): number {
  return streams.reduce(
    (count, stream) => count + (stream.toString('latin1').match(/POST \/predict HTTP\/1\.1\r\n/g) ?? []).length,
    0,
  );
}

test(
  "through the real gateway: the SDK gets the public predictions, no byte of its marked image crosses the parent or reaches a log, it survives an enclave restart with one retry, and a spoofer on the enclave's socket gets nothing",
  { timeout: 600_000 },
  async (t) => {
    const modelPath = await testModelPath();
    const dir = await mkdtemp(join(tmpdir(), 'mpg-e2e-privacy-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const enclaveSocket = join(dir, 'enclave.sock');
    const trustedRoot = join(dir, 'nsm-root.pem');
    const pins = join(dir, 'pcrs.json');
    const measurements = emulatedImageMeasurements({ modelPath });
    await writeMeasurementsFile(pins, measurements);

    const marker = `mpg-e2e-marker-${randomBytes(16).toString('hex')}`;
    const forms = markerForms(marker);
    const plainImage = await sampleImage({ width: 64, height: 64 });
    const image = withComment(plainImage, marker);
    // The marker really is in the image, in each form a request could carry it, and the image still
    // decodes to the same pixels: a detector that found nothing anywhere would prove nothing.
    assert.ok(carriesMarker(image, forms));
    assert.ok(carriesMarker(Buffer.from(JSON.stringify({ images: [image.toString('base64')] })), forms));
    assert.ok(carriesMarker(Buffer.from(image.toString('hex')), forms));
    assert.deepEqual(
      await sharp(image).raw().toBuffer(),
      await sharp(plainImage).raw().toBuffer(),
      'the comment does not change the pixels',
    );

    // The second enclave boots now, on its own socket, so that the client can trust its root from the
    // start: each emulated boot makes its own throwaway root, where on Nitro both boots chain to the
    // one AWS root the client pins. It takes the first one's socket only when that one has died.
    const [publicServer, first, second] = await Promise.all([
      startModelServer(t, ['--threads', '1']),
      startEnclave(t, enclaveSocket, trustedRoot, KEY_BEFORE),
      startEnclave(t, join(dir, 'next-enclave.sock'), join(dir, 'next-nsm-root.pem'), KEY_AFTER),
    ]);
    const tap = await startRecordingRelay(t, join(dir, 'tap.sock'), enclaveSocket);
    const log = new LogCapture();
    const { url } = await startGateway(
      t,
      [
        '--secure-upstream',
        `unix:${tap.path}`,
        '--public-upstream',
        publicServer.url,
        '--attestation-pcrs',
        pins,
        '--insecure-trust-emulated-nsm-root',
        trustedRoot,
        '--secure-plaintext',
        'refuse',
      ],
      { dependencies: { logger: { level: 'trace', stream: log } } },
    );
    await waitFor(
      async () => (await advertisedKeyIds(url)).join() === String(KEY_BEFORE),
      'the first enclave to be attested',
      PHASE_TIMEOUT_MS,
    );

    const transport: Transport = { keys: 0, attestation: 0, predict: 0, sealedRequests: [], sealedResponses: [] };
    const client = createSecureClient({
      gatewayUrl: url,
      pcrs: measurements,
      insecureTrustEmulatedNsmRoot: await readFile(trustedRoot, 'utf8'),
      trustedRootsPem: await readFile(join(dir, 'next-nsm-root.pem'), 'utf8'),
      maxKeyAgeMs: 3_600_000,
      fetch: countingFetch(transport),
    });

    await t.test(
      "the SDK's answers are the public route's; the marker crosses the parent nowhere and is logged nowhere",
      async () => {
        const batch = { images: [image.toString('base64')], topk: TOPK };
        const raw = await client.predict(image, 'image/jpeg', { topk: TOPK });
        const batched = await client.predict(batch);
        assert.equal(raw.status, 200);
        assert.equal(batched.status, 200);
        assert.equal(raw.verified.keyId, KEY_BEFORE);

        const publicRaw = await fetch(`${url}/predict-public?topk=${TOPK}`, {
          method: 'POST',
          headers: { 'content-type': 'image/jpeg' },
          body: image,
        });
        const publicBatch = await fetch(`${url}/predict-public`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
        });
        assert.equal(publicRaw.status, 200);
        assert.equal(publicBatch.status, 200);
        const publicPredictions = ((await publicRaw.json()) as { predictions: unknown[] }).predictions;
        assert.equal(publicPredictions.length, 1);
        assert.deepEqual((raw.json as { predictions: unknown }).predictions, publicPredictions);
        assert.deepEqual(
          (batched.json as { predictions: unknown }).predictions,
          ((await publicBatch.json()) as { predictions: unknown }).predictions,
        );
        assert.deepEqual((batched.json as { predictions: unknown }).predictions, publicPredictions);

        // The tap saw the traffic: both sealed requests as the SDK sent them, as message/ohttp-req, and
        // both sealed answers as the SDK received them.
        const toEnclave = tap.streams(0, 'to-enclave');
        const fromEnclave = tap.streams(0, 'from-enclave');
        assert.equal(transport.sealedRequests.length, 2);
        assert.equal(transport.sealedResponses.length, 2);
        for (const sealed of transport.sealedRequests)
          assert.ok(
            toEnclave.some((stream) => stream.indexOf(sealed) !== -1),
            'a sealed request crossed the tap',
          );
        for (const sealed of transport.sealedResponses)
          assert.ok(
            fromEnclave.some((stream) => stream.indexOf(sealed) !== -1),
            'a sealed answer crossed the tap',
          );
        assert.equal(
          toEnclave.filter((stream) => /content-type: message\/ohttp-req/i.test(stream.toString('latin1'))).length > 0,
          true,
        );
        assert.equal(sealedRequestsCrossing(toEnclave), 2);

        // Nothing that crossed the parent, either way, carries the marker in any form.
        const crossed = tap.streams();
        assert.ok(crossed.length > 0);
        const betrayed = crossed.filter((stream) => carriesMarker(stream, forms));
        assert.equal(betrayed.length, 0, `the marker crossed the parent in ${betrayed.length} connection stream(s)`);
        // The image itself neither (any 32 bytes of its compressed pixels, raw or hex).
        const window = image.subarray(image.length - 64, image.length - 32);
        assert.deepEqual(
          crossed.filter((stream) => stream.indexOf(window) !== -1 || stream.indexOf(window.toString('hex')) !== -1),
          [],
        );

        // The gateway logged the secure requests (so the log was written), but not the marker.
        await waitFor(
          () =>
            log.lines().filter((line) => line.msg === 'request done' && line.route === 'secure' && line.status === 200)
              .length >= 2,
          "the secure requests' log lines",
        );
        assertNotLogged(log, forms);
      },
    );

    await t.test(
      'the enclave dies and a new one (new boot, new key) takes its socket: the same client succeeds after exactly one retry',
      async () => {
        const modelServer = findDescendant(first.pid, 'model server', (argv) => argv.includes('model-server'));
        process.kill(modelServer.pid, 'SIGKILL');
        await first.exited;
        await first.stop();
        // The replacement takes the socket the tap (the gateway's secure upstream) connects to, and its
        // boot's root is where the gateway reads the trusted root, as a restart writes it.
        await rename(join(dir, 'next-enclave.sock'), enclaveSocket);
        await copyFile(join(dir, 'next-nsm-root.pem'), `${trustedRoot}.tmp`);
        await rename(`${trustedRoot}.tmp`, trustedRoot);
        await waitFor(
          async () => (await advertisedKeyIds(url)).join() === String(KEY_AFTER),
          'the new enclave to be attested',
          PHASE_TIMEOUT_MS,
        );
        assert.deepEqual(
          await advertisedKeyIds(url),
          [KEY_AFTER],
          '/.well-known/ohttp-gateway offers the new key id only',
        );

        const before = { ...transport };
        const from = tap.chunks.length;
        const answer = await client.predict(image, 'image/jpeg', { topk: TOPK });
        assert.equal(answer.status, 200);
        assert.equal(answer.verified.keyId, KEY_AFTER);
        // One refused request (422: the old key), one fresh key list, one attestation, one retry.
        assert.deepEqual(
          {
            keys: transport.keys - before.keys,
            attestation: transport.attestation - before.attestation,
            predict: transport.predict - before.predict,
          },
          { keys: 1, attestation: 1, predict: 2 },
        );
        // The request to the old key was refused by the gateway and never crossed; the retry did.
        assert.equal(sealedRequestsCrossing(tap.streams(from, 'to-enclave')), 1);
        assert.deepEqual(
          tap.streams(from).filter((stream) => carriesMarker(stream, forms)),
          [],
        );
        const publicRaw = await fetch(`${url}/predict-public?topk=${TOPK}`, {
          method: 'POST',
          headers: { 'content-type': 'image/jpeg' },
          body: image,
        });
        assert.deepEqual(
          (answer.json as { predictions: unknown }).predictions,
          ((await publicRaw.json()) as { predictions: unknown }).predictions,
        );
      },
    );

    await t.test(
      "a plain model server takes the enclave's socket: the encrypted request gets the coded 503 and never reaches it",
      async () => {
        await second.stop();
        await waitFor(
          async () => !(await secureMember(url)).attested,
          'the gateway to see the enclave gone',
          PHASE_TIMEOUT_MS,
        );
        await rm(enclaveSocket, { force: true });
        const impostor = await startModelServer(t, ['--socket', enclaveSocket, '--threads', '1']);
        const received: { method: string; url: string }[] = [];
        impostor.server.app.server.on('request', (request: IncomingMessage) =>
          received.push({ method: request.method ?? '', url: request.url ?? '' }),
        );
        const isChallenge = (request: { method: string; url: string }) =>
          request.method === 'GET' && /^\/readyz\?proof=[0-9a-f]+$/.test(request.url);
        // The gateway reaches the impostor (the takeover took effect) and refuses it for failing the
        // possession challenge; a gateway that sent it anything else stops the wait too, and fails below.
        await waitFor(
          async () =>
            received.some((request) => !isChallenge(request)) ||
            (received.length > 0 && /^unproven: /.test((await secureMember(url)).problem ?? '')),
          'the gateway to try the impostor and refuse it',
          PHASE_TIMEOUT_MS,
        );

        const from = tap.chunks.length;
        const sent = transport.predict;
        let refusal: SecureClientError | undefined;
        try {
          await client.predict(image, 'image/jpeg', { topk: TOPK });
        } catch (error) {
          refusal = error as SecureClientError;
        }
        assert.equal(transport.predict - sent, 1, 'the SDK did send its encrypted request');
        assert.ok(refusal, 'the encrypted request was refused');
        assert.deepEqual(
          [refusal.reason, refusal.status, refusal.code],
          ['gateway-error', 503, 'GW_SECURE_NOT_ATTESTED'],
        );
        assert.match(
          (await secureMember(url)).problem ?? '',
          /^unproven: /,
          'refused because it could not prove the attested key',
        );
        const notChallenges = received.filter((request) => !isChallenge(request));
        assert.deepEqual(
          notChallenges,
          [],
          'the impostor received only possession challenges: no request, no health check, no attestation',
        );
        assert.equal(
          sealedRequestsCrossing(tap.streams(from, 'to-enclave')),
          0,
          'no sealed request crossed toward the impostor',
        );
        assert.deepEqual(
          tap.streams().filter((stream) => carriesMarker(stream, forms)),
          [],
        );
        assertNotLogged(log, forms);
      },
    );
  },
);
