// `mpg client predict --gateway URL --pcrs FILE [--insecure-trust-emulated-nsm-root FILE] IMAGE...`:
// the SDK as a command. Verifies the enclave behind the gateway, sends the images as one encrypted
// JSON batch, prints the predictions and what was verified. Exit 0 when the model server answered
// 200, 1 when the client refused (the reason printed) or the model server answered an error,
// 2 for bad options or unreadable files.
import { readFile } from 'node:fs/promises';
import type { CommandContext } from '../common/index.js';
import {
  OptionError,
  commandGroup,
  integer,
  optionCommand,
  parseCommandLine,
  text,
  toggle,
  usageWithOptions,
} from '../common/index.js';
import { SecureClientError } from './errors.js';
import { createSecureClient } from './secure-client.js';
import type { SecureResponse } from './secure-client.js';

export const DEFAULT_CLI_TOPK = 5;

export const predictOptions = {
  gateway: text({
    description: "The gateway's base URL (its secure route verifies and encrypts end to end)",
    placeholder: 'URL',
  }),
  pcrs: text({
    description:
      'Measurements file that "mpg enclave build" (nitro-cli build-enclave) wrote: PCR0/1/2 the enclave must report',
    placeholder: 'FILE',
  }),
  insecureTrustEmulatedNsmRoot: text({
    description:
      'INSECURE, local emulation only: also trust the emulated NSM root in this PEM file (attestation then proves nothing)',
    placeholder: 'FILE',
  }),
  topk: integer({ description: 'Classes to print per image', min: 1, max: 1000, default: DEFAULT_CLI_TOPK }),
  maxDocumentAgeMs: integer({
    description: 'Refuse an attestation document older than this',
    unit: 'ms',
    min: 0,
    default: 5 * 60_000,
  }),
  json: toggle({ description: 'Print one JSON object instead of text', env: false }),
};

interface ParsedPredict {
  help: boolean;
  images: string[];
  options: ReturnType<typeof parseCommandLine<typeof predictOptions>>['options'];
}

function parsePredict(argv: readonly string[], env: CommandContext['env']): ParsedPredict {
  const { options, positionals, help } = parseCommandLine(predictOptions, argv, env, {
    maxPositionals: Number.MAX_SAFE_INTEGER,
  });
  if (help) return { help, images: [], options };
  if (options.gateway === undefined) throw new OptionError('--gateway URL is required');
  if (options.pcrs === undefined)
    throw new OptionError(
      '--pcrs FILE is required: the client only encrypts to an enclave whose measurements it pinned',
    );
  if (positionals.length === 0) throw new OptionError('give at least one IMAGE file (JPEG, PNG or WebP)');
  return { help, images: positionals, options };
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new OptionError(
      `cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? (error as Error).message)}`,
    );
  }
}

interface Prediction {
  topk?: { label: string; score: number }[];
}

function printText(stdout: NodeJS.WritableStream, images: readonly string[], response: SecureResponse): void {
  const { verified } = response;
  const lines = [
    `Verified enclave${verified.emulated ? ' (EMULATED root: INSECURE, proves nothing about the hardware)' : ' (AWS Nitro Enclaves root)'}`,
    `  module_id    ${verified.moduleId}`,
    `  signed at    ${verified.timestamp}`,
    `  PCR0         ${verified.pcrs[0]}`,
    `  PCR1         ${verified.pcrs[1]}`,
    `  PCR2         ${verified.pcrs[2]}`,
    `  key id       ${verified.keyId}`,
    `  key SHA-256  ${verified.publicKeySha256}`,
    `  root SHA-256 ${verified.rootFingerprint}`,
    `Encrypted end to end (OHTTP); the model server answered ${response.status}`,
  ];
  const predictions = (response.json as { predictions?: Prediction[] } | undefined)?.predictions;
  if (response.status === 200 && Array.isArray(predictions)) {
    predictions.forEach((prediction, index) => {
      lines.push(`${images[index] ?? `image ${index}`}`);
      for (const scored of prediction.topk ?? []) lines.push(`  ${scored.score.toFixed(4)}  ${scored.label}`);
    });
  } else {
    lines.push(`  ${new TextDecoder().decode(response.body)}`);
  }
  stdout.write(lines.join('\n') + '\n');
}

const predictCommand = optionCommand({
  path: 'client predict',
  options: predictOptions,
  summary: 'Classify images through the secure route: verify the enclave, encrypt to it, send, open',
  usage: usageWithOptions(
    [
      'Usage: mpg client predict --gateway URL --pcrs FILE [--insecure-trust-emulated-nsm-root FILE] [--topk N] [--json] IMAGE...',
      '',
      "Fetches the gateway's key configs, attests the enclave with a fresh nonce and verifies the",
      'document (AWS Nitro root, PCRs equal to --pcrs, debug mode refused, the key bound), then sends',
      'the images as one JSON batch encrypted to the enclave (Oblivious HTTP): the gateway and the',
      'parent instance see only ciphertext. Prints the predictions and what was verified.',
      'Exit 0 on a 200 answer, 1 when the client refused or the model server answered an error, 2 for',
      'bad options or unreadable files.',
    ],
    predictOptions,
  ),
  parse: parsePredict,
  async run({ images, options }, { stdout, stderr }) {
    let pcrs: string;
    let emulatedRoot: string | undefined;
    let files: Buffer[];
    try {
      pcrs = (await readInput(options.pcrs!, '--pcrs')).toString('utf8');
      if (options.insecureTrustEmulatedNsmRoot !== undefined)
        emulatedRoot = (
          await readInput(options.insecureTrustEmulatedNsmRoot, '--insecure-trust-emulated-nsm-root')
        ).toString('utf8');
      files = await Promise.all(images.map((image) => readInput(image, 'IMAGE')));
    } catch (error) {
      stderr.write(`mpg client predict: ${(error as Error).message}\n`);
      return 2;
    }
    if (emulatedRoot !== undefined)
      stderr.write(
        'mpg client predict: INSECURE: trusting the emulated NSM root: attestation proves nothing about the enclave (local emulation only)\n',
      );
    try {
      const client = createSecureClient({
        gatewayUrl: options.gateway!,
        pcrs,
        insecureTrustEmulatedNsmRoot: emulatedRoot,
        maxKeyAgeMs: 0,
        maxDocumentAgeMs: options.maxDocumentAgeMs,
      });
      const response = await client.predict(
        { images: files.map((file) => file.toString('base64')), topk: options.topk },
        'application/json',
      );
      if (options.json)
        stdout.write(
          JSON.stringify(
            {
              status: response.status,
              verified: response.verified,
              response: response.json ?? new TextDecoder().decode(response.body),
            },
            null,
            2,
          ) + '\n',
        );
      else printText(stdout, images, response);
      return response.status === 200 ? 0 : 1;
    } catch (error) {
      if (!(error instanceof SecureClientError)) throw error;
      if (error.reason === 'invalid-option') {
        stderr.write(`mpg client predict: ${error.message}\n`);
        return 2;
      }
      if (options.json)
        stdout.write(
          JSON.stringify(
            {
              refused: error.reason,
              attestationReason: error.attestationReason ?? null,
              status: error.status ?? null,
              code: error.code ?? null,
              message: error.message,
            },
            null,
            2,
          ) + '\n',
        );
      stderr.write(
        `mpg client predict: REFUSED (${error.reason}${error.attestationReason ? `: ${error.attestationReason}` : ''}): ${error.message}\n`,
      );
      return 1;
    }
  },
});

export const clientCommand = commandGroup('client', 'The end-to-end encrypted client of the secure route', [
  predictCommand,
]);
