// What end-to-end encryption (OHTTP) costs per request, client side and enclave side, measured in
// this process beside its baseline: JSON.parse of the same body (what any plaintext request costs
// the model server before inference). Also the enclave door's inner dispatch: app.inject of the
// same body into a Fastify route that parses it, against the same baseline.
// bench:enclave calls measureOhttpCost(); `node dist/bench/ohttp.js` prints it alone.
import Fastify from 'fastify';
import { OhttpKeyPair, decodeBinaryRequest, decodeBinaryResponse, encapsulateRequest, encodeBinaryRequest, encodeBinaryResponse } from '../ohttp/index.js';

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
    /** Enclave: HPKE open + Binary HTTP decode of the request. */
    enclaveOpen: number;
    /** Enclave: Binary HTTP encode + AES-GCM seal of the answer. */
    enclaveSeal: number;
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
  const topk = Array.from({ length: 5 }, (_, index) => ({ index: 100 + index, label: `label number ${index}`, score: 0.1 + index / 100 }));
  return new TextEncoder().encode(JSON.stringify({ model: 'resnet18', predictions: Array.from({ length: images }, () => ({ topk })), timings: { preprocessMs: 5.1, queueMs: 0.2, inferenceMs: 30.2, totalMs: 36.4 } }));
}

export async function measureOhttpCost(body: Uint8Array, { iterations = DEFAULT_OHTTP_ITERATIONS, images = 2 } = {}): Promise<OhttpCost> {
  const keyPair = await OhttpKeyPair.generate(1);
  const headers: [string, string][] = [['content-type', 'application/json']];
  const inner = { method: 'POST', scheme: 'https', authority: 'enclave', path: '/predict', headers, body };
  const answer = encodeBinaryResponse({ status: 200, headers: [['content-type', 'application/json; charset=utf-8']], body: typicalAnswer(images) });
  const decoder = new TextDecoder();

  const jsonParseBaseline = await median(iterations, () => JSON.parse(decoder.decode(body)));
  const clientSeal = await median(iterations, () => encapsulateRequest(keyPair.config, encodeBinaryRequest(inner)));
  const { message } = await encapsulateRequest(keyPair.config, encodeBinaryRequest(inner));
  const enclaveOpen = await median(iterations, async () => decodeBinaryRequest((await keyPair.decapsulateRequest(message)).bhttpRequest));
  // Each opened request takes one answer, so every sample opens its own (not timed) first.
  const opened = await Promise.all(Array.from({ length: iterations + WARMUP_ITERATIONS }, () => keyPair.decapsulateRequest(message)));
  let next = 0;
  const enclaveSeal = await median(iterations, () => opened[next++]!.sealResponse(answer));
  // openResponse is bound to the request whose answer it opens.
  const clientRequest = await encapsulateRequest(keyPair.config, encodeBinaryRequest(inner));
  const clientAnswer = await (await keyPair.decapsulateRequest(clientRequest.message)).sealResponse(answer);
  const clientOpen = await median(iterations, async () => decodeBinaryResponse(await clientRequest.openResponse(clientAnswer)));

  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  app.post('/predict', (request, reply) => reply.send({ images: ((request.body as { images: unknown[] }).images ?? []).length }));
  await app.ready();
  const payload = Buffer.from(body);
  const innerInject = await median(iterations, () => app.inject({ method: 'POST', url: '/predict', headers: { 'content-type': 'application/json' }, payload }));
  await app.close();

  return { bodyBytes: body.length, responseBytes: answer.length, iterations, ms: { jsonParseBaseline, clientSeal, enclaveOpen, enclaveSeal, clientOpen, innerInject } };
}

export function formatOhttpCost(cost: OhttpCost): string {
  const line = (name: string, ms: number) => `  ${name.padEnd(44)} ${ms.toFixed(3).padStart(8)} ms  ${(ms / cost.ms.jsonParseBaseline).toFixed(2).padStart(6)}x JSON.parse`;
  return [
    `OHTTP cost per request: ${cost.bodyBytes} B request body, ${cost.responseBytes} B Binary HTTP answer, median of ${cost.iterations} in one process`,
    line('baseline: JSON.parse of the body', cost.ms.jsonParseBaseline),
    line('client: seal the request (bhttp + HPKE)', cost.ms.clientSeal),
    line('enclave: open the request (HPKE + bhttp)', cost.ms.enclaveOpen),
    line('enclave: inner dispatch (app.inject + parse)', cost.ms.innerInject),
    line('enclave: seal the answer (bhttp + AES-GCM)', cost.ms.enclaveSeal),
    line('client: open the answer (AES-GCM + bhttp)', cost.ms.clientOpen),
  ].join('\n');
}
