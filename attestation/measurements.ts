// The allow-listed measurements: the JSON `nitro-cli build-enclave` prints and `mpg enclave build`
// writes, {"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": hex, "PCR1": hex, "PCR2": hex}}.
// PCR0 measures the enclave image file, PCR1 the kernel and boot ramdisk, PCR2 the application.
import { readFile, writeFile } from 'node:fs/promises';
import { attestationErrors } from './errors.js';

export interface PcrMeasurements {
  /** As nitro-cli prints it, e.g. "Sha384 { ... }". */
  hashAlgorithm: string;
  /** PCR index => 96 lowercase hex digits (SHA-384). */
  pcrs: Readonly<Record<0 | 1 | 2, string>>;
}

const SHA384_HEX = /^[0-9a-fA-F]{96}$/;

/** Parses the measurements JSON; `source` names the file in errors. Throws ATT_MEASUREMENTS_INVALID. */
export function parseMeasurements(json: string, source: string): PcrMeasurements {
  const invalid = (problem: string) =>
    attestationErrors.ATT_MEASUREMENTS_INVALID(
      `${source}: ${problem}; expected what "nitro-cli build-enclave" prints: {"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "<96 hex digits>", "PCR1": ..., "PCR2": ...}}`,
    );
  let document: unknown;
  try {
    document = JSON.parse(json.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw invalid(`not valid JSON (${(error as Error).message})`);
  }
  const measurements = (document as { Measurements?: unknown } | null)?.Measurements;
  if (typeof measurements !== 'object' || measurements === null || Array.isArray(measurements))
    throw invalid('no "Measurements" object');
  const fields = measurements as Record<string, unknown>;
  const hashAlgorithm = fields.HashAlgorithm;
  if (typeof hashAlgorithm !== 'string' || !/sha-?384/i.test(hashAlgorithm))
    throw invalid(
      `"Measurements.HashAlgorithm" is ${JSON.stringify(hashAlgorithm)}, expected SHA-384 ("Sha384 { ... }")`,
    );
  const pcr = (name: 'PCR0' | 'PCR1' | 'PCR2') => {
    const value = fields[name];
    if (typeof value !== 'string' || !SHA384_HEX.test(value)) {
      throw invalid(
        `"Measurements.${name}" is ${value === undefined ? 'missing' : typeof value === 'string' ? `${value.length} characters, not 96 hex digits` : JSON.stringify(value)}`,
      );
    }
    return value.toLowerCase();
  };
  return { hashAlgorithm, pcrs: { 0: pcr('PCR0'), 1: pcr('PCR1'), 2: pcr('PCR2') } };
}

export async function readMeasurementsFile(path: string): Promise<PcrMeasurements> {
  let json: string;
  try {
    json = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw attestationErrors.ATT_MEASUREMENTS_INVALID(
      `cannot read measurements file ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? (cause as Error).message)}`,
      { cause },
    );
  }
  return parseMeasurements(json, path);
}

/** The nitro-cli JSON for these measurements. */
export function formatMeasurements(measurements: PcrMeasurements): string {
  const { pcrs } = measurements;
  return (
    JSON.stringify(
      { Measurements: { HashAlgorithm: measurements.hashAlgorithm, PCR0: pcrs[0], PCR1: pcrs[1], PCR2: pcrs[2] } },
      null,
      2,
    ) + '\n'
  );
}

export async function writeMeasurementsFile(path: string, measurements: PcrMeasurements): Promise<void> {
  await writeFile(path, formatMeasurements(measurements));
}
