// The enclave's processes log JSON lines like the model server's and the gateway's (pino's shape:
// level, time, msg, then fields), without taking pino on as a dependency of their own.
// Every line carries the bindings it was made with, so an emulated enclave says so on each line.

export interface EnclaveLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const LEVELS = { info: 30, warn: 40, error: 50 } as const;

function serialise(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    return { type: value.name, message: value.message, ...(code ? { code } : {}) };
  }
  return value;
}

/** Writes one JSON object per line to `stream`; `bindings` are added to every line. */
export function jsonLineLog(stream: NodeJS.WritableStream, bindings: Record<string, unknown> = {}): EnclaveLog {
  const write = (level: keyof typeof LEVELS) => (fields: Record<string, unknown>, message: string) => {
    const entries = Object.entries({ ...bindings, ...fields }).map(([key, value]) => [key, serialise(value)]);
    stream.write(JSON.stringify({ level: LEVELS[level], time: Date.now(), msg: message, ...Object.fromEntries(entries) }) + '\n');
  };
  return { info: write('info'), warn: write('warn'), error: write('error') };
}

export const silentLog: EnclaveLog = { info() {}, warn() {}, error() {} };
