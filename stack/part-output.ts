// What `mpg stack` shows of its parts' output: every line prefixed by the part that wrote it
// ("gateway |", "public |", "enclave |", "stack |"). The parts log pino JSON lines; "pretty"
// renders each as one compact line (time, level, message, then the fields), "json" passes it on
// with a `part` field added, so a machine can still read it. Anything that is not a JSON log line
// (a server's "listening on" line) passes through with its prefix.
//
// Nothing here adds to what the parts chose to log: the gateway and the model servers never log
// a request's body, and this only reformats their lines.
import { Writable } from 'node:stream';

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type PartName = 'stack' | 'gateway' | 'public' | 'enclave';
const PART_WIDTH = 7; // the longest part name: every "|" lines up

/** pino's numeric levels. */
const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields every line carries that say nothing about the event; the part's prefix replaces them. */
const OMITTED_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);
/** A single line must stay a line: a longer one (a huge field) is cut. */
const MAX_LINE_CHARS = 4_000;

function renderValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value && typeof value.message === 'string') {
    // pino's serialised error: its type, code and message; the stack trace is left out of the line.
    const error = value as { type?: unknown; code?: unknown; message: string };
    const head = [error.type, error.code].filter((part) => typeof part === 'string').join(' ');
    return JSON.stringify(head ? `${head}: ${error.message}` : error.message);
  }
  return JSON.stringify(value) ?? String(value);
}

function clock(time: unknown): string {
  const date = typeof time === 'number' ? new Date(time) : new Date();
  return date.toISOString().slice(11, 23);
}

/** One line of a part's output, as the stack shows it. */
export function renderPartLine(part: PartName, line: string, format: LogFormat): string {
  let entry: Record<string, unknown> | undefined;
  if (line.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
        entry = parsed as Record<string, unknown>;
    } catch {
      // not JSON after all: shown as it is
    }
  }
  if (format === 'json') return JSON.stringify(entry ? { part, ...entry } : { part, msg: line });
  const prefix = `${part.padEnd(PART_WIDTH)} |`;
  if (!entry || typeof entry.level !== 'number') return `${prefix} ${line}`.slice(0, MAX_LINE_CHARS);
  const fields = Object.entries(entry)
    .filter(([key, value]) => !OMITTED_FIELDS.has(key) && !(key === 'component' && value === part))
    .map(([key, value]) => `${key}=${renderValue(value)}`);
  const level = (LEVEL_NAMES[entry.level] ?? String(entry.level)).padEnd(5);
  const message = typeof entry.msg === 'string' ? entry.msg : '';
  return [`${prefix} ${clock(entry.time)} ${level} ${message}`, ...fields].join(' ').slice(0, MAX_LINE_CHARS);
}

/**
 * A stream a part's stdout or stderr is piped into: it splits the bytes into lines and writes each
 * rendered line to `sink`. Several streams may share one sink; each writes whole lines only.
 */
export function partOutput(part: PartName, sink: NodeJS.WritableStream, format: LogFormat): Writable {
  let pending = '';
  const emit = (line: string) => {
    if (line.trim() !== '') sink.write(renderPartLine(part, line.replace(/\r$/, ''), format) + '\n');
  };
  return new Writable({
    decodeStrings: false,
    write(chunk: Buffer | string, _encoding, callback) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      // A part that never ends its line must not grow this buffer without bound.
      if (pending.length > MAX_LINE_CHARS) {
        lines.push(pending);
        pending = '';
      }
      for (const line of lines) emit(line);
      callback();
    },
    final(callback) {
      emit(pending);
      pending = '';
      callback();
    },
  });
}
