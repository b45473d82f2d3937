// TLS on the traffic listener, with certificates made here by Debian's openssl, and real clients:
// undici (fetch), node:http2 and curl, over HTTP/1.1 and HTTP/2 (ALPN). The certificate is renewed
// in place without a restart; a broken renewal keeps the previous certificate; a bad pair stops
// the gateway before it listens.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { OptionError } from '../../common/index.js';
import { parseGatewayConfig } from '../../gateway/index.js';
import { readTlsFiles } from '../../gateway/tls.js';
import { startGateway, startRecordingUpstream, waitFor } from '../helpers/gateway.js';

const run = promisify(execFile);

interface Certificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  fingerprint: string;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A self-signed P-256 certificate for localhost and 127.0.0.1, valid one day. */
async function selfSigned(dir: string, name: string): Promise<Certificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=localhost/O=${name}`,
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  const cert = await readFile(certFile);
  return { certFile, keyFile, cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** The fingerprint of the certificate a new TLS connection to `url` is shown. */
function servedFingerprint(url: string, ca: Buffer[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: hostname, port: Number(port), ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] },
      () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.destroy();
      },
    );
    socket.once('error', reject);
  });
}

async function curl(args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', ...args]);
  return stdout;
}

test('the traffic listener speaks TLS with the given certificate, over HTTP/1.1 and HTTP/2, to fetch, node:http2 and curl', async (t) => {
  const dir = await tempDir(t);
  const certificate = await selfSigned(dir, 'first');
  const upstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(t, [
    '--public-upstream',
    upstream.url,
    '--tls-cert',
    certificate.certFile,
    '--tls-key',
    certificate.keyFile,
  ]);
  assert.match(url, /^https:\/\//);

  const agent = new Agent({ connect: { ca: certificate.cert } });
  t.after(() => agent.close());
  const answer = await undiciFetch(`${url}/predict-public`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: 'x',
    dispatcher: agent,
  });
  assert.equal(answer.status, 200);
  assert.equal(((await answer.json()) as { upstream: string }).upstream, 'public');
  assert.equal(answer.headers.get('x-privacy-route'), 'public');

  // HTTP/2, as a browser or curl would pick it through ALPN.
  const session = http2Connect(url, { ca: certificate.cert });
  t.after(() => session.close());
  const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/predict-public', 'content-type': 'image/jpeg' });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: Buffer) => (body += chunk.toString()));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
    stream.end('x');
  });
  assert.equal(h2.status, 200, h2.body);
  assert.equal((JSON.parse(h2.body) as { upstream: string }).upstream, 'public');
  assert.equal(session.alpnProtocol, 'h2');

  const data = ['-X', 'POST', '-H', 'content-type: image/jpeg', '--data-binary', 'x', '--cacert', certificate.certFile];
  assert.equal(await curl(['--http2', ...data, `${url}/predict-public`]), '2 200');
  assert.equal(await curl(['--http1.1', ...data, `${url}/predict-public`]), '1.1 200');
  assert.equal(await curl(['--http2', '--cacert', certificate.certFile, `${url}/no-such-route`]), '2 404');
  assert.equal(upstream.received.length, 4, 'each request reached the upstream once');

  // Neither a client that does not trust the certificate nor plain HTTP gets anything.
  await assert.rejects(fetch(`${url}/healthz`));
  await assert.rejects(fetch(`${url.replace('https:', 'http:')}/healthz`));
});

test('a renewed certificate is served without a restart, and a broken renewal keeps the previous one', async (t) => {
  const dir = await tempDir(t);
  const [first, second] = await Promise.all([selfSigned(dir, 'first'), selfSigned(dir, 'second')]);
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  // Replaced as renewal tools do: written beside, then renamed over.
  const install = async (certificate: Certificate) => {
    await writeFile(`${keyFile}.new`, await readFile(certificate.keyFile));
    await writeFile(`${certFile}.new`, certificate.cert);
    await rename(`${keyFile}.new`, keyFile);
    await rename(`${certFile}.new`, certFile);
  };
  await install(first);
  const lines: string[] = [];
  const logger = {
    level: 'info',
    stream: new Writable({ write: (chunk: Buffer, _encoding, done) => done(void lines.push(chunk.toString())) }),
  };
  const upstream = await startRecordingUpstream(t, 'public');
  const { url } = await startGateway(
    t,
    ['--public-upstream', upstream.url, '--tls-cert', certFile, '--tls-key', keyFile],
    { dependencies: { logger } },
  );
  const ca = [first.cert, second.cert];
  assert.equal(await servedFingerprint(url, ca), first.fingerprint);

  await install(second);
  await waitFor(
    async () => (await servedFingerprint(url, ca)) === second.fingerprint,
    'the renewed certificate to be served',
    15_000,
  );

  await writeFile(keyFile, 'not a key');
  await waitFor(
    () => lines.some((line) => line.includes('could not be loaded: still serving the previous certificate')),
    'the failed reload to be logged',
    15_000,
  );
  assert.equal(await servedFingerprint(url, ca), second.fingerprint, 'the previous certificate is still served');
  const agent = new Agent({ connect: { ca } });
  t.after(() => agent.close());
  assert.equal((await undiciFetch(`${url}/healthz`, { dispatcher: agent })).status, 200);
});

test("a gateway with half a TLS pair, an unreadable file or a key that is not the certificate's does not start", async (t) => {
  const dir = await tempDir(t);
  const [first, second] = await Promise.all([selfSigned(dir, 'first'), selfSigned(dir, 'second')]);
  const base = ['--public-upstream', 'http://127.0.0.1:9'];
  assert.throws(
    () => parseGatewayConfig([...base, '--tls-cert', first.certFile], {}),
    /--tls-cert and --tls-key go together/,
  );
  assert.throws(
    () => readTlsFiles({ tlsCert: join(dir, 'missing.crt'), tlsKey: first.keyFile }),
    (error: unknown) => error instanceof OptionError && /--tls-cert .*missing\.crt/.test(error.message),
  );
  assert.throws(
    () => readTlsFiles({ tlsCert: first.certFile, tlsKey: second.keyFile }),
    (error: unknown) => error instanceof OptionError && /not a usable pair/.test(error.message),
  );
  assert.ok(readTlsFiles({ tlsCert: first.certFile, tlsKey: first.keyFile }));
});
