// The JSON-line log of the processes that are not Fastify servers (the enclave's entrypoint and
// relays, the stack, the load-test harness): pino, as the model server's and the gateway's, so
// every process writes the same lines (level, time, the bindings, the fields, msg).
//
// pino is required when the first log is made, not when common/ is imported: every `mpg` command
// loads common/, and most never log this way.
import { createRequire } from 'node:module';
import type pino from 'pino';

/** What the code logs through: pino's calling convention, fields first (a pino Logger is one). */
export interface Log {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Where the lines go: a stream, or anything that takes one line at a time. */
export interface LineSink {
  write(line: string): unknown;
}

const requirePino = () => createRequire(import.meta.url)('pino') as typeof pino;

/** An error anywhere in a line's fields, as {type, message, code}: never its stack or own fields. */
function describeErrors(fields: Record<string, unknown>): Record<string, unknown> {
  const described: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      const code = (value as NodeJS.ErrnoException).code;
      described[key] = { type: value.name, message: value.message, ...(code ? { code } : {}) };
    } else {
      described[key] = value;
    }
  }
  return described;
}

/** Writes one JSON object per line to `sink`; `bindings` are on every line; below `level` nothing. */
export function jsonLineLog(
  sink: LineSink,
  bindings: Record<string, unknown> = {},
  level: 'info' | 'warn' = 'info',
): Log {
  return requirePino()(
    {
      base: bindings,
      level,
      // Errors keep the shape the lines had before pino, without their stack: a line is for operators.
      formatters: { log: describeErrors },
      // pino's own `err` serializer would run after describeErrors and add an empty stack.
      serializers: { err: (value: unknown) => value },
    },
    { write: (line: string) => sink.write(line) },
  );
}

/** A log that writes nothing. */
export const silentLog: Log = { info() {}, warn() {}, error() {} };
