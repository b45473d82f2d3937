// EMULATED PCRs: deterministic SHA-384 measurements of the emulated enclave image's contents, in
// the nitro-cli measurements format, so the emulation pins and checks PCRs the way Nitro does.
// They are NOT the values a real EIF of the same contents would have (Nitro measures the EIF's
// sections, not these files) and prove nothing without a hardware root of trust.
//
// Each PCR is extended like a hardware PCR: start at 48 zero bytes, then for each item
//   pcr = SHA-384(pcr || SHA-384(item bytes))
// first with the label "mpg-emulated-pcrN" (so an empty list never gives the all-zero debug
// value), then with each item in the order given (a path is read and hashed; only its bytes count).
//   PCR1 = kernel items, PCR2 = application items,
//   PCR0 = image items, or when none are given the kernel items then the application items.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PcrMeasurements } from './measurements.js';

/** A file path (its contents are measured) or bytes. */
export type MeasuredContent = string | Uint8Array;

export interface EmulatedImageContents {
  image?: readonly MeasuredContent[];
  kernel?: readonly MeasuredContent[];
  application?: readonly MeasuredContent[];
}

/** What nitro-cli prints as HashAlgorithm; the emulation prints the same. */
export const SHA384_HASH_ALGORITHM = 'Sha384 { ... }';
const PCR_BYTES = 48;

const sha384 = (bytes: Uint8Array) => createHash('sha384').update(bytes).digest();

/** One PCR extended with the label and then each item. */
export function extendPcr(label: string, items: readonly MeasuredContent[]): Buffer {
  let pcr = Buffer.alloc(PCR_BYTES);
  for (const item of [Buffer.from(label, 'utf8'), ...items]) {
    const bytes = typeof item === 'string' ? readFileSync(item) : item;
    pcr = sha384(Buffer.concat([pcr, sha384(bytes)]));
  }
  return pcr;
}

/** The emulated PCR0/1/2 of these contents (reads any paths synchronously). */
export function emulatedMeasurements(contents: EmulatedImageContents = {}): PcrMeasurements {
  const kernel = contents.kernel ?? [];
  const application = contents.application ?? [];
  const image = contents.image ?? [...kernel, ...application];
  return {
    hashAlgorithm: SHA384_HASH_ALGORITHM,
    pcrs: {
      0: extendPcr('mpg-emulated-pcr0', image).toString('hex'),
      1: extendPcr('mpg-emulated-pcr1', kernel).toString('hex'),
      2: extendPcr('mpg-emulated-pcr2', application).toString('hex'),
    },
  };
}
