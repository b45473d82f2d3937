// The measurements a client pins: what `mpg enclave build` (nitro-cli build-enclave) printed, or
// the three PCRs alone. Parsed here rather than with attestation's parseMeasurements, which sits
// beside file reading and coded server errors that a browser cannot load.
import type { PcrMeasurements } from '../attestation/web.js';
import { SecureClientError } from './errors.js';

/** nitro-cli's JSON (object or text), {PCR0, PCR1, PCR2}, {0, 1, 2}, or PcrMeasurements. */
export type PcrPins = PcrMeasurements | string | Readonly<Record<string, unknown>>;

const SHA384_HEX = /^[0-9a-fA-F]{96}$/;

export function parsePins(pins: PcrPins): PcrMeasurements {
  const invalid = (problem: string) =>
    new SecureClientError(
      'invalid-option',
      `pcrs: ${problem}; give what "nitro-cli build-enclave" prints ({"Measurements": {"PCR0": "<96 hex digits>", "PCR1": ..., "PCR2": ...}}) or {PCR0, PCR1, PCR2}`,
    );
  let value: unknown = pins;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value.replace(/^\uFEFF/, ''));
    } catch (cause) {
      throw invalid(`not valid JSON (${(cause as Error).message})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not an object');
  const record = value as Record<string, unknown>;
  const source = (
    typeof record.Measurements === 'object' && record.Measurements !== null
      ? record.Measurements
      : 'pcrs' in record && typeof record.pcrs === 'object'
        ? record.pcrs
        : record
  ) as Record<string, unknown>;
  const pcr = (index: 0 | 1 | 2) => {
    const found = source[`PCR${index}`] ?? source[index];
    if (typeof found !== 'string' || !SHA384_HEX.test(found))
      throw invalid(`PCR${index} is ${found === undefined ? 'missing' : 'not 96 hex digits (SHA-384)'}`);
    return found.toLowerCase();
  };
  const hashAlgorithm =
    typeof source.HashAlgorithm === 'string'
      ? source.HashAlgorithm
      : typeof record.hashAlgorithm === 'string'
        ? record.hashAlgorithm
        : 'Sha384 { ... }';
  if (!/sha-?384/i.test(hashAlgorithm))
    throw invalid(`the hash algorithm is ${JSON.stringify(hashAlgorithm)}, expected SHA-384`);
  return { hashAlgorithm, pcrs: { 0: pcr(0), 1: pcr(1), 2: pcr(2) } };
}
