import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Classification, PrivacyRoute, RequestSignals, SecureOnlyOnPublicRoute } from '../../gateway/policy.js';
import { OPEN_POLICY, PolicyError, classifyRequest, loadPolicyFile, parsePolicy } from '../../gateway/policy.js';
import { gatewayErrors } from '../../gateway/errors.js';

/** The HTTP status a refusal is answered with: the error table's, by the refusal's code. */
const statusOf = (result: Classification) =>
  result.kind === 'reject' ? gatewayErrors.table[result.code].statusCode : undefined;

const sha256 = (key: string): string => createHash('sha256').update(key).digest('hex');
const CLINIC_KEY = 'clinic-secret-key';
const SHOP_KEY = 'shop-secret-key';

function policyText(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    tenants: [
      { name: 'clinic-a', privacy: 'secure-only', apiKeySha256: [sha256(CLINIC_KEY)] },
      {
        name: 'shop',
        privacy: 'public-allowed',
        apiKeySha256: [sha256(SHOP_KEY)],
        rateLimit: { requestsPerSecond: 20, burst: 40 },
      },
    ],
    ...overrides,
  });
}

function policy(requireApiKey = false, secureOnlyOnPublicRoute: SecureOnlyOnPublicRoute = 'upgrade') {
  return parsePolicy(policyText({ requireApiKey, secureOnlyOnPublicRoute }), 'policy.json');
}

function classify(signals: Partial<RequestSignals>, p = policy()): Classification {
  return classifyRequest(p, { pathRoute: 'public', privacyHeader: undefined, apiKey: undefined, ...signals });
}

// --- routing rules ---

test('no signal says secure: the public path stays public', () => {
  assert.deepEqual(classify({}), { kind: 'route', route: 'public', upgraded: false, reasons: [] });
  assert.deepEqual(classify({ apiKey: SHOP_KEY, privacyHeader: 'public' }), {
    kind: 'route',
    route: 'public',
    tenant: 'shop',
    upgraded: false,
    reasons: [],
  });
});

test('path secure stays secure whatever the header and tenant say', () => {
  const result = classify({ pathRoute: 'secure', privacyHeader: 'public', apiKey: SHOP_KEY });
  assert.deepEqual(result, { kind: 'route', route: 'secure', tenant: 'shop', upgraded: false, reasons: ['path'] });
  assert.deepEqual(classify({ pathRoute: 'secure' }), {
    kind: 'route',
    route: 'secure',
    upgraded: false,
    reasons: ['path'],
  });
});

test('header "secure" on the public path upgrades to secure, case-insensitive and trimmed', () => {
  for (const header of ['secure', 'SECURE', ' Secure ']) {
    assert.deepEqual(classify({ privacyHeader: header }), {
      kind: 'route',
      route: 'secure',
      upgraded: true,
      reasons: ['header'],
    });
  }
});

test('header "public" never lowers a secure path or a secure-only tenant', () => {
  const onSecurePath = classify({ pathRoute: 'secure', privacyHeader: 'PUBLIC' });
  assert.equal(onSecurePath.kind === 'route' && onSecurePath.route, 'secure');
  const tenant = classify({ privacyHeader: 'public', apiKey: CLINIC_KEY });
  assert.deepEqual(tenant, { kind: 'route', route: 'secure', tenant: 'clinic-a', upgraded: true, reasons: ['tenant'] });
});

test('a secure-only tenant on the public path is upgraded when the policy says "upgrade"', () => {
  assert.deepEqual(classify({ apiKey: CLINIC_KEY }), {
    kind: 'route',
    route: 'secure',
    tenant: 'clinic-a',
    upgraded: true,
    reasons: ['tenant'],
  });
});

test('a secure-only tenant on the public path gets 403 GW_SECURE_ONLY_TENANT when the policy says "reject"', () => {
  const result = classify({ apiKey: CLINIC_KEY }, policy(false, 'reject'));
  assert.equal(result.kind, 'reject');
  assert.equal(statusOf(result), 403);
  assert.equal(result.kind === 'reject' && result.code, 'GW_SECURE_ONLY_TENANT');
  assert.equal(result.tenant, 'clinic-a');
  assert.match(result.kind === 'reject' ? result.message : '', /clinic-a.*\/predict-secure/);
  // On the secure path the same tenant is simply served.
  const secure = classify({ pathRoute: 'secure', apiKey: CLINIC_KEY }, policy(false, 'reject'));
  assert.deepEqual(secure, {
    kind: 'route',
    route: 'secure',
    tenant: 'clinic-a',
    upgraded: false,
    reasons: ['path', 'tenant'],
  });
});

test('every secure signal is listed in reasons', () => {
  const result = classify({ pathRoute: 'secure', privacyHeader: 'secure', apiKey: CLINIC_KEY });
  assert.deepEqual(result.kind === 'route' && result.reasons, ['path', 'header', 'tenant']);
});

test('missing key with requireApiKey: 401 GW_API_KEY_REQUIRED', () => {
  const result = classify({ pathRoute: 'secure' }, policy(true));
  assert.deepEqual(result.kind === 'reject' && [statusOf(result), result.code], [401, 'GW_API_KEY_REQUIRED']);
});

test('unknown key: 401 GW_UNKNOWN_API_KEY whether keys are required or not', () => {
  for (const required of [true, false]) {
    const result = classify({ apiKey: 'not-a-key' }, policy(required));
    assert.deepEqual(
      result.kind === 'reject' && [statusOf(result), result.code],
      [401, 'GW_UNKNOWN_API_KEY'],
      `requireApiKey ${required}`,
    );
  }
});

test('an empty key counts as presented and unknown, never as anonymous', () => {
  const result = classify({ apiKey: '' });
  assert.deepEqual(result.kind === 'reject' && result.code, 'GW_UNKNOWN_API_KEY');
});

test('an unrecognised privacy header value is 400 GW_INVALID_PRIVACY_HEADER, not ignored', () => {
  for (const header of ['private', '', 'secure, public', 'securely']) {
    const result = classify({ pathRoute: 'secure', privacyHeader: header });
    assert.deepEqual(
      result.kind === 'reject' && [statusOf(result), result.code],
      [400, 'GW_INVALID_PRIVACY_HEADER'],
      JSON.stringify(header),
    );
  }
  const named = classify({ privacyHeader: 'private', apiKey: SHOP_KEY });
  assert.match(named.kind === 'reject' ? named.message : '', /"secure" or "public", got "private"/);
  assert.equal(named.tenant, 'shop');
});

test('authentication is checked before the privacy header', () => {
  const result = classify({ privacyHeader: 'bogus' }, policy(true));
  assert.equal(result.kind === 'reject' && result.code, 'GW_API_KEY_REQUIRED');
});

test('OPEN_POLICY: anonymous traffic routed by path and header, keys refused as unknown', () => {
  assert.equal(OPEN_POLICY.requireApiKey, false);
  assert.equal(OPEN_POLICY.secureOnlyOnPublicRoute, 'upgrade');
  assert.equal(OPEN_POLICY.tenants.length, 0);
  assert.ok(Object.isFrozen(OPEN_POLICY));
  assert.deepEqual(classify({}, OPEN_POLICY), { kind: 'route', route: 'public', upgraded: false, reasons: [] });
  assert.equal(classify({ apiKey: CLINIC_KEY }, OPEN_POLICY).kind, 'reject');
});

test('property: the result is never public when any signal says secure', () => {
  const headers = [undefined, 'public', 'secure', 'SECURE', ' Secure '];
  const tenants = [undefined, SHOP_KEY, CLINIC_KEY];
  let cases = 0;
  for (const requireApiKey of [false, true]) {
    for (const onPublic of ['upgrade', 'reject'] as const) {
      const p = policy(requireApiKey, onPublic);
      for (const pathRoute of ['public', 'secure'] as PrivacyRoute[]) {
        for (const privacyHeader of headers) {
          for (const apiKey of tenants) {
            cases++;
            const label = JSON.stringify({ requireApiKey, onPublic, pathRoute, privacyHeader, apiKey });
            const result = classifyRequest(p, { pathRoute, privacyHeader, apiKey });
            const anySecure =
              pathRoute === 'secure' || privacyHeader?.trim().toLowerCase() === 'secure' || apiKey === CLINIC_KEY;
            if (requireApiKey && apiKey === undefined) {
              assert.equal(result.kind === 'reject' && result.code, 'GW_API_KEY_REQUIRED', label);
              continue;
            }
            if (result.kind === 'reject') {
              assert.ok(
                onPublic === 'reject' && apiKey === CLINIC_KEY && pathRoute === 'public',
                `unexpected reject ${label}`,
              );
              assert.equal(result.code, 'GW_SECURE_ONLY_TENANT', label);
              continue;
            }
            assert.equal(result.route, anySecure ? 'secure' : 'public', label);
            assert.equal(result.upgraded, result.route === 'secure' && pathRoute === 'public', label);
            assert.equal(result.reasons.length > 0, anySecure, label);
          }
        }
      }
    }
  }
  assert.equal(cases, 2 * 2 * 2 * 5 * 3);
});

// --- the policy file ---

test('a valid file parses into a frozen policy with defaults and a key-hash lookup', () => {
  const parsed = parsePolicy(policyText(), 'policy.json');
  assert.equal(parsed.requireApiKey, false);
  assert.equal(parsed.secureOnlyOnPublicRoute, 'upgrade');
  assert.equal(parsed.source, 'policy.json');
  assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed.tenants) && Object.isFrozen(parsed.tenants[0]));
  assert.equal(parsed.tenantsByKeySha256.get(sha256(CLINIC_KEY))?.name, 'clinic-a');
  assert.deepEqual(parsed.tenantsByKeySha256.get(sha256(SHOP_KEY))?.rateLimit, { requestsPerSecond: 20, burst: 40 });
  assert.equal(parsed.tenants[0]?.rateLimit, undefined);
  assert.equal(parsePolicy('{"tenants": []}', 'empty.json').tenants.length, 0);
});

function assertPolicyError(text: string, path: string | undefined, message: RegExp): void {
  assert.throws(
    () => parsePolicy(text, 'policy.json'),
    (error: unknown) => {
      assert.ok(error instanceof PolicyError, String(error));
      assert.equal(error.jsonPath, path);
      assert.match(error.message, /^policy\.json: /);
      assert.match(error.message, message);
      return true;
    },
  );
}

const tenant = (overrides: Record<string, unknown>) => ({
  name: 'clinic-a',
  privacy: 'secure-only',
  apiKeySha256: [sha256(CLINIC_KEY)],
  ...overrides,
});
const withTenants = (...tenants: unknown[]): string => JSON.stringify({ tenants });

test('policy file: invalid JSON names the parse error', () => {
  assertPolicyError('{"tenants": [', undefined, /not valid JSON: .+/);
  assertPolicyError('', undefined, /not valid JSON/);
});

test('policy file: the top level must be an object', () => {
  assertPolicyError(
    '[]',
    'the policy',
    /the policy must be an object with keys requireApiKey, secureOnlyOnPublicRoute, tenants, got an array/,
  );
});

test('policy file: an unknown top-level key is an error', () => {
  assertPolicyError(
    policyText({ requireApiKeys: true }),
    'requireApiKeys',
    /requireApiKeys is not a known key; allowed: requireApiKey, secureOnlyOnPublicRoute, tenants/,
  );
});

test('policy file: an unknown tenant key is an error', () => {
  assertPolicyError(
    withTenants(tenant({}), { ...tenant({ name: 'b', apiKeySha256: [sha256('b')] }), apiKey: 'x' }),
    'tenants[1].apiKey',
    /tenants\[1\]\.apiKey is not a known key; allowed: name, privacy, apiKeySha256, rateLimit/,
  );
});

test('policy file: top-level values are checked', () => {
  assertPolicyError(
    policyText({ requireApiKey: 'yes' }),
    'requireApiKey',
    /requireApiKey must be true or false, got "yes"/,
  );
  assertPolicyError(
    policyText({ secureOnlyOnPublicRoute: 'drop' }),
    'secureOnlyOnPublicRoute',
    /must be "upgrade" or "reject", got "drop"/,
  );
  assertPolicyError('{}', 'tenants', /tenants must be an array of tenants \(it may be empty\), got nothing/);
  assertPolicyError('{"requireApiKey": true, "tenants": []}', 'tenants', /requireApiKey is true but tenants is empty/);
});

test('policy file: a bad privacy value names the tenant and the allowed values', () => {
  assertPolicyError(
    withTenants(tenant({}), tenant({ name: 'b', privacy: 'private', apiKeySha256: [sha256('b')] })),
    'tenants[1].privacy',
    /tenants\[1\]\.privacy must be "secure-only" or "public-allowed", got "private"/,
  );
});

test('policy file: bad tenant names', () => {
  for (const name of ['Clinic', '-a', '', 'a'.repeat(64), 7]) {
    assertPolicyError(
      withTenants(tenant({ name })),
      'tenants[0].name',
      /tenants\[0\]\.name must be 1 to 63 characters of a-z 0-9/,
    );
  }
});

test('policy file: duplicate tenant name', () => {
  assertPolicyError(
    withTenants(tenant({}), tenant({ apiKeySha256: [sha256('other')] })),
    'tenants[1].name',
    /tenants\[1\]\.name "clinic-a" is already used by tenants\[0\]/,
  );
});

test('policy file: duplicate key hash across tenants', () => {
  assertPolicyError(
    withTenants(tenant({}), tenant({ name: 'b' })),
    'tenants[1].apiKeySha256[0]',
    /tenants\[1\]\.apiKeySha256\[0\] is already listed at tenants\[0\]\.apiKeySha256\[0\]; each key belongs to exactly one tenant/,
  );
});

test('policy file: key hash must be 64 lowercase hex of a non-empty key', () => {
  const upper = sha256(CLINIC_KEY).toUpperCase();
  for (const bad of [upper, 'abc', sha256(CLINIC_KEY) + '0', 42]) {
    assertPolicyError(
      withTenants(tenant({ apiKeySha256: [sha256('x'), bad] })),
      'tenants[0].apiKeySha256[1]',
      /tenants\[0\]\.apiKeySha256\[1\] must be 64 lowercase hex digits/,
    );
  }
  assertPolicyError(
    withTenants(tenant({ apiKeySha256: [sha256('')] })),
    'tenants[0].apiKeySha256[0]',
    /SHA-256 of the empty string/,
  );
  assertPolicyError(withTenants(tenant({ apiKeySha256: [] })), 'tenants[0].apiKeySha256', /must be a non-empty array/);
});

test('policy file: bad rateLimit numbers', () => {
  const cases: [unknown, string, RegExp][] = [
    [
      { requestsPerSecond: 0, burst: 5 },
      'tenants[0].rateLimit.requestsPerSecond',
      /requestsPerSecond must be a finite number above 0, got 0/,
    ],
    [{ requestsPerSecond: -1, burst: 5 }, 'tenants[0].rateLimit.requestsPerSecond', /got -1/],
    [{ requestsPerSecond: '20', burst: 5 }, 'tenants[0].rateLimit.requestsPerSecond', /got "20"/],
    [
      { requestsPerSecond: 5, burst: 0.5 },
      'tenants[0].rateLimit.burst',
      /burst must be a finite number of at least 1, got 0.5/,
    ],
    [{ requestsPerSecond: 5 }, 'tenants[0].rateLimit.burst', /got nothing/],
    [
      { requestsPerSecond: 5, burst: 5, window: 1 },
      'tenants[0].rateLimit.window',
      /not a known key; allowed: requestsPerSecond, burst/,
    ],
    [[5, 5], 'tenants[0].rateLimit', /must be an object/],
  ];
  for (const [rateLimit, path, message] of cases) assertPolicyError(withTenants(tenant({ rateLimit })), path, message);
  // JSON has no Infinity, but 1e999 parses to it.
  const text = withTenants(tenant({ rateLimit: { requestsPerSecond: 1, burst: 2 } })).replace(
    '"burst":2',
    '"burst":1e999',
  );
  assertPolicyError(text, 'tenants[0].rateLimit.burst', /got Infinity/);
});

test('policy file: a key repeated in one object is an error, since JSON would keep only the last', () => {
  const text = `{"tenants": [{"name": "clinic-a", "privacy": "secure-only", "apiKeySha256": ["${sha256(CLINIC_KEY)}"], "privacy": "public-allowed"}]}`;
  assertPolicyError(text, 'tenants[0].privacy', /tenants\[0\]\.privacy appears twice/);
  assertPolicyError('{"requireApiKey": true, "requireApiKey": false, "tenants": []}', 'requireApiKey', /appears twice/);
  // Equal keys in different objects are fine, and a key-like text inside a string is no key.
  const fine = withTenants(tenant({}), tenant({ name: 'b', apiKeySha256: [sha256('b')] }));
  assert.equal(parsePolicy(fine, 'policy.json').tenants.length, 2);
  assertPolicyError(withTenants(tenant({ name: '\\", "privacy": "x' })), 'tenants[0].name', /name must be 1 to 63/);
});

test('loadPolicyFile reads a file and names it in errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-policy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const good = join(dir, 'policy.json');
  await writeFile(good, '\uFEFF' + policyText({ requireApiKey: true }));
  const loaded = await loadPolicyFile(good);
  assert.equal(loaded.requireApiKey, true);
  assert.equal(loaded.source, good);
  const bad = join(dir, 'bad.json');
  await writeFile(bad, policyText({ secureOnlyOnPublicRoute: 'nope' }));
  await assert.rejects(
    loadPolicyFile(bad),
    (error: unknown) => error instanceof PolicyError && error.message.startsWith(`${bad}: secureOnlyOnPublicRoute`),
  );
  await assert.rejects(
    loadPolicyFile(join(dir, 'missing.json')),
    (error: unknown) =>
      error instanceof PolicyError && /missing\.json: cannot read the policy file: .*ENOENT/.test(error.message),
  );
});
