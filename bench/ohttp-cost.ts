// What end-to-end encryption (OHTTP) costs per request, client side and enclave side, measured in
// this process beside its baseline: JSON.parse of the same body (what any plaintext request costs
// the model server before inference). The enclave side twice: with its node:crypto recipient (what
// the model server runs) and with @hpke/core over WebCrypto (the portable default). Also the
// enclave door's inner dispatch: app.inject of the same body into a Fastify route that parses it.
// bench:enclave calls measureOhttpCost(); `node dist/bench/ohttp.js` prints it alone.
import { generateKeyPairSync } from 'node:crypto';
import Fastify from 'fastify';
import { rawX25519PublicKey } from '../attestation/index.js';
import { nodeServerCrypto } from '../model-server/index.js';
import {
  OhttpKeyPair,
  decodeBinaryRequest,
  decodeBinaryResponse,
  encapsulateRequest,
  encodeBinaryRequest,
  encodeBinaryResponse,
} from '../ohttp/index.js';

export const DEFAULT_OHTTP_ITERATIONS = 200;
const WARMUP_ITERATIONS = 20;

export interface OhttpCost {
  bodyBytes: number;
  responseBytes: number;
  iterations: number;
  /** Median milliseconds per operation. */
  ms: {
    /** Baseline: TextDecoder + JSON.parse of the request body. */
    jsonParseBaseline: number;
    /** Client: Binary HTTP encode + HPKE seal of the request. */
    clientSeal: number;
    /** Enclave (node:crypto, as the model server runs it): HPKE open + Binary HTTP decode of the request. */
    enclaveOpen: number;
    /** Enclave (node:crypto): Binary HTTP encode + AES-GCM seal of the answer. */
    enclaveSeal: number;
    /** The same two with @hpke/core over WebCrypto. */
    enclaveOpenWebCrypto: number;
    enclaveSealWebCrypto: number;
    /** Client: AES-GCM open + Binary HTTP decode of the answer. */
    clientOpen: number;
    /** Enclave: app.inject of the body into a Fastify route that parses it (parse included). */
    innerInject: number;
  };
}

async function median(iterations: number, operation: () => unknown): Promise<number> {
  for (let i = 0; i < WARMUP_ITERATIONS; i++) await operation();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await operation();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

/** A /predict answer of the usual shape for `images` images and top 5 (what the enclave seals). */
function typicalAnswer(images: number): Uint8Array {
  const topk = Array.from({ length: 5 }, (_, index) => ({
    index: 100 + index,
    label: `label number ${index}`,
    score: 0.1 + index / 100,
  }));
  return new TextEncoder().encode(
    JSON.stringify({
      model: 'resnet18',
      predictions: Array.from({ length: images }, () => ({ topk })),
      timings: { preprocessMs: 5.1, queueMs: 0.2, inferenceMs: 30.2, totalMs: 36.4 },
    }),
  );
}

export async function measureOhttpCost(
  body: Uint8Array,
  { iterations = DEFAULT_OHTTP_ITERATIONS, images = 2 } = {},
): Promise<OhttpCost> {
  const keyPair = await OhttpKeyPair.generate(1);
  const nodeKeys = generateKeyPairSync('x25519');
  const nodePublicKey = rawX25519PublicKey(nodeKeys.publicKey);
  const nodeKeyPair = OhttpKeyPair.withCrypto(2, nodePublicKey, nodeServerCrypto(nodeKeys.privateKey, nodePublicKey));
  const headers: [string, string][] = [['content-type', 'application/json']];
  const inner = { method: 'POST', scheme: 'https', authority: 'enclave', path: '/predict', headers, body };
  const answer = encodeBinaryResponse({
    status: 200,
    headers: [['content-type', 'application/json; charset=utf-8']],
    body: typicalAnswer(images),
  });
  const decoder = new TextDecoder();

  const jsonParseBaseline = await median(iterations, () => JSON.parse(decoder.decode(body)));
  const clientSeal = await median(iterations, () => encapsulateRequest(keyPair.config, encodeBinaryRequest(inner)));
  const enclave = async (server: OhttpKeyPair) => {
    const { message } = await encapsulateRequest(server.config, encodeBinaryRequest(inner));
    const open = await median(iterations, async () =>
      decodeBinaryRequest((await server.decapsulateRequest(message)).bhttpRequest),
    );
    // Each opened request takes one answer, so every sample opens its own (not timed) first.
    const opened = await Promise.all(
      Array.from({ length: iterations + WARMUP_ITERATIONS }, () => server.decapsulateRequest(message)),
    );
    let next = 0;
    const seal = await median(iterations, () => opened[next++]!.sealResponse(answer));
    return { open, seal };
  };
  const nodeEnclave = await enclave(nodeKeyPair);
  const webEnclave = await enclave(keyPair);
  // openResponse is bound to the request whose answer it opens.
  const clientRequest = await encapsulateRequest(keyPair.config, encodeBinaryRequest(inner));
  const clientAnswer = await (await keyPair.decapsulateRequest(clientRequest.message)).sealResponse(answer);
  const clientOpen = await median(iterations, async () =>
    decodeBinaryResponse(await clientRequest.openResponse(clientAnswer)),
  );

  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  app.post('/predict', (request, reply) =>
    reply.send({ images: ((request.body as { images: unknown[] }).images ?? []).length }),
  );
  await app.ready();
  const payload = Buffer.from(body);
  const innerInject = await median(iterations, () =>
    app.inject({ method: 'POST', url: '/predict', headers: { 'content-type': 'application/json' }, payload }),
  );
  await app.close();

  return {
    bodyBytes: body.length,
    responseBytes: answer.length,
    iterations,
    ms: {
      jsonParseBaseline,
      clientSeal,
      enclaveOpen: nodeEnclave.open,
      enclaveSeal: nodeEnclave.seal,
      enclaveOpenWebCrypto: webEnclave.open,
      enclaveSealWebCrypto: webEnclave.seal,
      clientOpen,
      innerInject,
    },
  };
}

export function formatOhttpCost(cost: OhttpCost): string {
  const line = (name: string, ms: number) =>
    `  ${name.padEnd(56)} ${ms.toFixed(3).padStart(8)} ms  ${(ms / cost.ms.jsonParseBaseline).toFixed(2).padStart(6)}x JSON.parse`;
  return [
    `OHTTP cost per request: ${cost.bodyBytes} B request body, ${cost.responseBytes} B Binary HTTP answer, median of ${cost.iterations} in one process`,
    line('baseline: JSON.parse of the body', cost.ms.jsonParseBaseline),
    line('client: seal the request (bhttp + HPKE)', cost.ms.clientSeal),
    line('enclave: open the request (HPKE + bhttp, node:crypto)', cost.ms.enclaveOpen),
    line('enclave: inner dispatch (app.inject + parse)', cost.ms.innerInject),
    line('enclave: seal the answer (bhttp + AES-GCM, node:crypto)', cost.ms.enclaveSeal),
    line('  the same open with @hpke/core over WebCrypto', cost.ms.enclaveOpenWebCrypto),
    line('  the same seal with @hpke/core over WebCrypto', cost.ms.enclaveSealWebCrypto),
    line('client: open the answer (AES-GCM + bhttp)', cost.ms.clientOpen),
  ].join('\n');
}
