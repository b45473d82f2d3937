// Downloads a pretrained model without ever leaving a partial or unverified file where the model
// server would load it: the bytes stream into a temporary file beside the destination while they
// are hashed, and only a complete, checksum-verified, fsynced file is renamed over the destination
// (a rename within one directory is atomic, so readers see the old file or the new one).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { dirname, resolve } from 'node:path';
import type { Dispatcher, request as undiciRequest } from 'undici';

export const DEFAULT_FETCH_TIMEOUT_MS = 30_000; // 30 s without a byte from the server
export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Node.js network errors that mean "too slow" rather than "broken".
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

export type ModelFetchReason =
  'http-status' | 'checksum' | 'interrupted' | 'timeout' | 'exists' | 'bad-argument' | 'io';

export class ModelFetchError extends Error {
  override name = 'ModelFetchError';
  readonly reason: ModelFetchReason;

  constructor(reason: ModelFetchReason, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.reason = reason;
  }
}

export interface FetchModelOptions {
  url: string;
  /** Expected SHA-256 of the file, 64 hex characters in either case. */
  sha256: string;
  out: string;
  /** Give up when the server sends nothing for this long (not a limit on the whole download). */
  timeoutMs?: number;
  /** Download and replace even when the destination exists. */
  force?: boolean;
  /** Called after each chunk is written; throttle it when printing. */
  onProgress?: (received: number, total: number | undefined) => void;
  signal?: AbortSignal;
}

export interface FetchModelResult {
  /** Absolute path of the saved file. */
  path: string;
  bytes: number;
  sha256: string;
  /** True when the destination already had the expected checksum and nothing was downloaded. */
  alreadyPresent: boolean;
}

export async function fetchModel(options: FetchModelOptions): Promise<FetchModelResult> {
  const url = parseUrl(options.url);
  const expected = parseSha256(options.sha256);
  const timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new ModelFetchError('bad-argument', `timeoutMs must be a positive integer (ms), got ${timeoutMs}`);
  }
  if (typeof options.out !== 'string' || options.out === '') {
    throw new ModelFetchError('bad-argument', 'out must be the path of the file to write');
  }
  const out = resolve(options.out);
  if (options.signal?.aborted) throw new ModelFetchError('interrupted', 'download cancelled before it started');

  const present = await existingFile(out, options.force === true);
  if (present) {
    if (present.sha256 === expected) return { path: out, bytes: present.bytes, sha256: expected, alreadyPresent: true };
    throw new ModelFetchError(
      'exists',
      `${out} already exists with sha256 ${present.sha256}, not ${expected}; use --force to replace it, or choose another --out`,
    );
  }

  await io(`cannot create the directory ${dirname(out)}`, () => mkdir(dirname(out), { recursive: true }));
  const temporary = `${out}.partial-${randomBytes(6).toString('hex')}`;
  // One connection pool per download, destroyed at the end, so no socket outlives the call.
  // Imported here, not at the top: every `mpg` command loads this module, few of them download.
  const { Agent, request } = await import('undici');
  const agent = new Agent({ headersTimeout: 0, bodyTimeout: 0 });
  const idle = new IdleTimeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([idle.signal, options.signal]) : idle.signal;
  const progress = { url, received: 0 };
  try {
    idle.arm();
    const response = await openResponse(request, url, agent, signal, idle, progress);
    const total = contentLength(response.headers['content-length']);
    const file = await io(`cannot create ${temporary}`, () => open(temporary, 'wx', 0o644));
    let actual: string;
    try {
      const hash = createHash('sha256');
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        await io(`cannot write ${temporary}`, () => writeAll(file, chunk));
        progress.received += chunk.length;
        options.onProgress?.(progress.received, total);
        idle.arm();
      }
      idle.clear();
      if (total !== undefined && progress.received !== total) {
        throw new ModelFetchError(
          'interrupted',
          `download of ${describe(progress.url)} ended after ${progress.received} of ${total} bytes (the connection closed early); nothing was saved, run the command again`,
        );
      }
      actual = hash.digest('hex');
      if (actual !== expected) {
        throw new ModelFetchError(
          'checksum',
          `checksum mismatch: expected ${expected}, got ${actual}; the file was not saved. Check --sha256 against the publisher's checksum and that --url names the right file`,
        );
      }
      await io(`cannot flush ${temporary} to disk`, () => file.sync());
    } finally {
      await file.close().catch(() => undefined);
    }
    await io(`cannot move ${temporary} to ${out}`, () => rename(temporary, out));
    await syncDirectory(dirname(out));
    return { path: out, bytes: progress.received, sha256: actual, alreadyPresent: false };
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw classify(error, { idle, timeoutMs, userSignal: options.signal, ...progress });
  } finally {
    idle.clear();
    await agent.destroy().catch(() => undefined);
  }
}

/** Aborts its signal when nothing has happened for `ms`; each `arm()` restarts the wait. */
class IdleTimeout {
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly ms: number) {}

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get fired(): boolean {
    return this.#controller.signal.aborted;
  }

  arm(): void {
    this.clear();
    this.#timer = setTimeout(() => this.#controller.abort(), this.ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

async function openResponse(
  request: typeof undiciRequest,
  start: URL,
  agent: Dispatcher,
  signal: AbortSignal,
  idle: IdleTimeout,
  progress: { url: URL },
): Promise<Dispatcher.ResponseData> {
  for (let redirects = 0; ; redirects++) {
    const response = await request(progress.url, {
      method: 'GET',
      dispatcher: agent,
      signal,
      // The checksum is of the file itself, so no transfer encoding may change the bytes.
      headers: { 'accept-encoding': 'identity', 'user-agent': 'mixed-privacy-gateway (mpg model fetch)' },
    });
    const status = response.statusCode;
    if (status >= 200 && status < 300) return response;
    await response.body.dump().catch(() => undefined);
    if (!REDIRECT_STATUSES.has(status)) {
      throw new ModelFetchError(
        'http-status',
        `${describe(progress.url)} answered ${httpStatus(status)}; nothing was saved. Check the URL (and that the file is publicly downloadable)`,
      );
    }
    if (redirects === MAX_REDIRECTS) {
      throw new ModelFetchError(
        'http-status',
        `${describe(start)} redirected more than ${MAX_REDIRECTS} times; check the URL`,
      );
    }
    progress.url = redirectTarget(progress.url, status, response.headers.location);
    idle.arm();
  }
}

function redirectTarget(from: URL, status: number, location: string | string[] | undefined): URL {
  const value = Array.isArray(location) ? location[0] : location;
  let target: URL | undefined;
  try {
    target = value === undefined ? undefined : new URL(value, from);
  } catch {
    target = undefined;
  }
  if (target === undefined || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
    throw new ModelFetchError(
      'http-status',
      `${describe(from)} answered ${httpStatus(status)} without a usable http(s) Location; check the URL`,
    );
  }
  return target;
}

function classify(
  error: unknown,
  context: { idle: IdleTimeout; timeoutMs: number; userSignal: AbortSignal | undefined; url: URL; received: number },
): ModelFetchError {
  if (error instanceof ModelFetchError) return error;
  const where = describe(context.url);
  const after = context.received > 0 ? ` after ${context.received} bytes` : '';
  if (context.idle.fired || TIMEOUT_CODES.has(errorCode(error))) {
    return new ModelFetchError(
      'timeout',
      `${where} sent nothing for ${context.timeoutMs} ms${after}; nothing was saved. Run the command again, or raise --timeout-ms for a slow server`,
      { cause: error },
    );
  }
  if (context.userSignal?.aborted) {
    return new ModelFetchError('interrupted', 'download cancelled; nothing was saved', { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new ModelFetchError(
    'interrupted',
    `download of ${where} failed${after}: ${detail}; nothing was saved, check the URL and the network and run the command again`,
    { cause: error },
  );
}

/** The existing destination's checksum, or undefined when there is none or it will be replaced. */
async function existingFile(path: string, force: boolean): Promise<{ sha256: string; bytes: number } | undefined> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw new ModelFetchError('io', `cannot read ${path}: ${String(error)}`, { cause: error });
  }
  if (isDirectory) {
    throw new ModelFetchError('bad-argument', `${path} is a directory; give the path of the model file to write`);
  }
  return force ? undefined : io(`cannot read ${path}`, () => sha256OfFile(path));
}

async function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function writeAll(file: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length;) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

// Makes the rename itself durable; not every platform can open a directory (Windows cannot), and
// the file's own bytes are already synced, so failing here loses nothing but crash ordering.
async function syncDirectory(path: string): Promise<void> {
  try {
    const directory = await open(path, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } catch {
    // see above
  }
}

async function io<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ModelFetchError('io', `${what}: ${detail}; nothing was saved`, { cause: error });
  }
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw new ModelFetchError('bad-argument', `"${raw}" is not a URL; give an http:// or https:// address`, {
      cause: error,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ModelFetchError('bad-argument', `only http: and https: URLs can be fetched, got ${url.protocol}`);
  }
  return url;
}

function parseSha256(raw: string): string {
  if (typeof raw !== 'string' || !/^[0-9a-f]{64}$/i.test(raw)) {
    throw new ModelFetchError(
      'bad-argument',
      `sha256 must be 64 hexadecimal characters (the SHA-256 the model's publisher lists), got "${String(raw)}"`,
    );
  }
  return raw.toLowerCase();
}

function contentLength(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  const length = Number(value);
  return Number.isSafeInteger(length) ? length : undefined;
}

// Signed download links carry credentials in the query and user info; messages never show them.
function describe(url: URL): string {
  return `${url.origin}${url.pathname}${url.search === '' ? '' : '?…'}`;
}

function httpStatus(status: number): string {
  const phrase = STATUS_CODES[status];
  return phrase === undefined ? `HTTP ${status}` : `HTTP ${status} ${phrase}`;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}
