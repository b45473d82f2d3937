// The privacy policy through the real gateway: headers, tenants, upgrades, rejections, rate limits,
// and the `mpg gateway` command refusing to start on a bad policy or bad flags.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { parsePolicy } from '../../gateway/index.js';
import {
  expectCodedError,
  metricValue,
  readMetrics,
  startGateway,
  startRecordingUpstream,
  waitFor,
} from '../helpers/gateway.js';
import type { RecordingUpstream } from '../helpers/gateway.js';
import { startMpg } from '../helpers/process.js';

const sha256 = (key: string): string => createHash('sha256').update(key).digest('hex');
const CLINIC_KEY = 'clinic-key-6f1d2c';
const SHOP_KEY = 'shop-key-93ab07';
const METERED_KEY = 'metered-key-41e8d5';
const UNKNOWN_KEY = 'nobody-key-000000';

function policyText({ requireApiKey = false, secureOnlyOnPublicRoute = 'upgrade' } = {}): string {
  return JSON.stringify({
    requireApiKey,
    secureOnlyOnPublicRoute,
    tenants: [
      { name: 'clinic', privacy: 'secure-only', apiKeySha256: [sha256(CLINIC_KEY)] },
      { name: 'shop', privacy: 'public-allowed', apiKeySha256: [sha256(SHOP_KEY)] },
      // Two requests at once, then one every 1000 s: the third is refused.
      {
        name: 'metered',
        privacy: 'public-allowed',
        apiKeySha256: [sha256(METERED_KEY)],
        rateLimit: { requestsPerSecond: 0.001, burst: 2 },
      },
    ],
  });
}

interface PolicyGateway {
  url: string;
  publicUpstream: RecordingUpstream;
  secureUpstream: RecordingUpstream;
}

async function startPolicyGateway(
  t: TestContext,
  options: { requireApiKey?: boolean; secureOnlyOnPublicRoute?: string } = {},
  flags: string[] = [],
): Promise<PolicyGateway> {
  const publicUpstream = await startRecordingUpstream(t, 'public');
  const secureUpstream = await startRecordingUpstream(t, 'secure', { unix: true });
  const policy = parsePolicy(policyText(options), 'policy.json');
  const { url } = await startGateway(
    t,
    ['--public-upstream', publicUpstream.url, '--secure-upstream', secureUpstream.url, ...flags],
    { policy },
  );
  return { url, publicUpstream, secureUpstream };
}

function predict(url: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: '{"images":[],"topk":1}',
  });
}

async function policyDecisions(url: string, decision: string): Promise<number> {
  return metricValue(await readMetrics(url), 'mpg_gateway_policy_decisions_total', { decision }) ?? 0;
}

async function expectServedBy(
  response: Response,
  upstream: RecordingUpstream,
  route: 'public' | 'secure',
): Promise<void> {
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-privacy-route'), route);
  assert.deepEqual(await response.json(), { upstream: upstream.name, path: '/predict' });
}

// --- the privacy header ---

test('x-privacy: secure on /predict-public goes to the secure upstream, counted as an upgrade', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t);
  await expectServedBy(await predict(url, '/predict-public', { 'x-privacy': 'secure' }), secureUpstream, 'secure');
  // Case and surrounding spaces do not matter, and a known public-allowed tenant can ask too.
  await expectServedBy(
    await predict(url, '/predict-public', { 'x-privacy': ' SECURE ', 'x-api-key': SHOP_KEY }),
    secureUpstream,
    'secure',
  );
  assert.equal(publicUpstream.received.length, 0);
  assert.equal(secureUpstream.received.length, 2);
  assert.equal(secureUpstream.received[0]!.headers['x-privacy-route'], 'secure');
  assert.equal(await policyDecisions(url, 'upgraded'), 2);
});

test('x-privacy: public on /predict-secure still goes secure, and is no upgrade', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t);
  await expectServedBy(await predict(url, '/predict-secure', { 'x-privacy': 'public' }), secureUpstream, 'secure');
  await expectServedBy(
    await predict(url, '/predict-secure', { 'x-privacy': 'public', 'x-api-key': SHOP_KEY }),
    secureUpstream,
    'secure',
  );
  assert.equal(publicUpstream.received.length, 0);
  assert.equal(await policyDecisions(url, 'upgraded'), 0);
});

test('the privacy header is the one named by --privacy-header', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, {}, ['--privacy-header', 'x-data-class']);
  await expectServedBy(await predict(url, '/predict-public', { 'x-data-class': 'secure' }), secureUpstream, 'secure');
  // The default name means nothing now.
  await expectServedBy(await predict(url, '/predict-public', { 'x-privacy': 'secure' }), publicUpstream, 'public');
});

test('an invalid privacy header is 400 GW_INVALID_PRIVACY_HEADER and nothing is forwarded', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t);
  for (const path of ['/predict-public', '/predict-secure']) {
    for (const value of ['private', 'secure,public', '']) {
      await expectCodedError(await predict(url, path, { 'x-privacy': value }), 400, 'GW_INVALID_PRIVACY_HEADER');
    }
  }
  assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
});

// --- tenants ---

test('a public-allowed tenant on /predict-public stays public, the anonymous caller too', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t);
  await expectServedBy(await predict(url, '/predict-public', { 'x-api-key': SHOP_KEY }), publicUpstream, 'public');
  await expectServedBy(await predict(url, '/predict-public'), publicUpstream, 'public');
  assert.equal(secureUpstream.received.length, 0);
});

test('a secure-only tenant on /predict-public is upgraded to secure when the policy says "upgrade"', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, { secureOnlyOnPublicRoute: 'upgrade' });
  await expectServedBy(await predict(url, '/predict-public', { 'x-api-key': CLINIC_KEY }), secureUpstream, 'secure');
  // Asking for public changes nothing: the tenant's requirement wins.
  await expectServedBy(
    await predict(url, '/predict-public', { 'x-api-key': CLINIC_KEY, 'x-privacy': 'public' }),
    secureUpstream,
    'secure',
  );
  assert.equal(publicUpstream.received.length, 0);
  assert.equal(await policyDecisions(url, 'upgraded'), 2);
});

test('an upgraded request with no healthy secure member is 503 GW_NO_SECURE_UPSTREAM, never sent to the public upstream', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t);
  await secureUpstream.close();
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 503, 'the gateway to see the secure member gone');
  for (const headers of [{ 'x-api-key': CLINIC_KEY }, { 'x-privacy': 'secure' }] as Record<string, string>[]) {
    const response = await predict(url, '/predict-public', headers);
    assert.equal(response.headers.get('x-privacy-route'), 'secure');
    assert.equal(response.headers.get('retry-after'), '1');
    await expectCodedError(response, 503, 'GW_NO_SECURE_UPSTREAM');
  }
  assert.equal(publicUpstream.received.length, 0);
});

test('a secure-only tenant on /predict-public gets 403 GW_SECURE_ONLY_TENANT when the policy says "reject"; neither upstream receives anything', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, { secureOnlyOnPublicRoute: 'reject' });
  for (const headers of [
    { 'x-api-key': CLINIC_KEY },
    { 'x-api-key': CLINIC_KEY, 'x-privacy': 'secure' },
    { 'x-api-key': CLINIC_KEY, 'x-privacy': 'public' },
  ] as Record<string, string>[]) {
    const response = await predict(url, '/predict-public', headers);
    assert.equal(response.headers.get('x-privacy-route'), 'secure');
    const body = await expectCodedError(response, 403, 'GW_SECURE_ONLY_TENANT');
    assert.match(body.message, /\/predict-secure/);
  }
  assert.equal(publicUpstream.received.length, 0);
  assert.equal(secureUpstream.received.length, 0);
  assert.equal(await policyDecisions(url, 'GW_SECURE_ONLY_TENANT'), 3);
  // The same tenant on its own route is served.
  await expectServedBy(await predict(url, '/predict-secure', { 'x-api-key': CLINIC_KEY }), secureUpstream, 'secure');
});

test('an unknown API key is 401 GW_UNKNOWN_API_KEY on either path, with or without requireApiKey', async (t) => {
  for (const requireApiKey of [false, true]) {
    const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, { requireApiKey });
    for (const path of ['/predict-public', '/predict-secure']) {
      await expectCodedError(await predict(url, path, { 'x-api-key': UNKNOWN_KEY }), 401, 'GW_UNKNOWN_API_KEY');
      // An empty key is presented, and belongs to nobody.
      await expectCodedError(await predict(url, path, { 'x-api-key': '' }), 401, 'GW_UNKNOWN_API_KEY');
    }
    assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
  }
});

test('a missing API key is 401 GW_API_KEY_REQUIRED when requireApiKey; a known key is served', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, { requireApiKey: true });
  for (const path of ['/predict-public', '/predict-secure']) {
    await expectCodedError(await predict(url, path), 401, 'GW_API_KEY_REQUIRED');
    // Authentication comes before anything else: a secure header does not get around it.
    await expectCodedError(await predict(url, path, { 'x-privacy': 'secure' }), 401, 'GW_API_KEY_REQUIRED');
  }
  assert.equal(publicUpstream.received.length + secureUpstream.received.length, 0);
  await expectServedBy(await predict(url, '/predict-public', { 'x-api-key': SHOP_KEY }), publicUpstream, 'public');
  await expectServedBy(await predict(url, '/predict-secure', { 'x-api-key': SHOP_KEY }), secureUpstream, 'secure');
});

test('a rate-limited tenant gets 429 GW_RATE_LIMITED with Retry-After on the request past its burst; other tenants are not affected', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t);
  await expectServedBy(await predict(url, '/predict-public', { 'x-api-key': METERED_KEY }), publicUpstream, 'public');
  await expectServedBy(await predict(url, '/predict-secure', { 'x-api-key': METERED_KEY }), secureUpstream, 'secure');
  for (const path of ['/predict-public', '/predict-secure']) {
    const refused = await predict(url, path, { 'x-api-key': METERED_KEY });
    // One token every 1000 s: the wait is whole seconds, close to 1000.
    const retryAfter = refused.headers.get('retry-after') ?? '';
    assert.match(retryAfter, /^\d+$/);
    assert.ok(Number(retryAfter) > 900 && Number(retryAfter) <= 1000, `Retry-After ${retryAfter}`);
    await expectCodedError(refused, 429, 'GW_RATE_LIMITED');
  }
  assert.equal(publicUpstream.received.length, 1);
  assert.equal(secureUpstream.received.length, 1);
  await expectServedBy(await predict(url, '/predict-public', { 'x-api-key': SHOP_KEY }), publicUpstream, 'public');
});

// --- the command refuses to start ---

interface Exited {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs `mpg gateway ...` to its exit; if it starts serving instead, the test's timeout ends it. */
async function runGateway(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<Exited> {
  const running = startMpg(t, ['gateway', '--port', '0', ...args], env);
  const code = await running.exited;
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}

function assertRefusedToStart(result: Exited, stderrPattern: RegExp): void {
  assert.equal(result.code, 2, `exit code; stderr: ${result.stderr}`);
  assert.match(result.stderr, /^mpg gateway: /);
  assert.match(result.stderr, stderrPattern);
  assert.doesNotMatch(result.stdout, /listening/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace on stderr');
}

async function policyFile(t: TestContext, text: string): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'mpg-policy-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'policy.json');
  await writeFile(path, text);
  return path;
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const UPSTREAM_FLAGS = ['--public-upstream', 'http://127.0.0.1:9'];
const CLI_TIMEOUT = { timeout: 20_000 };

for (const [what, document, jsonPath] of [
  [
    'a misspelt privacy value',
    { tenants: [{ name: 'clinic', privacy: 'secure-onyl', apiKeySha256: [sha256(CLINIC_KEY)] }] },
    'tenants[0].privacy',
  ],
  [
    'an unknown key',
    {
      tenants: [
        { name: 'shop', privacy: 'public-allowed', apiKeySha256: [sha256(SHOP_KEY)] },
        { name: 'clinic', 'privacy ': 'secure-only', apiKeySha256: [sha256(CLINIC_KEY)] },
      ],
    },
    'tenants[1].privacy ',
  ],
  [
    'a key hash that is not hex',
    { tenants: [{ name: 'clinic', privacy: 'secure-only', apiKeySha256: [CLINIC_KEY] }] },
    'tenants[0].apiKeySha256[0]',
  ],
  [
    'a burst below 1',
    {
      tenants: [
        {
          name: 'shop',
          privacy: 'public-allowed',
          apiKeySha256: [sha256(SHOP_KEY)],
          rateLimit: { requestsPerSecond: 1, burst: 0 },
        },
      ],
    },
    'tenants[0].rateLimit.burst',
  ],
  ['a bad secureOnlyOnPublicRoute', { secureOnlyOnPublicRoute: 'downgrade', tenants: [] }, 'secureOnlyOnPublicRoute'],
] as const) {
  test(`mpg gateway with a policy file holding ${what} exits 2 naming ${jsonPath}`, CLI_TIMEOUT, async (t) => {
    const path = await policyFile(t, JSON.stringify(document));
    const result = await runGateway(t, ['--policy', path, ...UPSTREAM_FLAGS]);
    assertRefusedToStart(result, new RegExp(`${escapeRegExp(path)}: ${escapeRegExp(jsonPath)} `));
  });
}

test('mpg gateway with a policy file that is not JSON exits 2', CLI_TIMEOUT, async (t) => {
  const path = await policyFile(t, '{"tenants": [');
  assertRefusedToStart(await runGateway(t, ['--policy', path, ...UPSTREAM_FLAGS]), /not valid JSON/);
});

test('mpg gateway with a policy file that does not exist exits 2', CLI_TIMEOUT, async (t) => {
  const path = join(tmpdir(), `mpg-no-such-policy-${process.pid}.json`);
  assertRefusedToStart(await runGateway(t, ['--policy', path, ...UPSTREAM_FLAGS]), /cannot read the policy file/);
});

test('mpg gateway reads the policy from MPG_POLICY too, and refuses a broken one', CLI_TIMEOUT, async (t) => {
  const path = await policyFile(t, JSON.stringify({ requireApiKey: 'yes', tenants: [] }));
  assertRefusedToStart(
    await runGateway(t, UPSTREAM_FLAGS, { MPG_POLICY: path }),
    /requireApiKey must be true or false/,
  );
});

test('mpg gateway with an unknown flag exits 2 naming it', CLI_TIMEOUT, async (t) => {
  assertRefusedToStart(
    await runGateway(t, ['--publc-upstream', 'http://127.0.0.1:9']),
    /unknown option --publc-upstream/,
  );
});

test('mpg gateway with the same URL as a public and a secure upstream exits 2', CLI_TIMEOUT, async (t) => {
  const url = 'http://127.0.0.1:9';
  assertRefusedToStart(
    await runGateway(t, ['--public-upstream', url, '--secure-upstream', url]),
    /both a --public-upstream and a --secure-upstream/,
  );
  // The same through the MPG_ twin of one of them.
  assertRefusedToStart(
    await runGateway(t, ['--public-upstream', url], { MPG_SECURE_UPSTREAM: url }),
    /both a --public-upstream and a --secure-upstream/,
  );
});

test('mpg gateway with no upstream at all exits 2', CLI_TIMEOUT, async (t) => {
  assertRefusedToStart(await runGateway(t, []), /at least one --public-upstream or --secure-upstream/);
});

test('mpg gateway with an upstream URL that has a path exits 2', CLI_TIMEOUT, async (t) => {
  assertRefusedToStart(await runGateway(t, ['--secure-upstream', 'http://127.0.0.1:9/predict']), /--secure-upstream/);
});

test(
  'mpg gateway --help lists --host, --port, --public-upstream, --secure-upstream and --policy with their MPG_ twins',
  CLI_TIMEOUT,
  async (t) => {
    const result = await runGateway(t, ['--help']);
    assert.equal(result.code, 0, result.stderr);
    for (const [flag, env] of [
      ['--host', 'MPG_HOST'],
      ['--port', 'MPG_PORT'],
      ['--public-upstream', 'MPG_PUBLIC_UPSTREAM'],
      ['--secure-upstream', 'MPG_SECURE_UPSTREAM'],
      ['--policy', 'MPG_POLICY'],
    ]) {
      // Each option is a flag line followed by its description, which names the twin.
      const entry = new RegExp(`^  ${flag} \\S+\\n.*\\benv: ${env}\\b`, 'm');
      assert.match(result.stdout, entry, `${flag} with ${env}`);
    }
    assert.match(result.stdout, /--public-upstream URL\n.*repeatable/);
    assert.match(result.stdout, /--secure-upstream URL\n.*repeatable/);
  },
);

// HTTP header names are case-insensitive (RFC 9110 section 5.1) and operators write them either way.
test('--privacy-header given in mixed case still routes a request that asks for secure to the secure upstream', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, {}, ['--privacy-header', 'X-Data-Class']);
  const response = await predict(url, '/predict-public', { 'X-Data-Class': 'secure' });
  assert.equal(publicUpstream.received.length, 0, 'a request that asked for secure was sent to the public upstream');
  await expectServedBy(response, secureUpstream, 'secure');
});

test('--api-key-header given in mixed case still identifies the tenant and is never forwarded', async (t) => {
  const { url, publicUpstream, secureUpstream } = await startPolicyGateway(t, {}, ['--api-key-header', 'X-Tenant-Key']);
  // A secure-only tenant: if its key were not seen, the request would go public, anonymously.
  const response = await predict(url, '/predict-public', { 'X-Tenant-Key': CLINIC_KEY });
  assert.equal(publicUpstream.received.length, 0, "a secure-only tenant's request was sent to the public upstream");
  await expectServedBy(response, secureUpstream, 'secure');
  assert.equal(secureUpstream.received[0]!.headers['x-tenant-key'], undefined, 'the API key was forwarded upstream');
});
