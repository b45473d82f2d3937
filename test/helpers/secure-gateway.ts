// A stand-in for the gateway's three end-to-end routes, for the client SDK's tests until (and
// beside) the real gateway's: GET /.well-known/ohttp-gateway, GET /attestation?nonce=&key-id= and
// POST /predict-secure, forwarded untouched to one real enclave model server (its /ohttp-keys,
// /attestation and /predict). It plays the untrusted parent too: tests swap the member (an
// enclave restart), tamper with what crosses, and read every byte that crossed.
//
// The SDK's tests take only a base URL, so the lead can point them at the real gateway.
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { Agent, request } from 'undici';

export interface Member {
  /** The model server's socket (the emulated enclave's parent relay), or its http URL. */
  socketPath?: string;
  url?: string;
}

type Rewrite = (bytes: Uint8Array) => Uint8Array;

export interface TestSecureGateway {
  url: string;
  /** Where requests go: replace it to stand in for the enclave restarting or being replaced. */
  member: Member;
  /** How often each route was asked. */
  counts: { keys: number; attestation: number; predict: number };
  /** A hostile parent: rewrites what the client receives (keys, documents, responses) or what the enclave receives. */
  tamper: { keys?: Rewrite; attestation?: Rewrite; request?: Rewrite; response?: Rewrite };
  /** Every request and response body that crossed, in order. */
  crossed: Uint8Array[];
  /** Answer every route with this status and coded body instead of forwarding (a gateway refusing). */
  refuse?: { status: number; code: string };
}

/** What /client/config.json offers the page, as the real gateway's does. */
export interface PageConfig {
  pcrs: unknown;
  emulatedRootPem: string | null;
}

/** The client page's files as the build leaves them (the real gateway serves the same, gateway/client-page.ts). */
const PAGE_ASSETS = new URL('../../client/browser/', import.meta.url);
const PAGE_FILES: Readonly<Record<string, [string, string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/client/page.js': ['page.js', 'text/javascript'],
  '/client/page.css': ['page.css', 'text/css'],
  '/client/mpg-client.js': ['mpg-client.js', 'text/javascript'],
};

/** `page`: also serve the client page (GET /) with this config, for the browser tests. */
export async function startTestSecureGateway(
  t: TestContext,
  member: Member,
  page?: PageConfig,
): Promise<TestSecureGateway> {
  const agents = new Map<string, Agent>();
  const agentFor = (target: Member) => {
    const key = target.socketPath ?? target.url ?? '';
    let agent = agents.get(key);
    if (!agent) {
      agent = new Agent(target.socketPath ? { connect: { socketPath: target.socketPath } } : {});
      agents.set(key, agent);
    }
    return agent;
  };
  const forward = async (method: 'GET' | 'POST', path: string, body?: Uint8Array, contentType?: string) => {
    const target = gateway.member;
    const origin = target.socketPath ? 'http://enclave' : target.url!;
    const answer = await request(new URL(path, origin), {
      method,
      body,
      headers: contentType ? { 'content-type': contentType } : {},
      dispatcher: agentFor(target),
    });
    return {
      status: answer.statusCode,
      type: String(answer.headers['content-type'] ?? ''),
      body: new Uint8Array(await answer.body.arrayBuffer()),
    };
  };

  const gateway: TestSecureGateway = {
    url: '',
    member,
    counts: { keys: 0, attestation: 0, predict: 0 },
    tamper: {},
    crossed: [],
  };

  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      void (async () => {
        const url = new URL(incoming.url ?? '/', 'http://gateway');
        const coded = (status: number, code: string, message: string) => {
          outgoing
            .writeHead(status, { 'content-type': 'application/json' })
            .end(JSON.stringify({ statusCode: status, code, message }));
        };
        const send = (answer: { status: number; type: string; body: Uint8Array }, rewrite?: Rewrite) => {
          const body = answer.status === 200 && rewrite ? rewrite(answer.body) : answer.body;
          gateway.crossed.push(body);
          outgoing.writeHead(answer.status, { 'content-type': answer.type }).end(body);
        };
        if (gateway.refuse) return coded(gateway.refuse.status, gateway.refuse.code, 'refused by the test gateway');
        const asset = PAGE_FILES[url.pathname];
        if (page && incoming.method === 'GET' && asset) {
          return outgoing
            .writeHead(200, { 'content-type': asset[1] })
            .end(await readFile(new URL(asset[0], PAGE_ASSETS)));
        }
        if (page && incoming.method === 'GET' && url.pathname === '/client/config.json') {
          return outgoing
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ trust: 'test', ...page }));
        }
        if (incoming.method === 'GET' && url.pathname === '/.well-known/ohttp-gateway') {
          gateway.counts.keys++;
          return send(await forward('GET', '/ohttp-keys'), gateway.tamper.keys);
        }
        if (incoming.method === 'GET' && url.pathname === '/attestation') {
          gateway.counts.attestation++;
          const nonce = url.searchParams.get('nonce') ?? '';
          const keyId = Number(url.searchParams.get('key-id'));
          const keys = await forward('GET', '/ohttp-keys');
          // One member holds one key config: its id is the list's first config's first byte.
          if (keys.status !== 200 || keys.body[2] !== keyId)
            return coded(404, 'GW_UNKNOWN_KEY_ID', `no attested member holds key id ${keyId}`);
          return send(
            await forward('GET', `/attestation?nonce=${encodeURIComponent(nonce)}`),
            gateway.tamper.attestation,
          );
        }
        if (incoming.method === 'POST' && url.pathname === '/predict-secure') {
          gateway.counts.predict++;
          let body: Uint8Array = Buffer.concat(chunks);
          gateway.crossed.push(body);
          if (incoming.headers['content-type'] !== 'message/ohttp-req')
            return coded(415, 'GW_SECURE_PLAINTEXT_REFUSED', 'send message/ohttp-req (use the client SDK)');
          if (body.length < 7) return coded(400, 'GW_OHTTP_MALFORMED', 'too short to carry an OHTTP header');
          if (gateway.tamper.request) body = gateway.tamper.request(body);
          return send(await forward('POST', '/predict', body, 'message/ohttp-req'), gateway.tamper.response);
        }
        return coded(404, 'GW_NOT_FOUND', 'no such route');
      })().catch((error: unknown) => {
        if (!outgoing.headersSent)
          outgoing
            .writeHead(502, { 'content-type': 'application/json' })
            .end(
              JSON.stringify({ statusCode: 502, code: 'GW_UPSTREAM_UNAVAILABLE', message: (error as Error).message }),
            );
        else outgoing.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gateway.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...agents.values()].map((agent) => agent.close()));
  });
  return gateway;
}
