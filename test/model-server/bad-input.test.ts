// Every way a /predict request can be wrong gets a coded 4xx, no stack, and the server keeps serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { sampleImage } from '../../common/index.js';
import { pngDeclaring } from '../helpers/images.js';
import type { JsonAnswer } from '../helpers/model-server.js';
import { postBytes, postJson, startModelServer } from '../helpers/model-server.js';

function assertCodedError(answer: JsonAnswer, status: number, code: string, message?: RegExp): void {
  assert.equal(answer.status, status, `${code}: ${JSON.stringify(answer.body)}`);
  assert.deepEqual(
    Object.keys(answer.body).sort(),
    ['code', 'message', 'statusCode'],
    'only statusCode, code and message',
  );
  assert.equal(answer.body.code, code);
  assert.equal(answer.body.statusCode, status);
  assert.doesNotMatch(String(answer.body.message), /\bat .+:\d+:\d+/, 'no stack trace');
  if (message) assert.match(String(answer.body.message), message);
}

test('each bad request gets its own code and the server keeps serving', async (t) => {
  const { url } = await startModelServer(t, ['--max-images', '4', '--body-limit', '262144', '--max-pixels', '1000000']);
  const predict = `${url}/predict`;
  const good = (await sampleImage()).toString('base64');
  const jpeg = await sampleImage();
  const tiny = (await sampleImage({ width: 32, height: 32 })).toString('base64');

  await t.test('invalid JSON', async () =>
    assertCodedError(await postJson(predict, '{"images": ['), 400, 'MS_INVALID_JSON'),
  );
  await t.test('empty JSON body', async () => {
    const response = await fetch(predict, { method: 'POST', headers: { 'content-type': 'application/json' } });
    assertCodedError(
      { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> },
      400,
      'MS_INVALID_JSON',
    );
  });
  await t.test('body that is not an object', async () =>
    assertCodedError(await postJson(predict, [good]), 400, 'MS_INVALID_REQUEST'),
  );
  await t.test('unknown field', async () =>
    assertCodedError(await postJson(predict, { images: [good], colour: 'red' }), 400, 'MS_INVALID_REQUEST', /colour/),
  );
  await t.test('missing images', async () =>
    assertCodedError(await postJson(predict, { topk: 5 }), 400, 'MS_NO_IMAGES'),
  );
  await t.test('empty images', async () =>
    assertCodedError(await postJson(predict, { images: [] }), 400, 'MS_NO_IMAGES'),
  );
  await t.test('images not an array', async () =>
    assertCodedError(await postJson(predict, { images: good }), 400, 'MS_NO_IMAGES'),
  );
  await t.test('more images than the limit', async () =>
    assertCodedError(await postJson(predict, { images: Array(5).fill(tiny) }), 400, 'MS_TOO_MANY_IMAGES', /limit is 4/),
  );
  await t.test('invalid base64', async () =>
    assertCodedError(
      await postJson(predict, { images: [good, 'not*base64!'] }),
      400,
      'MS_INVALID_BASE64',
      /images\[1\]/,
    ),
  );
  await t.test('an image that is not a string', async () =>
    assertCodedError(await postJson(predict, { images: [42] }), 400, 'MS_INVALID_BASE64', /images\[0\]/),
  );
  await t.test('bytes that are no image', async () =>
    assertCodedError(
      await postJson(predict, { images: [Buffer.from('hello, world, not a picture').toString('base64')] }),
      400,
      'MS_NOT_AN_IMAGE',
    ),
  );
  await t.test('a truncated JPEG', async () =>
    assertCodedError(
      await postJson(predict, { images: [jpeg.subarray(0, Math.floor(jpeg.length / 2)).toString('base64')] }),
      400,
      'MS_CORRUPT_IMAGE',
    ),
  );
  await t.test('a truncated JPEG as a raw body', async () =>
    assertCodedError(await postBytes(predict, jpeg.subarray(0, 600), 'image/jpeg'), 400, 'MS_CORRUPT_IMAGE'),
  );
  await t.test('a decompression bomb: a tiny PNG declaring 30000x30000', async () => {
    const bomb = pngDeclaring(30000, 30000);
    assert.ok(bomb.length < 2048);
    assertCodedError(
      await postJson(predict, { images: [bomb.toString('base64')] }),
      413,
      'MS_IMAGE_TOO_LARGE',
      /30000x30000/,
    );
  });
  await t.test('an image over the pixel limit', async () => {
    const big = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: 'red' } })
      .png()
      .toBuffer();
    assertCodedError(await postBytes(predict, big, 'image/png'), 413, 'MS_IMAGE_TOO_LARGE');
  });
  await t.test('a body over the size limit', async () =>
    assertCodedError(await postJson(predict, { images: ['A'.repeat(300_000)] }), 413, 'MS_BODY_TOO_LARGE'),
  );
  await t.test('an unsupported content type', async () =>
    assertCodedError(await postBytes(predict, Buffer.from('hello'), 'text/plain'), 415, 'MS_UNSUPPORTED_MEDIA_TYPE'),
  );
  await t.test('an image format that is not accepted (GIF, SVG)', async () => {
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
    assertCodedError(
      await postJson(predict, { images: [gif.toString('base64')] }),
      415,
      'MS_UNSUPPORTED_IMAGE_FORMAT',
      /gif/,
    );
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    assertCodedError(
      await postJson(predict, { images: [svg.toString('base64')] }),
      415,
      'MS_UNSUPPORTED_IMAGE_FORMAT',
      /svg/,
    );
  });
  for (const topk of [0, 101, -1, 2.5, '5', null]) {
    await t.test(`topk ${JSON.stringify(topk)} out of range`, async () =>
      assertCodedError(await postJson(predict, { images: [good], topk }), 400, 'MS_INVALID_TOPK'),
    );
  }
  await t.test('topk out of range in the query of a raw body', async () =>
    assertCodedError(await postBytes(`${predict}?topk=abc`, jpeg, 'image/jpeg'), 400, 'MS_INVALID_TOPK'),
  );
  await t.test('an unknown route', async () => {
    const response = await fetch(`${url}/predictions`, { method: 'POST' });
    assertCodedError(
      { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> },
      404,
      'MS_NOT_FOUND',
    );
  });

  await t.test('after all of that, a good request is answered', async () => {
    const answer = await postJson(predict, { images: [good, good] });
    assert.equal(answer.status, 200);
    assert.equal((answer.body.predictions as unknown[]).length, 2);
  });
});
