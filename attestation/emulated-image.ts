// What the emulated enclave's PCRs measure: the emulated counterpart of an EIF's contents.
//   PCR1 ("kernel"): the runtime the model server runs on: Node's version and architecture and the
//                    onnxruntime-node version.
//   PCR2 ("application"): every compiled JavaScript file of the project that the enclave runs
//                    (dist/, without tests and benchmarks), each with its relative path, then
//                    the model file.
//   PCR0: PCR1's items, then PCR2's.
// "mpg enclave build --mode emulated" on the parent and the emulated NSM inside the enclave both
// compute this, so the gateway pins PCRs the enclave cannot choose: a changed file or model
// changes PCR2, and the gateway refuses the enclave. Not what Nitro would measure for the same
// contents, and worth nothing without a hardware root of trust.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MeasuredContent } from './emulated-measurements.js';
import { emulatedMeasurements } from './emulated-measurements.js';
import type { PcrMeasurements } from './measurements.js';

/** The compiled project: dist/ (this file is dist/attestation/emulated-image.js). */
export const DIST_ROOT = fileURLToPath(new URL('..', import.meta.url));
const NOT_IN_THE_IMAGE = new Set(['test', 'bench']);

function javascriptFiles(root: string, directory = root): string[] {
  return readdirSync(directory, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(directory, entry.name);
      if (entry.isDirectory())
        return directory === root && NOT_IN_THE_IMAGE.has(entry.name) ? [] : javascriptFiles(root, path);
      return entry.isFile() && entry.name.endsWith('.js') ? [path] : [];
    })
    .sort();
}

function onnxruntimeVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export interface EmulatedImage {
  /** The model file the enclave's model server loads. */
  modelPath: string;
  /** The compiled project; default: the dist/ this code runs from. */
  distRoot?: string;
}

/** The emulated PCR0/1/2 of the enclave that runs this project's dist/ with `modelPath`. */
export function emulatedImageMeasurements({ modelPath, distRoot = DIST_ROOT }: EmulatedImage): PcrMeasurements {
  const kernel: MeasuredContent[] = [
    Buffer.from(
      `node ${process.version} ${process.platform}-${process.arch}; onnxruntime-node ${onnxruntimeVersion()}`,
    ),
  ];
  const application: MeasuredContent[] = javascriptFiles(distRoot).map((file) =>
    Buffer.concat([Buffer.from(`${relative(distRoot, file).split(sep).join('/')}\0`), readFileSync(file)]),
  );
  application.push(Buffer.concat([Buffer.from('model\0'), readFileSync(modelPath)]));
  return emulatedMeasurements({ kernel, application });
}
