// GET /: a page where a browser verifies the enclave, encrypts an image to it and classifies it
// through the secure route, with the client SDK bundled at build time (scripts/bundle-client.mjs)
// and served from here: no CDN. The page's files are public; /client/config.json offers what this
// gateway pins (a convenience the page labels as such: a client should pin values of its own).
// A browser gives WebCrypto only to secure contexts: remote users need the gateway over HTTPS.
import { readFile } from 'node:fs/promises';
import type { FastifyPluginCallback } from 'fastify';
import { formatMeasurements } from '../attestation/index.js';
import type { AttestationTrust } from './attestation-trust.js';
import { gatewayErrors } from './errors.js';

const ASSETS = new URL('../client/browser/', import.meta.url);
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/client/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/client/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
  '/client/mpg-client.js': { file: 'mpg-client.js', type: 'text/javascript; charset=utf-8' },
  '/client/mpg-client.js.map': { file: 'mpg-client.js.map', type: 'application/json' },
};
// The page talks only to this origin and runs only its own scripts: an injected script could read
// the image before it is encrypted.
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** Registered with the gateway's context (its `trust` is what /client/config.json offers). */
export const clientPage: FastifyPluginCallback<{ trust: AttestationTrust | undefined }> = (app, { trust }, done) => {
  const cache = new Map<string, Buffer>();
  const asset = async (file: string): Promise<Buffer | undefined> => {
    let bytes = cache.get(file);
    if (!bytes) {
      try {
        bytes = await readFile(new URL(file, ASSETS));
      } catch {
        return undefined;
      }
      cache.set(file, bytes);
    }
    return bytes;
  };

  for (const [path, { file, type }] of Object.entries(FILES)) {
    app.get(path, async (_request, reply) => {
      const bytes = await asset(file);
      if (!bytes)
        throw gatewayErrors.GW_NOT_FOUND(`The client page is not built (${file} is missing): run "npm run build"`);
      return reply.headers(PAGE_HEADERS).type(type).send(bytes);
    });
  }

  app.get('/client/config.json', async (_request, reply) => {
    let emulatedRootPem: string | null = null;
    if (trust?.mode === 'insecure-emulated-nsm-root' && trust.emulatedRootFile) {
      // Re-read: each emulated enclave start writes a new root.
      emulatedRootPem = await readFile(trust.emulatedRootFile, 'utf8').catch(() => null);
    }
    const pcrs = trust?.expectedPcrs ? (JSON.parse(formatMeasurements(trust.expectedPcrs)) as unknown) : null;
    return reply
      .headers({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
      .send({ trust: trust?.mode ?? 'none', pcrs, emulatedRootPem });
  });
  done();
};
