// One error type for everything the OHTTP layer refuses. The reason is what callers branch on (a
// server maps it to a coded HTTP error, a client to a retry); the message says what was wrong.
export type OhttpErrorReason = 'malformed' | 'unknown-key' | 'unsupported-suite' | 'decrypt-failed';

export class OhttpError extends Error {
  override name = 'OhttpError';
  readonly reason: OhttpErrorReason;

  constructor(reason: OhttpErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}
