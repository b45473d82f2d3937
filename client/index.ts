// The client SDK, `mixed-privacy-gateway/client`: verify the enclave behind a gateway, encrypt to
// it (OHTTP), send, open. It runs in Node 20+ and in browsers (WebCrypto, fetch): browser.ts holds
// all of it and is what the gateway's page bundles; this door adds the Node-only `mpg client`
// command, loaded on demand.
import type { Command } from '../common/index.js';

export * from './browser.js';

/** `mpg client …` (Node only). */
export async function loadClientCommand(): Promise<Command> {
  return (await import('./command.js')).clientCommand;
}
