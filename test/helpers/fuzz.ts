// Shared by the fuzz tests (fast-check): one fixed seed, so `npm test` runs the same inputs every
// time and a failure names a seed and path that replay it; a bounded number of runs per property
// rather than a time budget, so a slow machine runs the same cases, only slower.
import fc from 'fast-check';
import { CodedError } from '../../common/index.js';

export const FUZZ_SEED = 20_261_203;

/** fast-check parameters for `runs` cases from the fixed seed. */
export function fuzzParameters<T>(runs: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: runs, endOnFailure: true };
}

// A decoder that loops forever never returns, so no assertion can catch it: each fuzz test also
// carries a node:test timeout far above its normal run time, which turns a hang into a failure.
export const HANG_GUARD_MS = 240_000;

/** Runs `decode`; returns what it threw (or undefined), failing on anything not of an allowed type. */
export function refusalOf(
  decode: () => unknown,
  allowed: readonly (abstract new (...args: never[]) => Error)[],
): Error | undefined {
  try {
    decode();
    return undefined;
  } catch (error) {
    if (allowed.some((type) => error instanceof type)) return error as Error;
    throw new Error(
      `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}, not one of ${allowed.map((type) => type.name).join(', ')}`,
      { cause: error },
    );
  }
}

/** The error is a coded 4xx of the component whose codes start with `prefix`. */
export function isCoded4xx(error: unknown, prefix: string, codes: readonly string[]): error is CodedError {
  return (
    error instanceof CodedError &&
    error.code.startsWith(prefix) &&
    codes.includes(error.code) &&
    error.statusCode >= 400 &&
    error.statusCode < 500
  );
}

/** Latin-1 header values a client can send (RFC 9110 field-value: VCHAR, SP, HTAB, obs-text). */
export const headerFieldValue = fc
  .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0x09), fc.integer({ min: 0x80, max: 0xff })), {
    maxLength: 40,
  })
  .map((codes) => String.fromCharCode(...codes));
