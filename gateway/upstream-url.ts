// Upstream member addresses: `http://host:port` for TCP, `unix:/path/to.sock` for a Unix socket
// (the secure route reaches the enclave through the parent relay's socket).

export interface UpstreamAddress {
  /** As the operator wrote it; used in logs and metric labels. */
  url: string;
  /** The TCP origin, or undefined for a Unix socket. */
  origin?: string;
  socketPath?: string;
}

export function parseUpstreamUrl(value: string): UpstreamAddress {
  if (value.startsWith('unix:')) {
    const socketPath = value.slice('unix:'.length);
    if (!socketPath.startsWith('/')) throw new Error('must be unix: followed by an absolute socket path');
    return { url: value, socketPath };
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new Error('must be http://host:port or unix:/path/to.sock');
  }
  if (parsed.protocol !== 'http:') throw new Error('must use http: (TLS ends at the gateway) or unix:');
  if (parsed.pathname !== '/' || parsed.search || parsed.hash || parsed.username) {
    throw new Error('must be an origin only, with no path, query or credentials');
  }
  return { url: value, origin: parsed.origin };
}
