// What every benchmark script shares: its flags parsed once with common/options (an unknown flag
// is an error, --help lists them with their MPG_ twins), its result file, and its exit codes
// (2 for a bad flag, 1 when it failed).
import type { OptionSpecs, OptionsOf } from '../common/index.js';
import { OptionError, parseCommandLine, usageWithOptions } from '../common/index.js';

export { saveBenchResult } from './results.js';

export interface BenchScript<Specs extends OptionSpecs> {
  /** `gateway` for `npm run bench:gateway`. */
  name: string;
  /** What it measures, for --help. */
  summary: readonly string[];
  options: Specs;
  main(options: OptionsOf<Specs>): Promise<void>;
}

export async function runBench<Specs extends OptionSpecs>(script: BenchScript<Specs>): Promise<void> {
  const command = `bench:${script.name}`;
  let parsed: ReturnType<typeof parseCommandLine<Specs>>;
  try {
    parsed = parseCommandLine(script.options, process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    console.error(`${command}: ${error.message}\nRun "npm run ${command} -- --help" for the options.`);
    process.exitCode = 2;
    return;
  }
  if (parsed.help) {
    console.log(usageWithOptions([`Usage: npm run ${command} -- [options]`, '', ...script.summary], script.options)());
    return;
  }
  try {
    await script.main(parsed.options);
  } catch (error) {
    console.error(`${command}: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
