// Fuzzing the model server's request paths (fast-check, fixed seed): the JSON request reader
// answers every shape with images or a coded MS_ 4xx, and a real server fed arbitrary bytes as
// JSON or as an image answers each with a coded 4xx (or a prediction) and keeps serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { sampleImage } from '../../common/index.js';
import { modelServerErrors } from '../../model-server/errors.js';
import { readPredictRequest } from '../../model-server/predict-request.js';
import { HANG_GUARD_MS, fuzzParameters, isCoded4xx } from '../helpers/fuzz.js';
import { postBytes, postJson, startModelServer } from '../helpers/model-server.js';

const CODES = Object.keys(modelServerErrors.table);
const LIMITS = { maxImages: 8, maxTopk: 1000, defaultTopk: 5 };

const base64ish = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('base64')),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => `data:image/png;base64,${Buffer.from(bytes).toString('base64')}`),
  fc.string({ maxLength: 64 }),
  fc.stringMatching(/^[A-Za-z0-9+/=]{0,40}$/),
);
const topk = fc.oneof(fc.integer({ min: -2, max: 1002 }), fc.double(), fc.string({ maxLength: 6 }), fc.jsonValue());
/** Request-shaped JSON: images and topk of every type, sometimes an unknown field; or any JSON at all. */
const requestBodies = fc.oneof(
  fc.record(
    {
      images: fc.oneof(fc.array(fc.oneof(base64ish, fc.jsonValue()), { maxLength: 10 }), fc.jsonValue()),
      topk,
      extra: fc.jsonValue(),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue(),
);
const queries = fc.record(
  { topk: fc.oneof(fc.stringMatching(/^\d{1,5}$/), fc.string({ maxLength: 5 })) },
  { requiredKeys: [] },
);

test(
  'readPredictRequest: every JSON body and query is a request or a coded MS_ 4xx',
  { timeout: HANG_GUARD_MS },
  () => {
    fc.assert(
      fc.property(requestBodies, queries, (body, query) => {
        let request: ReturnType<typeof readPredictRequest>;
        try {
          request = readPredictRequest(body, query, LIMITS);
        } catch (error) {
          assert.ok(isCoded4xx(error, 'MS_', CODES), `refused with ${String(error)}`);
          return;
        }
        assert.ok(request.images.length >= 1 && request.images.length <= LIMITS.maxImages);
        assert.ok(Number.isInteger(request.topk) && request.topk >= 1 && request.topk <= LIMITS.maxTopk);
      }),
      fuzzParameters(5_000),
    );
  },
);

test('readPredictRequest: a raw body is one image, or MS_NOT_AN_IMAGE when empty', { timeout: HANG_GUARD_MS }, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), queries, (bytes, query) => {
      try {
        const request = readPredictRequest(Buffer.from(bytes), query, LIMITS);
        assert.equal(request.images.length, 1);
        assert.equal(request.indexed, false);
      } catch (error) {
        assert.ok(isCoded4xx(error, 'MS_', CODES), `refused with ${String(error)}`);
        if (bytes.length === 0) assert.equal((error as { code: string }).code, 'MS_NOT_AN_IMAGE');
      }
    }),
    fuzzParameters(2_000),
  );
});

test(
  'a real model server: arbitrary bytes as JSON or as an image get a coded 4xx or a prediction, and it keeps serving',
  { timeout: HANG_GUARD_MS },
  async (t) => {
    const { url } = await startModelServer(t);
    const image = await sampleImage();
    // Arbitrary bytes, and a real JPEG cut, flipped or spliced, so the decoder sees near-valid input too.
    const imageBytes = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 2048 }),
      fc.integer({ min: 0, max: image.length - 1 }).map((end) => image.subarray(0, end)),
      fc.tuple(fc.integer({ min: 0, max: image.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, xor]) => {
        const copy = Buffer.from(image);
        copy[at] = copy[at]! ^ xor;
        return copy;
      }),
      fc
        .tuple(
          fc.constantFrom(
            Buffer.from([0xff, 0xd8, 0xff]),
            Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
            Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'),
          ),
          fc.uint8Array({ maxLength: 512 }),
        )
        .map(([magic, rest]) => Buffer.concat([magic, rest])),
    );
    const contentType = fc.constantFrom(
      'image/jpeg',
      'image/png',
      'image/webp',
      'image/jpeg; charset=binary',
      'IMAGE/PNG',
    );
    await fc.assert(
      fc.asyncProperty(imageBytes, contentType, async (bytes, type) => {
        const answer = await postBytes(`${url}/predict`, bytes, type);
        if (answer.status === 200) return;
        assert.ok(answer.status >= 400 && answer.status < 500, `${answer.status} ${JSON.stringify(answer.body)}`);
        assert.ok(CODES.includes(String(answer.body.code)), `uncoded answer ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.statusCode, answer.status);
      }),
      fuzzParameters(200),
    );
    const jsonBytes = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      requestBodies.map((body) => Buffer.from(JSON.stringify(body) ?? '')),
      fc.string({ maxLength: 200 }).map((text) => Buffer.from(text)),
    );
    await fc.assert(
      fc.asyncProperty(jsonBytes, async (bytes) => {
        const answer = await postBytes(`${url}/predict`, bytes, 'application/json');
        if (answer.status === 200) return;
        assert.ok(answer.status >= 400 && answer.status < 500, `${answer.status} ${JSON.stringify(answer.body)}`);
        assert.ok(CODES.includes(String(answer.body.code)), `uncoded answer ${JSON.stringify(answer.body)}`);
      }),
      fuzzParameters(200),
    );
    // Still serving: a good image is classified.
    const after = await postJson(`${url}/predict`, { images: [image.toString('base64')] });
    assert.equal(after.status, 200);
  },
);
