// What `npm start` shows: every part's log lines, prefixed by part and rendered readably, at the
// most verbose level the stack offers; and never a secure request's payload. Unique markers ride
// in a secure image (a JPEG comment), in a secure body the model server refuses, and in the secure
// request's query; none may appear anywhere in the stack's output, while the gateway's own line
// for that very request does.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { sampleImage } from '../../common/index.js';
import { waitFor } from '../helpers/gateway.js';
import { testModelPath } from '../helpers/model-server.js';
import { startMpg } from '../helpers/process.js';

/** A JPEG with `comment` in a COM segment right after SOI: still a valid image, decoded as usual. */
function withComment(jpeg: Buffer, comment: string): Buffer {
  const text = Buffer.from(comment, 'latin1');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(text.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xfe]), length, text, jpeg.subarray(2)]);
}

test("mpg stack shows every part's log lines, prefixed and readable, and no secure payload ever reaches them", async (t) => {
  await testModelPath();
  const stack = startMpg(t, ['stack', '--port', '0', '--public-port', '0', '--log-level', 'trace']);
  const [, gatewayUrl = ''] = await stack.waitForOutput(/gateway\s+(http:\/\/127\.0\.0\.1:\d+)/);
  await stack.waitForOutput(/Ctrl-C stops everything/);
  const marker = (what: string) => `mk${what}${randomUUID().replaceAll('-', '')}`;
  const markers = { image: marker('image'), refused: marker('refused'), query: marker('query') };

  const image = withComment(await sampleImage({ width: 64, height: 64, seed: 9 }), markers.image);
  const accepted = await fetch(`${gatewayUrl}/predict-secure?topk=3&note=${markers.query}`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: image,
  });
  assert.equal(accepted.status, 200, await accepted.clone().text());
  const refused = await fetch(`${gatewayUrl}/predict-secure`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: `not an image ${markers.refused}`,
  });
  assert.equal(refused.status, 400);
  const publicAnswer = await fetch(`${gatewayUrl}/predict-public`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: await sampleImage({ width: 64, height: 64 }),
  });
  assert.equal(publicAnswer.status, 200);

  // The gateway's own line about the accepted secure request is shown, so the output is not
  // clean merely because nothing was logged.
  const requestId = accepted.headers.get('x-request-id') ?? '';
  assert.ok(requestId !== '');
  await waitFor(
    () => new RegExp(`^gateway \\| \\S+ \\w+ +request done .*reqId=${requestId}`, 'm').test(stack.stderr()),
    "the gateway's line for the secure request",
    10_000,
  );

  const lines = stack
    .stderr()
    .split('\n')
    .filter((line) => line !== '');
  for (const part of ['stack', 'gateway', 'public', 'enclave'])
    assert.ok(
      lines.some((line) => line.startsWith(`${part.padEnd(7)} | `)),
      `${part} lines are shown`,
    );
  assert.ok(
    lines.some((line) => /^gateway \| \d\d:\d\d:\d\d\.\d{3} INFO {2}secure member attested /.test(line)),
    'pino lines are rendered compactly',
  );
  assert.deepEqual(
    lines.filter((line) => line.includes('{"level"')),
    [],
    'no raw pino JSON',
  );

  stack.child.kill('SIGTERM');
  assert.equal(await stack.exited, 0, stack.stderr());
  const everything = stack.stdout() + stack.stderr();
  for (const [where, value] of Object.entries(markers))
    assert.ok(!everything.includes(value), `the ${where} marker never reaches the stack's output`);
});
