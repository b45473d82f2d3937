// The gateway's page (GET /): pick an image; the browser verifies the enclave, encrypts the image
// to it, sends it through the gateway's secure route and shows the predictions and what it
// verified. All of the work is the client SDK's (mpg-client.js, bundled at build time); this file
// only wires the form. Plain browser JavaScript, no build step of its own.
import { SecureClientError, createSecureClient } from './mpg-client.js';

const $ = (id) => document.getElementById(id);
const TOPK = 5;
// The page attests again after this long (a new page load attests anyway).
const MAX_KEY_AGE_MS = 60_000;

function show(element, text, className) {
  element.textContent = text;
  element.className = className ?? '';
}

function secureContextProblem() {
  if (!window.isSecureContext)
    return `This page is not a secure context (${location.origin}), so the browser withholds WebCrypto (crypto.subtle): nothing can be verified or encrypted here. Open it over HTTPS, or as http://localhost.`;
  if (!globalThis.crypto?.subtle)
    return 'This browser has no WebCrypto (crypto.subtle): nothing can be verified or encrypted here.';
  return undefined;
}

async function loadSuggestions() {
  // What the gateway itself was told to pin: a convenience for local use, not a proof.
  try {
    const response = await fetch('/client/config.json', { cache: 'no-store' });
    if (!response.ok) return;
    const config = await response.json();
    if (config.pcrs && !$('pcrs').value) {
      $('pcrs').value = JSON.stringify(config.pcrs, null, 2);
      $('pcrs-note').textContent =
        'Pre-filled with what this gateway pins. Pin values you obtained yourself: values served by the gateway prove nothing about it.';
    }
    if (config.emulatedRootPem) $('emulated-root').value = config.emulatedRootPem;
  } catch {
    // No suggestions: the user pastes the measurements.
  }
}

function renderResult(response) {
  const body = $('predictions').tBodies[0];
  body.replaceChildren();
  const predictions = response.json?.predictions?.[0]?.topk ?? [];
  for (const { label, score } of predictions) {
    const row = body.insertRow();
    row.insertCell().textContent = score.toFixed(4);
    row.insertCell().textContent = label;
  }
  const verified = response.verified;
  const entries = [
    [
      'Root',
      verified.emulated
        ? 'EMULATED NSM root (INSECURE: proves nothing about the hardware)'
        : 'AWS Nitro Enclaves root G1',
    ],
    ['Root SHA-256', verified.rootFingerprint],
    ['PCR0', verified.pcrs[0]],
    ['PCR1', verified.pcrs[1]],
    ['PCR2', verified.pcrs[2]],
    ['Key id', String(verified.keyId)],
    ['Key SHA-256', verified.publicKeySha256],
    ['Module', verified.moduleId],
    ['Attested at', verified.timestamp],
    ['Model', String(response.json?.model ?? '')],
  ];
  const list = $('verified');
  list.replaceChildren();
  for (const [name, value] of entries) {
    const term = document.createElement('dt');
    term.textContent = name;
    const detail = document.createElement('dd');
    detail.textContent = value;
    if (name === 'Root' && verified.emulated) detail.className = 'emulated';
    list.append(term, detail);
  }
  $('result').hidden = false;
}

let client;
let clientKey;

function clientFor(pcrs, emulatedRoot) {
  // One client per pinning, so that its verified key is reused across images.
  const key = JSON.stringify([pcrs, emulatedRoot ?? null]);
  if (clientKey !== key) {
    client = createSecureClient({
      gatewayUrl: location.origin,
      pcrs,
      insecureTrustEmulatedNsmRoot: emulatedRoot,
      maxKeyAgeMs: MAX_KEY_AGE_MS,
    });
    clientKey = key;
  }
  return client;
}

async function predict(event) {
  event.preventDefault();
  const status = $('status');
  const file = $('image').files[0];
  if (!file) return;
  $('send').disabled = true;
  $('result').hidden = true;
  show(status, 'Verifying the enclave and encrypting…');
  try {
    const emulatedRoot = $('trust-emulated').checked ? $('emulated-root').value : undefined;
    const response = await clientFor($('pcrs').value, emulatedRoot).predict(
      new Uint8Array(await file.arrayBuffer()),
      file.type || 'image/jpeg',
      { topk: TOPK },
    );
    if (response.status !== 200) {
      show(
        status,
        `The model server refused the image: ${response.status} ${response.json?.code ?? ''} ${response.json?.message ?? ''}`,
        'refused',
      );
      return;
    }
    renderResult(response);
    show(status, `Verified and encrypted end to end: ${file.name} classified by the enclave.`, 'ok');
  } catch (error) {
    const reason =
      error instanceof SecureClientError
        ? `${error.reason}${error.attestationReason ? ` (${error.attestationReason})` : ''}`
        : 'error';
    show(status, `Refused: ${reason}\n${error.message}`, 'refused');
  } finally {
    $('send').disabled = false;
  }
}

const problem = secureContextProblem();
if (problem) {
  show($('context'), problem, 'banner');
  $('context').hidden = false;
  $('send').disabled = true;
} else {
  $('predict').addEventListener('submit', predict);
}
$('trust-emulated').addEventListener('change', () => {
  $('emulated-root').hidden = !$('trust-emulated').checked;
});
void loadSuggestions();
