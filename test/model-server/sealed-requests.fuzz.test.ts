// Fuzzing the enclave's door for sealed requests (fast-check, fixed seed) on a real enclave-mode
// model server: arbitrary bytes and changed genuine messages as message/ohttp-req get a coded 4xx
// and never open; properly sealed arbitrary inner requests (any method, path, content type and
// body) get a sealed answer that is a prediction or a coded 4xx; the server keeps serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createEmulatedNsmSource, emulatedImageMeasurements } from '../../attestation/index.js';
import { sampleImage } from '../../common/index.js';
import { loadModelServer } from '../../model-server/index.js';
import { modelServerErrors } from '../../model-server/errors.js';
import {
  decodeBinaryResponse,
  decodeKeyConfigList,
  encapsulateRequest,
  encodeBinaryRequest,
} from '../../ohttp/index.js';
import { HANG_GUARD_MS, fuzzParameters } from '../helpers/fuzz.js';
import { modelServerConfig, testModelPath } from '../helpers/model-server.js';

const CODES = Object.keys(modelServerErrors.table);

test(
  'an enclave model server: arbitrary and changed message/ohttp-req are refused with a coded 4xx; sealed arbitrary inner requests are answered, sealed, with a prediction or a coded 4xx',
  { timeout: HANG_GUARD_MS },
  async (t) => {
    const source = createEmulatedNsmSource(emulatedImageMeasurements({ modelPath: await testModelPath() }));
    const server = await loadModelServer(modelServerConfig(['--enclave', 'emulated']), {
      attestation: source,
      logger: false,
    });
    t.after(() => server.close());
    const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    await server.load(await testModelPath());
    const [config] = decodeKeyConfigList(new Uint8Array(await (await fetch(`${url}/ohttp-keys`)).arrayBuffer()));
    assert.ok(config);
    const image = await sampleImage();
    const post = (body: Uint8Array) =>
      fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'message/ohttp-req' }, body });

    const genuine = (
      await encapsulateRequest(
        config,
        encodeBinaryRequest({
          method: 'POST',
          scheme: 'https',
          authority: 'enclave',
          path: '/predict',
          headers: [['content-type', 'image/jpeg']],
          body: image,
        }),
      )
    ).message;
    const changed = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 16 })).map(([at, xor, cut]) => {
      const copy = Uint8Array.from(genuine);
      copy[at % copy.length] = copy[at % copy.length]! ^ xor;
      return cut === 0 ? copy : copy.slice(0, copy.length - cut);
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), changed), async (bytes) => {
        const response = await post(bytes);
        const body = (await response.json()) as { statusCode?: number; code?: string };
        assert.ok(response.status >= 400 && response.status < 500, `outer ${response.status}`);
        assert.ok(
          CODES.includes(String(body.code)) && String(body.code).startsWith('MS_OHTTP_'),
          `outer answer ${JSON.stringify(body)}`,
        );
        assert.equal(body.statusCode, response.status);
      }),
      fuzzParameters(150),
    );

    const innerRequests = fc.record({
      method: fc.constantFrom('POST', 'GET', 'PUT', 'DELETE'),
      path: fc.oneof(
        fc.constantFrom('/predict', '/predict?topk=3', '/predict?topk=0', '/healthz', '/metrics', '/attestation'),
        fc.stringMatching(/^\/[!-~]{0,20}$/),
      ),
      contentType: fc.constantFrom(
        'image/jpeg',
        'image/png',
        'image/webp',
        'application/json',
        'text/plain',
        'message/ohttp-req',
      ),
      body: fc.oneof(
        fc.uint8Array({ maxLength: 400 }),
        fc.constant(new Uint8Array(image)),
        fc.jsonValue().map((value) => new TextEncoder().encode(JSON.stringify(value) ?? '')),
      ),
    });
    await fc.assert(
      fc.asyncProperty(innerRequests, async (inner) => {
        const request = await encapsulateRequest(
          config,
          encodeBinaryRequest({
            method: inner.method,
            scheme: 'https',
            authority: 'enclave',
            path: inner.path,
            headers: [['content-type', inner.contentType]],
            body: inner.body,
          }),
        );
        const response = await post(request.message);
        const sealed = new Uint8Array(await response.arrayBuffer());
        assert.equal(
          response.status,
          200,
          `outer ${response.status}: ${Buffer.from(sealed).toString('utf8').slice(0, 200)}`,
        );
        const answer = decodeBinaryResponse(await request.openResponse(sealed));
        if (answer.status === 200) return;
        const body = JSON.parse(Buffer.from(answer.body).toString('utf8')) as { statusCode?: number; code?: string };
        assert.ok(answer.status >= 400 && answer.status < 500, `inner ${answer.status} ${JSON.stringify(body)}`);
        assert.ok(CODES.includes(String(body.code)), `inner answer ${JSON.stringify(body)}`);
        assert.equal(body.statusCode, answer.status);
      }),
      fuzzParameters(150),
    );

    // Still serving: the genuine sealed image is classified.
    const request = await encapsulateRequest(
      config,
      encodeBinaryRequest({
        method: 'POST',
        scheme: 'https',
        authority: 'enclave',
        path: '/predict',
        headers: [['content-type', 'image/jpeg']],
        body: image,
      }),
    );
    const response = await post(request.message);
    assert.equal(response.status, 200);
    assert.equal(
      decodeBinaryResponse(await request.openResponse(new Uint8Array(await response.arrayBuffer()))).status,
      200,
    );
  },
);
