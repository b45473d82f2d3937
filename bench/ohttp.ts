// node dist/bench/ohttp.js [--iterations N]: the OHTTP cost per request for bench:enclave's body
// (a batch of two sample JPEGs as base64 JSON, about 110 KB), beside JSON.parse of the same body.
import { sampleImage } from '../loadtest/index.js';
import { DEFAULT_OHTTP_ITERATIONS, formatOhttpCost, measureOhttpCost } from './ohttp-cost.js';

const index = process.argv.indexOf('--iterations');
const iterations = index === -1 ? DEFAULT_OHTTP_ITERATIONS : Number(process.argv[index + 1]);
if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations needs a positive integer, got ${process.argv[index + 1]}`);
const image = (await sampleImage()).toString('base64');
const body = new TextEncoder().encode(JSON.stringify({ images: [image, image], topk: 5 }));
console.log(formatOhttpCost(await measureOhttpCost(body, { iterations })));
