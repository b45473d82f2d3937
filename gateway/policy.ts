// The gateway's privacy policy: the most private signal wins, and nothing is ever downgraded.
//
// A policy file (given with --policy) is JSON:
//
//   {
//     "requireApiKey": false,                 // optional, default false
//     "secureOnlyOnPublicRoute": "upgrade",   // optional, "upgrade" (default) or "reject"
//     "tenants": [
//       { "name": "clinic-a",                 // unique, /^[a-z0-9][a-z0-9._-]{0,62}$/
//         "privacy": "secure-only",           // or "public-allowed"
//         "apiKeySha256": ["<64 lowercase hex>"],
//         "rateLimit": { "requestsPerSecond": 20, "burst": 40 },   // optional
//         "securePlaintext": "refuse" }       // optional: "refuse" its plaintext on the secure route
//     ]
//   }
//
// Keys are stored only as the SHA-256 of the key (`printf %s "$KEY" | sha256sum`), so the file
// holds no secret and may sit in a repository. Anything unexpected is an error rather than being
// ignored: an ignored typo such as "privacy " could turn a secure-only tenant into a public one.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { OptionError } from '../common/index.js';

export type PrivacyRoute = 'public' | 'secure';
export type TenantPrivacy = 'secure-only' | 'public-allowed';
export type SecureOnlyOnPublicRoute = 'upgrade' | 'reject';
export type PrivacyReason = 'path' | 'header' | 'tenant';

export interface TenantRateLimit {
  readonly requestsPerSecond: number;
  /** Requests a tenant may send at once after being idle; at least 1. */
  readonly burst: number;
}

export interface Tenant {
  readonly name: string;
  readonly privacy: TenantPrivacy;
  readonly apiKeySha256: readonly string[];
  readonly rateLimit?: TenantRateLimit;
  /** "refuse": this tenant's secure requests must be OHTTP-encrypted, whatever --secure-plaintext says. */
  readonly securePlaintext?: 'allow' | 'refuse';
}

export interface PrivacyPolicy {
  /** Where the policy came from, for logs and messages. */
  readonly source: string;
  readonly requireApiKey: boolean;
  readonly secureOnlyOnPublicRoute: SecureOnlyOnPublicRoute;
  readonly tenants: readonly Tenant[];
  readonly tenantsByKeySha256: ReadonlyMap<string, Tenant>;
}

/** A bad policy file is a configuration mistake, like a bad option: the gateway does not start. */
export class PolicyError extends OptionError {
  override name = 'PolicyError';
  /** The JSON path at fault, e.g. `tenants[1].privacy`; undefined for unreadable or unparsable files. */
  readonly jsonPath: string | undefined;

  constructor(message: string, jsonPath?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.jsonPath = jsonPath;
  }
}

/** Used when no --policy is given: anonymous traffic, routed by path and header alone. */
export const OPEN_POLICY: PrivacyPolicy = Object.freeze({
  source: '(no policy)',
  requireApiKey: false,
  secureOnlyOnPublicRoute: 'upgrade',
  tenants: Object.freeze([]),
  tenantsByKeySha256: new Map<string, Tenant>(),
});

const TENANT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// An empty key header is a misconfigured client; it must never authenticate as anyone.
const SHA256_OF_EMPTY = sha256Hex('');
const TOP_LEVEL_KEYS = ['requireApiKey', 'secureOnlyOnPublicRoute', 'tenants'];
const TENANT_KEYS = ['name', 'privacy', 'apiKeySha256', 'rateLimit', 'securePlaintext'];
const RATE_LIMIT_KEYS = ['requestsPerSecond', 'burst'];

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'an object';
  if (typeof value === 'number') return String(value);
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function childPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** Parses and checks a policy; every error names `source`, the JSON path and what is allowed. */
export function parsePolicy(text: string, source: string): PrivacyPolicy {
  const fail = (path: string, expected: string, value: unknown): never => {
    throw new PolicyError(`${source}: ${path} must be ${expected}, got ${describe(value)}`, path);
  };
  const checkObject = (value: unknown, path: string, allowed: readonly string[]): Record<string, unknown> => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      fail(path === '' ? 'the policy' : path, `an object with keys ${allowed.join(', ')}`, value);
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!allowed.includes(key)) {
        const at = childPath(path, key);
        throw new PolicyError(`${source}: ${at} is not a known key; allowed: ${allowed.join(', ')}`, at);
      }
    }
    return record;
  };
  const checkPositive = (value: unknown, path: string, min: number): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value <= 0) {
      fail(path, min > 0 ? `a finite number of at least ${min}` : 'a finite number above 0', value);
    }
    return value as number;
  };

  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new PolicyError(`${source}: not valid JSON: ${(error as Error).message}`, undefined, { cause: error });
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new PolicyError(
      `${source}: ${duplicate} appears twice; JSON would silently keep the last one, so remove one`,
      duplicate,
    );
  }

  const top = checkObject(json, '', TOP_LEVEL_KEYS);
  const requireApiKey = top.requireApiKey ?? false;
  if (typeof requireApiKey !== 'boolean') fail('requireApiKey', 'true or false', requireApiKey);
  const onPublic = top.secureOnlyOnPublicRoute ?? 'upgrade';
  if (onPublic !== 'upgrade' && onPublic !== 'reject')
    fail('secureOnlyOnPublicRoute', '"upgrade" or "reject"', onPublic);
  if (!Array.isArray(top.tenants)) fail('tenants', 'an array of tenants (it may be empty)', top.tenants);

  const tenants: Tenant[] = [];
  const tenantsByKeySha256 = new Map<string, Tenant>();
  const nameAt = new Map<string, string>();
  const hashAt = new Map<string, string>();
  for (const [index, raw] of (top.tenants as unknown[]).entries()) {
    const at = `tenants[${index}]`;
    const entry = checkObject(raw, at, TENANT_KEYS);
    const name = entry.name;
    if (typeof name !== 'string' || !TENANT_NAME.test(name)) {
      fail(`${at}.name`, '1 to 63 characters of a-z 0-9 . _ -, starting with a-z or 0-9', name);
    }
    const earlier = nameAt.get(name as string);
    if (earlier !== undefined) {
      throw new PolicyError(
        `${source}: ${at}.name ${describe(name)} is already used by ${earlier}; tenant names must be unique`,
        `${at}.name`,
      );
    }
    nameAt.set(name as string, at);
    const privacy = entry.privacy;
    if (privacy !== 'secure-only' && privacy !== 'public-allowed')
      fail(`${at}.privacy`, '"secure-only" or "public-allowed"', privacy);
    // A tenant without keys could never be recognised, so its privacy setting would never apply.
    if (!Array.isArray(entry.apiKeySha256) || entry.apiKeySha256.length === 0) {
      fail(`${at}.apiKeySha256`, 'a non-empty array of SHA-256 hex digests of API keys', entry.apiKeySha256);
    }
    const hashes = entry.apiKeySha256 as unknown[];
    for (const [keyIndex, hash] of hashes.entries()) {
      const hashPath = `${at}.apiKeySha256[${keyIndex}]`;
      if (typeof hash !== 'string' || !SHA256_HEX.test(hash))
        fail(hashPath, '64 lowercase hex digits (the SHA-256 of the key)', hash);
      if (hash === SHA256_OF_EMPTY) {
        throw new PolicyError(
          `${source}: ${hashPath} is the SHA-256 of the empty string; list only hashes of non-empty keys`,
          hashPath,
        );
      }
      const owner = hashAt.get(hash as string);
      if (owner !== undefined) {
        throw new PolicyError(
          `${source}: ${hashPath} is already listed at ${owner}; each key belongs to exactly one tenant`,
          hashPath,
        );
      }
      hashAt.set(hash as string, hashPath);
    }
    let rateLimit: TenantRateLimit | undefined;
    if (entry.rateLimit !== undefined) {
      const limit = checkObject(entry.rateLimit, `${at}.rateLimit`, RATE_LIMIT_KEYS);
      rateLimit = Object.freeze({
        requestsPerSecond: checkPositive(limit.requestsPerSecond, `${at}.rateLimit.requestsPerSecond`, 0),
        // A bucket that holds less than one token would refuse every request.
        burst: checkPositive(limit.burst, `${at}.rateLimit.burst`, 1),
      });
    }
    const securePlaintext = entry.securePlaintext;
    if (securePlaintext !== undefined && securePlaintext !== 'allow' && securePlaintext !== 'refuse')
      fail(`${at}.securePlaintext`, '"allow" or "refuse"', securePlaintext);
    const tenant: Tenant = Object.freeze({
      name: name as string,
      privacy: privacy as TenantPrivacy,
      apiKeySha256: Object.freeze([...(hashes as string[])]),
      ...(rateLimit ? { rateLimit } : {}),
      ...(securePlaintext ? { securePlaintext: securePlaintext as 'allow' | 'refuse' } : {}),
    });
    tenants.push(tenant);
    for (const hash of tenant.apiKeySha256) tenantsByKeySha256.set(hash, tenant);
  }
  if (requireApiKey && tenants.length === 0) {
    throw new PolicyError(
      `${source}: requireApiKey is true but tenants is empty, so every request would be refused; add a tenant`,
      'tenants',
    );
  }
  return Object.freeze({
    source,
    requireApiKey: requireApiKey as boolean,
    secureOnlyOnPublicRoute: onPublic as SecureOnlyOnPublicRoute,
    tenants: Object.freeze(tenants),
    tenantsByKeySha256,
  });
}

// JSON.parse keeps the last of two equal keys, so `"privacy": "secure-only", "privacy":
// "public-allowed"` would quietly downgrade a tenant. Called on text JSON.parse has accepted.
function findDuplicateKey(text: string): string | undefined {
  interface Frame {
    keys: Set<string> | undefined;
    path: string;
    key: string;
    index: number;
    expectKey: boolean;
  }
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    const top = stack.at(-1);
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return childPath(top.path, key);
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = end;
    } else if (char === '{' || char === '[') {
      const path = top === undefined ? '' : top.keys ? childPath(top.path, top.key) : `${top.path}[${top.index}]`;
      stack.push({ keys: char === '{' ? new Set() : undefined, path, key: '', index: 0, expectKey: true });
    } else if (char === '}' || char === ']') {
      stack.pop();
    } else if (char === ',' && top) {
      if (top.keys) top.expectKey = true;
      else top.index++;
    }
  }
  return undefined;
}

export async function loadPolicyFile(path: string): Promise<PrivacyPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PolicyError(`${path}: cannot read the policy file: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  return parsePolicy(text, path);
}

export interface RequestSignals {
  /** The route the client chose by path: /predict-public or /predict-secure. */
  pathRoute: PrivacyRoute;
  /** The privacy header's raw value; undefined when absent. */
  privacyHeader: string | undefined;
  /** The API key as sent; undefined when absent. An empty string counts as presented. */
  apiKey: string | undefined;
}

export type RejectCode =
  'GW_API_KEY_REQUIRED' | 'GW_UNKNOWN_API_KEY' | 'GW_SECURE_ONLY_TENANT' | 'GW_INVALID_PRIVACY_HEADER';

export type Classification =
  | { kind: 'route'; route: PrivacyRoute; tenant?: string; upgraded: boolean; reasons: readonly PrivacyReason[] }
  // The code only: its HTTP status is the error table's (errors.ts), never the policy's.
  | { kind: 'reject'; code: RejectCode; message: string; tenant?: string };

/**
 * Decides where a request goes. Secure when any signal says so: the path, the header, or a
 * secure-only tenant; no signal can lower another. Authentication is checked before the header so
 * that an unauthenticated caller learns nothing but that it must authenticate.
 */
export function classifyRequest(policy: PrivacyPolicy, signals: RequestSignals): Classification {
  let tenant: Tenant | undefined;
  if (signals.apiKey === undefined) {
    if (policy.requireApiKey) {
      return {
        kind: 'reject',
        code: 'GW_API_KEY_REQUIRED',
        message: 'This gateway requires an API key; send the key issued to your tenant',
      };
    }
  } else {
    // Hashing first means the map lookup compares digests, not the secret, so its timing
    // reveals nothing useful about valid keys.
    tenant = policy.tenantsByKeySha256.get(sha256Hex(signals.apiKey));
    // A key that matches no tenant is refused even when keys are optional: it is a client's
    // mistake (a stale or mistyped key), and serving it anonymously could route a secure-only
    // tenant's data over the public path.
    if (tenant === undefined) {
      const hint = policy.requireApiKey ? 'check the key' : 'check the key, or send none for anonymous traffic';
      return { kind: 'reject', code: 'GW_UNKNOWN_API_KEY', message: `The API key matches no tenant; ${hint}` };
    }
  }

  const header = signals.privacyHeader?.trim().toLowerCase();
  if (header !== undefined && header !== 'secure' && header !== 'public') {
    return {
      kind: 'reject',
      code: 'GW_INVALID_PRIVACY_HEADER',
      message: `The privacy header must be "secure" or "public", got ${describe(signals.privacyHeader)}`,
      ...(tenant ? { tenant: tenant.name } : {}),
    };
  }

  const secureOnly = tenant?.privacy === 'secure-only';
  if (secureOnly && signals.pathRoute === 'public' && policy.secureOnlyOnPublicRoute === 'reject') {
    return {
      kind: 'reject',
      code: 'GW_SECURE_ONLY_TENANT',
      message: `Tenant "${tenant!.name}" may only use the secure route; send the request to /predict-secure`,
      tenant: tenant!.name,
    };
  }

  const reasons: PrivacyReason[] = [];
  if (signals.pathRoute === 'secure') reasons.push('path');
  if (header === 'secure') reasons.push('header');
  if (secureOnly) reasons.push('tenant');
  const route: PrivacyRoute = reasons.length > 0 ? 'secure' : 'public';
  return {
    kind: 'route',
    route,
    ...(tenant ? { tenant: tenant.name } : {}),
    upgraded: route === 'secure' && signals.pathRoute === 'public',
    reasons,
  };
}
