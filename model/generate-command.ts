// `mpg model generate`: writes the seeded ResNet18 the model server loads by default.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { formatOptionsHelp, integer, optionCommand, parseCommandLine, text, toggle } from '../common/index.js';
import { DEFAULT_MODEL_PATH } from './default-model.js';
import { writeResNet18 } from './resnet18.js';

// No environment twins: MPG_OUT or MPG_SEED would be too generic to mean this command alone.
const generateOptions = {
  out: text({
    description: 'Where to write the ONNX model',
    placeholder: 'PATH',
    default: DEFAULT_MODEL_PATH,
    env: false,
  }),
  seed: integer({
    description: 'Seed of the random weights; the same seed gives the same file',
    min: 0,
    max: 2 ** 32 - 1,
    default: 0,
    env: false,
  }),
  force: toggle({ description: 'Overwrite an existing file', env: false }),
};

const USAGE = [
  'Usage: mpg model generate [--out PATH] [--seed N] [--force]',
  '',
  "Writes torchvision's ResNet18 architecture with deterministic, untrained weights as ONNX.",
  'An existing file is left alone unless --force is given.',
  '',
  'Options:',
  formatOptionsHelp(generateOptions),
].join('\n');

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export const generateCommand = optionCommand({
  path: 'model generate',
  options: generateOptions,
  summary: 'Write ResNet18 with seeded random weights (no download).',
  usage: () => USAGE,
  parse: (argv, env) => parseCommandLine(generateOptions, argv, env),
  async run(parsed, { stdout, stderr }) {
    const { out, seed, force } = parsed.options;

    const existing = await stat(out).catch(() => undefined);
    if (existing && !force) {
      if (!existing.isFile()) {
        stderr.write(`mpg model generate: ${out} exists and is not a file\n`);
        return 1;
      }
      const sha256 = createHash('sha256')
        .update(await readFile(out))
        .digest('hex');
      stdout.write(`${out} already exists (${megabytes(existing.size)}, sha256 ${sha256}); left it alone.\n`);
      stdout.write('Use --force to overwrite it.\n');
      return 0;
    }

    const started = performance.now();
    try {
      const written = await writeResNet18(out, { seed });
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      stdout.write(`wrote ${written.path}\n`);
      stdout.write(`  size    ${written.bytes} bytes (${megabytes(written.bytes)})\n`);
      stdout.write(`  sha256  ${written.sha256}\n`);
      stdout.write(`  seed    ${seed} (untrained weights: predictions are meaningless), in ${seconds} s\n`);
      return 0;
    } catch (error) {
      stderr.write(`mpg model generate: could not write ${out}: ${(error as Error).message}\n`);
      return 1;
    }
  },
});
