#!/usr/bin/env node
// Builds what a browser loads from the gateway's page (GET /): the client SDK as one ES module
// (esbuild, from the TypeScript sources, everything it imports included: no CDN, no import map),
// and the page's own files copied beside it. Runs after tsc in "npm run build" and in the image
// build. Output: dist/client/browser/{mpg-client.js, index.html, page.js, page.css}.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const out = new URL('dist/client/browser/', root);
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [new URL('client/browser.ts', root).pathname],
  outfile: new URL('mpg-client.js', out).pathname,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Browsers with WebCrypto X25519 (the OHTTP key) and ES2022.
  target: ['es2022'],
  sourcemap: true,
  legalComments: 'eof',
  logLevel: 'warning',
});

for (const name of ['index.html', 'page.js', 'page.css'])
  copyFileSync(new URL(`client/page/${name}`, root), new URL(name, out));
