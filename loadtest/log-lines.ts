// The processes the harness starts log JSON lines (pino's shape) on stderr: a start-up's worth of
// "listening" and "stopping" lines would bury the progress, so only warnings and worse pass on.
const INFO_OR_LESS = /^\{"level":[1-3]\d,/;

/** Forwards `source`'s lines to `sink`, except JSON log lines below level 40 (warn). */
export function forwardWarnings(source: NodeJS.ReadableStream, sink: NodeJS.WritableStream): void {
  let pending = '';
  source.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (!INFO_OR_LESS.test(line)) sink.write(line + '\n');
  });
  source.on('end', () => {
    if (pending !== '' && !INFO_OR_LESS.test(pending)) sink.write(pending + '\n');
  });
}
