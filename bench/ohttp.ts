// node dist/bench/ohttp.js [--iterations N]: the OHTTP cost per request for bench:enclave's body
// (a batch of two sample JPEGs as base64 JSON, about 110 KB), beside JSON.parse of the same body.
import { integer } from '../common/index.js';
import { studyRequestBody } from '../loadtest/index.js';
import { DEFAULT_OHTTP_ITERATIONS, formatOhttpCost, measureOhttpCost } from './ohttp-cost.js';
import { runBench } from './run.js';

await runBench({
  name: 'ohttp',
  summary: [
    "The OHTTP cost per request for bench:enclave's body (the study's batch of two base64 JPEGs), beside JSON.parse of the same body.",
  ],
  options: {
    iterations: integer({
      description: 'Runs per figure (the median is reported)',
      default: DEFAULT_OHTTP_ITERATIONS,
      min: 1,
      max: 1_000_000,
    }),
  },
  async main({ iterations }) {
    const body = new TextEncoder().encode(await studyRequestBody());
    console.log(formatOhttpCost(await measureOhttpCost(body, { iterations })));
  },
});
