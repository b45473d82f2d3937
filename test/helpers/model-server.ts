// Starts a real model server on port 0 (or a Unix socket) with the generated ResNet18.
import type { TestContext } from 'node:test';
import { DEFAULT_MODEL_PATH, ensureModel } from '../../model/index.js';
import type { ModelServer, ModelServerConfig } from '../../model-server/index.js';
import { loadModelServer, parseModelServerConfig } from '../../model-server/index.js';

/** The default ResNet18, generated once and shared by every test file. */
export async function testModelPath(): Promise<string> {
  await ensureModel(DEFAULT_MODEL_PATH);
  return DEFAULT_MODEL_PATH;
}

export function modelServerConfig(flags: string[] = []): ModelServerConfig {
  const port = flags.includes('--socket') ? [] : ['--port', '0'];
  return parseModelServerConfig([...port, '--log-level', 'silent', '--threads', '2', ...flags], {}).config;
}

export interface RunningModelServer {
  server: ModelServer;
  url: string;
  config: ModelServerConfig;
}

export async function startModelServer(
  t: TestContext,
  flags: string[] = [],
  { load = true }: { load?: boolean } = {},
): Promise<RunningModelServer> {
  const config = modelServerConfig(flags);
  const server = await loadModelServer(config);
  t.after(() => server.close());
  const url = config.socket
    ? await server.app.listen({ path: config.socket })
    : await server.app.listen({ host: '127.0.0.1', port: 0 });
  if (load) await server.load(config.model ?? (await testModelPath()));
  return { server, url, config };
}

export interface JsonAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function postJson(url: string, body: unknown): Promise<JsonAnswer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

export async function postBytes(url: string, bytes: Uint8Array, contentType: string): Promise<JsonAnswer> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: bytes });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}
