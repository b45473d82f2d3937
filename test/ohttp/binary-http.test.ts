// Binary HTTP (RFC 9292) against the RFC's own known-length examples, and everything it refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  OhttpError,
  decodeBinaryRequest,
  decodeBinaryResponse,
  encodeBinaryRequest,
  encodeBinaryResponse,
} from '../../ohttp/index.js';

const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

// RFC 9292 §5.1 Figure 8: GET /hello.txt, known length.
const FIGURE_8 =
  '0003474554056874747073000a2f68656c6c6f2e747874406c0a757365722d6167656e74346375726c2f372e31362e33206c69626375726c2f372e31362e33204f70656e53534c2f302e392e376c207a6c69622f312e322e3304686f73740f7777772e6578616d706c652e636f6d0f6163636570742d6c616e677561676506656e2c206d690000';
// RFC 9292 §5.1 Figure 9: the same request, indeterminate length (not supported here).
const FIGURE_9_START = '0203474554056874747073000a2f68656c6c6f2e747874';
// RFC 9292 §5.2 Figure 13: a known-length 200 with content and a trailer.
const FIGURE_13 = '0140c8001d5468697320636f6e74656e7420636f6e7461696e732043524c462e0d0a0d07747261696c65720474657874';

const HELLO = {
  method: 'GET',
  scheme: 'https',
  authority: '',
  path: '/hello.txt',
  headers: [
    ['user-agent', 'curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3'],
    ['host', 'www.example.com'],
    ['accept-language', 'en, mi'],
  ] as [string, string][],
  body: new Uint8Array(0),
};

function refused(decode: () => unknown, message: RegExp): void {
  assert.throws(
    decode,
    (error: unknown) => error instanceof OhttpError && error.reason === 'malformed' && message.test(error.message),
  );
}

test('RFC 9292 Figure 8: the known-length request decodes, and encoding it gives the same bytes', () => {
  assert.deepEqual(decodeBinaryRequest(unhex(FIGURE_8)), HELLO);
  assert.equal(hex(encodeBinaryRequest(HELLO)), FIGURE_8);
});

test('RFC 9292 §3.8: Figure 8 with its empty content and trailers left out, or padded with zeros, is the same request', () => {
  const full = unhex(FIGURE_8);
  for (const cut of [1, 2]) assert.deepEqual(decodeBinaryRequest(full.subarray(0, full.length - cut)), HELLO);
  assert.deepEqual(decodeBinaryRequest(new Uint8Array([...full, 0, 0, 0, 0])), HELLO);
  // A longer encoding of the framing indicator (0x4000 is 0) is the same message (RFC 9000 §16).
  assert.deepEqual(decodeBinaryRequest(new Uint8Array([0x40, 0x00, ...full.subarray(1)])), HELLO);
});

test('RFC 9292 Figure 13: the known-length response decodes (its trailer dropped), and a response round-trips', () => {
  const response = decodeBinaryResponse(unhex(FIGURE_13));
  assert.equal(response.status, 200);
  assert.deepEqual(response.headers, []);
  assert.equal(text(response.body), 'This content contains CRLF.\r\n');
  assert.equal(
    hex(encodeBinaryResponse(response)),
    '0140c8001d5468697320636f6e74656e7420636f6e7461696e732043524c462e0d0a00',
  );
  // RFC 9458 Appendix A's response: 200, everything else left out.
  assert.deepEqual(decodeBinaryResponse(unhex('0140c8')), { status: 200, headers: [], body: new Uint8Array(0) });
});

test('informational responses before the final one are read and dropped', () => {
  // 103 with a link field, then 204 with no sections.
  const bytes = unhex('01406708046c696e6b023c3e40cc');
  assert.deepEqual(decodeBinaryResponse(bytes), { status: 204, headers: [], body: new Uint8Array(0) });
});

test('a POST with a binary body and headers round-trips, field names lowercased', () => {
  const body = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
  const request = {
    method: 'POST',
    scheme: 'https',
    authority: 'enclave',
    path: '/predict?topk=3',
    headers: [
      ['Content-Type', 'image/jpeg'],
      ['x-obs', 'caf\xe9'],
    ] as [string, string][],
    body,
  };
  const decoded = decodeBinaryRequest(encodeBinaryRequest(request));
  assert.deepEqual(decoded, {
    ...request,
    headers: [
      ['content-type', 'image/jpeg'],
      ['x-obs', 'caf\xe9'],
    ],
  });
  const response = {
    status: 422,
    headers: [['content-type', 'application/json']] as [string, string][],
    body: new TextEncoder().encode('{"code":"MS_X"}'),
  };
  assert.deepEqual(decodeBinaryResponse(encodeBinaryResponse(response)), response);
});

test('the other framings and kinds are refused with a reason', () => {
  refused(() => decodeBinaryRequest(unhex(FIGURE_9_START)), /indeterminate-length request/);
  refused(() => decodeBinaryRequest(unhex(FIGURE_13)), /not a known-length request/);
  refused(() => decodeBinaryResponse(unhex(FIGURE_8)), /not a known-length response/);
  refused(() => decodeBinaryRequest(new Uint8Array(0)), /framing indicator needs 1 bytes/);
});

test('every truncation of Figure 8 inside a section is refused; the section boundaries are not', () => {
  const full = unhex(FIGURE_8);
  // The ends of the control data, the header section, the content and the trailers: the only
  // places it may stop (1 + 4 + 6 + 1 + 11 bytes of control data).
  assert.deepEqual(decodeBinaryRequest(full.subarray(0, 23)), { ...HELLO, headers: [] });
  const boundaries = new Set([23, full.length - 2, full.length - 1, full.length]);
  for (let length = 0; length < full.length; length++) {
    if (length === 23) continue;
    if (boundaries.has(length)) assert.deepEqual(decodeBinaryRequest(full.subarray(0, length)), HELLO);
    else
      assert.throws(
        () => decodeBinaryRequest(full.subarray(0, length)),
        (error: unknown) => error instanceof OhttpError && error.reason === 'malformed',
        `cut at ${length}`,
      );
  }
});

test('every single-byte change of Figure 8 and Figure 13 decodes to something else or is refused as malformed, never a crash', () => {
  for (const [figure, decode] of [
    [FIGURE_8, decodeBinaryRequest],
    [FIGURE_13, decodeBinaryResponse],
  ] as const) {
    const original = unhex(figure);
    for (let i = 0; i < original.length; i++) {
      for (const flip of [0x01, 0x40, 0x80, 0xff]) {
        const changed = original.slice();
        changed[i]! ^= flip;
        try {
          decode(changed);
        } catch (error) {
          assert.ok(
            error instanceof OhttpError && error.reason === 'malformed',
            `byte ${i} ^ ${flip}: ${String(error)}`,
          );
        }
      }
    }
  }
});

/** A request built by hand, for what the encoder will not write. */
function handBuilt(method: string, path: string, fields: [string, string][], tail = '0000'): Uint8Array {
  const prefixed = (part: string) => [part.length, ...Buffer.from(part, 'latin1')];
  const section = fields.flatMap(([name, value]) => [...prefixed(name), ...prefixed(value)]);
  return new Uint8Array([
    0,
    ...prefixed(method),
    ...prefixed('https'),
    ...prefixed(''),
    ...prefixed(path),
    section.length,
    ...section,
    ...unhex(tail),
  ]);
}

test('bad tokens, values, paths and padding are refused with their reasons', () => {
  assert.deepEqual(decodeBinaryRequest(handBuilt('GET', '/x', [['accept', '*/*']])).headers, [['accept', '*/*']]);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [[':method', 'POST']])), /invalid field name/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [['Accept', '*/*']])), /invalid field name/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [['bad name', 'x']])), /invalid field name/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [['x', 'a\r\nb: c']])), /invalid field value/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [['x', 'a\u0000b']])), /invalid field value/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [['x', ' a']])), /invalid field value/);
  refused(() => decodeBinaryRequest(handBuilt('GE T', '/x', [])), /invalid method/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/a b', [])), /invalid path/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '', [])), /invalid path/);
  refused(() => decodeBinaryRequest(handBuilt('GET', '/x', [], '000001')), /not zero padding/);
  // A length claiming more than the message holds is refused before anything is allocated.
  refused(
    () => decodeBinaryRequest(new Uint8Array([...handBuilt('GET', '/x', [], ''), 0xbf, 0xff, 0xff, 0xff])),
    /content needs 1073741823 bytes/,
  );
  // An 8-byte integer beyond 2^53 is refused, not rounded.
  refused(() => decodeBinaryRequest(unhex('c2197c5eff14e88c')), /too large/);
  refused(() => decodeBinaryResponse(unhex('01403c')), /status 60 is not 100-599/);
  refused(() => decodeBinaryResponse(unhex('014067')), /informational response without its field section/);
  assert.throws(() => encodeBinaryRequest({ ...HELLO, headers: [['x', 'bad\nvalue']] }), OhttpError);
  assert.throws(() => encodeBinaryResponse({ status: 99, headers: [], body: new Uint8Array(0) }), OhttpError);
});
