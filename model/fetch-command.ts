// `mpg model fetch`: download a pretrained model (e.g. the ONNX Model Zoo's ResNet18), verify its
// SHA-256 and put it where the model server looks for it.
import {
  OptionError,
  formatOptionsHelp,
  integer,
  optionCommand,
  parseCommandLine,
  text,
  toggle,
} from '../common/index.js';
import { DEFAULT_MODEL_PATH } from './default-model.js';
import { DEFAULT_FETCH_TIMEOUT_MS, ModelFetchError, fetchModel } from './fetch.js';

const PROGRESS_INTERVAL_MS = 1000; // at most one progress line a second
const EXIT_OPTION_ERROR = 2;
const EXIT_FETCH_ERROR = 1;
const EXIT_CANCELLED = 130; // the shell's convention for "ended by SIGINT"

const specs = {
  url: text({
    description: 'http:// or https:// address of the .onnx file (redirects are followed)',
    placeholder: 'URL',
    env: false,
    check: (value) => (/^https?:$/.test(protocolOf(value)) ? undefined : 'must be an http:// or https:// URL'),
  }),
  sha256: text({
    description: "the file's SHA-256 as its publisher lists it (64 hex characters)",
    placeholder: 'HEX',
    env: false,
    check: (value) => (/^[0-9a-f]{64}$/i.test(value) ? undefined : 'must be 64 hexadecimal characters'),
  }),
  out: text({ description: 'where to save the model', placeholder: 'PATH', default: DEFAULT_MODEL_PATH, env: false }),
  timeoutMs: integer({
    description: 'give up when the server sends nothing for this long',
    unit: 'ms',
    min: 1,
    default: DEFAULT_FETCH_TIMEOUT_MS,
    env: false,
  }),
  force: toggle({ description: 'replace an existing file whose checksum differs', env: false }),
};

const usage = [
  'Usage: mpg model fetch --url URL --sha256 HEX [--out PATH] [--timeout-ms N] [--force]',
  '',
  'Downloads a model, checks its SHA-256 and only then moves it into place; on any failure',
  'nothing is saved and an existing file is left as it was.',
  '',
  'Options:',
  formatOptionsHelp(specs),
  '',
].join('\n');

export const fetchCommand = optionCommand({
  path: 'model fetch',
  options: specs,
  summary: 'Download a pretrained ONNX model and verify its SHA-256.',
  usage: () => usage,
  parse(argv, env) {
    const { options, help } = parseCommandLine(specs, argv, env);
    if (help)
      return { help, url: '', sha256: '', out: options.out, timeoutMs: options.timeoutMs, force: options.force };
    if (options.url === undefined) throw new OptionError('--url is required');
    if (options.sha256 === undefined) throw new OptionError('--sha256 is required');
    return {
      help,
      url: options.url,
      sha256: options.sha256,
      out: options.out,
      timeoutMs: options.timeoutMs,
      force: options.force,
    };
  },
  async run(parsed, { stdout, stderr }) {
    const { url, sha256, out, timeoutMs, force } = parsed;

    // Ctrl-C would otherwise leave a temporary file of up to hundreds of MB behind; the listeners
    // live only as long as the download so the command leaves no process state.
    const cancel = new AbortController();
    const onSignal = () => cancel.abort();
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    try {
      const result = await fetchModel({
        url,
        sha256,
        out,
        timeoutMs,
        force,
        signal: cancel.signal,
        onProgress: throttledProgress(stderr),
      });
      stdout.write(
        result.alreadyPresent
          ? `${result.path} is already there with sha256 ${result.sha256}; nothing to download\n`
          : `saved ${result.path} (${formatBytes(result.bytes)}, sha256 ${result.sha256})\n`,
      );
      return 0;
    } catch (error) {
      if (!(error instanceof ModelFetchError)) throw error;
      stderr.write(`mpg model fetch: ${error.message}\n`);
      if (cancel.signal.aborted) return EXIT_CANCELLED;
      return error.reason === 'bad-argument' ? EXIT_OPTION_ERROR : EXIT_FETCH_ERROR;
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    }
  },
});

function throttledProgress(stderr: NodeJS.WritableStream): (received: number, total: number | undefined) => void {
  // Starting the clock now keeps a download that takes under a second silent.
  let lastPrinted = performance.now();
  return (received, total) => {
    const now = performance.now();
    if (now - lastPrinted < PROGRESS_INTERVAL_MS) return;
    lastPrinted = now;
    const percent = total ? ` of ${formatBytes(total)} (${Math.floor((received / total) * 100)}%)` : '';
    stderr.write(`downloaded ${formatBytes(received)}${percent}\n`);
  };
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${bytes} bytes`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function protocolOf(value: string): string {
  try {
    return new URL(value).protocol;
  } catch {
    return '';
  }
}
