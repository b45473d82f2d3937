// Fuzzing the gateway's privacy policy and header handling (fast-check, fixed seed): the policy file
// parser refuses everything it does not accept with a PolicyError naming where, classification
// never lets any secure signal be lowered whatever the header says, and through a real gateway
// every header a client can send ends on the route the classifier chose or in its coded refusal.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import type { PrivacyPolicy } from '../../gateway/index.js';
import type { RequestSignals } from '../../gateway/policy.js';
import { PolicyError, classifyRequest, gatewayErrors, parsePolicy } from '../../gateway/index.js';
import { requestIdFor, withoutHopByHop } from '../../gateway/headers.js';
import { startGateway, startRecordingUpstream } from '../helpers/gateway.js';
import { HANG_GUARD_MS, fuzzParameters, headerFieldValue, refusalOf } from '../helpers/fuzz.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const SECURE_KEY = 'clinic-secret-key';
const PUBLIC_KEY = 'shop-secret-key';
const POLICY_TEXT = JSON.stringify({
  tenants: [
    { name: 'clinic', privacy: 'secure-only', apiKeySha256: [sha256(SECURE_KEY)] },
    { name: 'shop', privacy: 'public-allowed', apiKeySha256: [sha256(PUBLIC_KEY)] },
  ],
});
const REJECT_CODES = [
  'GW_API_KEY_REQUIRED',
  'GW_UNKNOWN_API_KEY',
  'GW_SECURE_ONLY_TENANT',
  'GW_INVALID_PRIVACY_HEADER',
];

/** Policy-shaped JSON: the real keys with arbitrary values, sometimes an unknown key. */
const policyShaped = fc.record(
  {
    requireApiKey: fc.oneof(fc.boolean(), fc.jsonValue()),
    secureOnlyOnPublicRoute: fc.oneof(fc.constantFrom('upgrade', 'reject', 'Upgrade', ''), fc.jsonValue()),
    tenants: fc.oneof(
      fc.array(
        fc.record(
          {
            name: fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,70}$/), fc.string()),
            privacy: fc.oneof(fc.constantFrom('secure-only', 'public-allowed', 'secure'), fc.jsonValue()),
            apiKeySha256: fc.oneof(
              fc.array(fc.oneof(fc.string().map(sha256), fc.constant(sha256('')), fc.string())),
              fc.jsonValue(),
            ),
            rateLimit: fc.oneof(
              fc.record(
                {
                  requestsPerSecond: fc.oneof(fc.double(), fc.jsonValue()),
                  burst: fc.oneof(fc.double(), fc.jsonValue()),
                },
                { requiredKeys: [] },
              ),
              fc.jsonValue(),
            ),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      fc.jsonValue(),
    ),
    'privacy ': fc.jsonValue(),
  },
  { requiredKeys: [] },
);

/** What a client can put in the privacy header: the accepted words in any case and padding, or anything. */
const privacyHeader = fc.option(
  fc.oneof(
    fc
      .tuple(
        fc.constantFrom('secure', 'public', 'SECURE', 'Secure', 'PuBlIc', 'secure,public', 'public,secure'),
        fc.constantFrom('', ' ', '\t', '  '),
      )
      .map(([word, pad]) => `${pad}${word}${pad}`),
    headerFieldValue,
  ),
  { nil: undefined },
);
const apiKey = fc.option(fc.oneof(fc.constantFrom(SECURE_KEY, PUBLIC_KEY, ''), headerFieldValue), { nil: undefined });

test('parsePolicy: any text is a policy or a PolicyError that names the source', { timeout: HANG_GUARD_MS }, () => {
  const texts = fc.oneof(
    fc.string(),
    fc.jsonValue().map((value) => JSON.stringify(value)),
    policyShaped.map((value) => JSON.stringify(value)),
    policyShaped.map((value) => JSON.stringify(value, null, 2).replace(/"name"/, '"name": "dup", "name"')),
  );
  fc.assert(
    fc.property(texts, (text) => {
      const refusal = refusalOf(() => parsePolicy(text, 'fuzz.json'), [PolicyError]);
      if (refusal) assert.match(refusal.message, /^fuzz\.json: /);
    }),
    fuzzParameters(2_000),
  );
});

test('parsePolicy: a key written twice is refused, whichever value comes last', { timeout: HANG_GUARD_MS }, () => {
  fc.assert(
    fc.property(
      fc.constantFrom('secure-only', 'public-allowed'),
      fc.constantFrom('secure-only', 'public-allowed'),
      fc.constantFrom('', ' ', '\n  '),
      (first, second, space) => {
        const text = `{"tenants": [{"name": "t", "privacy": "${first}",${space}"privacy": "${second}", "apiKeySha256": ["${sha256('k')}"]}]}`;
        const refusal = refusalOf(() => parsePolicy(text, 'dup.json'), [PolicyError]);
        assert.ok(refusal instanceof PolicyError && refusal.jsonPath === 'tenants[0].privacy', `accepted ${text}`);
      },
    ),
    fuzzParameters(50),
  );
});

test(
  'classifyRequest: no signal ever lowers another, and every refusal is a documented code',
  { timeout: HANG_GUARD_MS },
  () => {
    const policies = fc.constantFrom(
      parsePolicy(POLICY_TEXT, 'p'),
      parsePolicy(
        JSON.stringify({ ...JSON.parse(POLICY_TEXT), requireApiKey: true, secureOnlyOnPublicRoute: 'reject' }),
        'p',
      ),
    );
    const signals = fc.record({
      pathRoute: fc.constantFrom('public' as const, 'secure' as const),
      privacyHeader,
      apiKey,
    });
    fc.assert(
      fc.property(policies, signals, (policy: PrivacyPolicy, request: RequestSignals) => {
        const decision = classifyRequest(policy, request);
        if (decision.kind === 'reject') {
          assert.ok(REJECT_CODES.includes(decision.code));
          assert.ok(
            gatewayErrors.table[decision.code],
            `${decision.code} is in the error table, which owns its status`,
          );
          return;
        }
        const header = request.privacyHeader?.trim().toLowerCase();
        const secureSignal = request.pathRoute === 'secure' || header === 'secure' || request.apiKey === SECURE_KEY;
        if (secureSignal) assert.equal(decision.route, 'secure', 'a secure signal was lowered');
        else assert.equal(decision.route, 'public');
        assert.equal(decision.upgraded, decision.route === 'secure' && request.pathRoute === 'public');
      }),
      fuzzParameters(5_000),
    );
  },
);

test(
  "header handling: hop-by-hop fields and those Connection names never pass; request ids are the client's only when well-formed",
  { timeout: HANG_GUARD_MS },
  () => {
    const name = fc.oneof(
      fc.constantFrom(
        'keep-alive',
        'te',
        'trailer',
        'upgrade',
        'transfer-encoding',
        'x-privacy',
        'x-api-key',
        'content-type',
      ),
      fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    );
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.string()),
        fc.array(name, { maxLength: 4 }),
        fc.constantFrom(',', ', ', ' ,'),
        (headers, named, separator) => {
          const withConnection = { ...headers, connection: named.map((entry) => entry.toUpperCase()).join(separator) };
          const forwarded = withoutHopByHop(withConnection);
          for (const dropped of ['connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'transfer-encoding', ...named])
            assert.ok(!(dropped in forwarded), `${dropped} was forwarded`);
          for (const [key, value] of Object.entries(forwarded))
            assert.equal(value, withConnection[key as keyof typeof withConnection]);
        },
      ),
      fuzzParameters(2_000),
    );
    fc.assert(
      fc.property(
        fc.option(
          fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/)),
          { nil: undefined },
        ),
        (given) => {
          const id = requestIdFor(given === undefined ? {} : { 'x-request-id': given });
          // Repeated fields arrive as one value joined with commas.
          const joined = Array.isArray(given) ? given.join(',') : given;
          if (joined !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(joined)) assert.equal(id, joined);
          else assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        },
      ),
      fuzzParameters(2_000),
    );
  },
);

test(
  'through a real gateway: any privacy header and API key a client sends lands on the route the policy chose, or gets its coded refusal; nothing secure reaches the public upstream',
  { timeout: HANG_GUARD_MS },
  async (t) => {
    const publicUpstream = await startRecordingUpstream(t, 'public');
    const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
    const policy = parsePolicy(POLICY_TEXT, 'fuzz-policy.json');
    const { url } = await startGateway(
      t,
      ['--public-upstream', publicUpstream.url, '--secure-upstream', secureUpstream.url],
      { policy },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('public' as const, 'secure' as const),
        privacyHeader,
        apiKey,
        async (pathRoute, header, key) => {
          const publicBefore = publicUpstream.received.length;
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (header !== undefined) headers['x-privacy'] = header;
          if (key !== undefined) headers['x-api-key'] = key;
          const response = await fetch(`${url}/predict-${pathRoute}`, {
            method: 'POST',
            headers,
            body: '{"images":[]}',
          });
          const body = (await response.json()) as { code?: string; statusCode?: number };
          // The HTTP parser strips the padding a client puts around a header value; the gateway sees the rest.
          const decision = classifyRequest(policy, {
            pathRoute,
            privacyHeader: header?.replace(/^[ \t]+|[ \t]+$/g, ''),
            apiKey: key?.replace(/^[ \t]+|[ \t]+$/g, ''),
          });
          if (decision.kind === 'reject') {
            const status = gatewayErrors.table[decision.code].statusCode;
            assert.deepEqual([response.status, body.code, body.statusCode], [status, decision.code, status]);
          } else {
            assert.equal(response.status, 200, JSON.stringify(body));
            assert.equal(response.headers.get('x-privacy-route'), decision.route);
          }
          const secureSignal =
            pathRoute === 'secure' || header?.trim().toLowerCase() === 'secure' || key?.trim() === SECURE_KEY;
          if (secureSignal)
            assert.equal(
              publicUpstream.received.length,
              publicBefore,
              'a request with a secure signal reached the public upstream',
            );
        },
      ),
      fuzzParameters(300),
    );
  },
);
