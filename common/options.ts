// Command-line, environment and configuration-file options, declared once per command and parsed
// once at start.
//
// Each option is declared under its camelCase key; the flag is the kebab-case twin (`maxBatch`
// -> `--max-batch`), the environment variable the upper-snake twin with the `MPG_` prefix
// (`MPG_MAX_BATCH`) and the configuration-file key the key itself (`"maxBatch": 8`). Flags win
// over the environment, the environment over the file, the file over defaults. Unknown flags and
// unknown file keys are errors. The result is a frozen object typed from the declarations.
import { readFileSync } from 'node:fs';

export class OptionError extends Error {
  override name = 'OptionError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

interface BaseSpec<T> {
  description: string;
  /** Unit shown in help and error messages, e.g. 'ms', 'bytes', 'images'. */
  unit?: string;
  default?: T;
  /**
   * The default in words, where its value depends on the machine (`availableParallelism()`): what
   * docs/configuration.md shows, so the reference reads the same on every machine.
   */
  defaultText?: string;
  /** False when the option has no environment twin. */
  env?: boolean;
  parse(raw: string, source: string): T;
  /** How the value is shown in help, e.g. 'N', 'PATH'. */
  placeholder: string;
  /** Boolean flags take no value on the command line. */
  isSwitch?: boolean;
  /** Repeatable options collect every occurrence into an array. */
  repeatable?: boolean;
}

export type OptionSpec<T> = BaseSpec<T>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OptionSpecs = Record<string, OptionSpec<any>>;

type ValueOf<S> = S extends OptionSpec<infer T> ? (S extends { default: unknown } ? T : T | undefined) : never;
export type OptionsOf<Specs extends OptionSpecs> = Readonly<{ [K in keyof Specs]: ValueOf<Specs[K]> }>;

interface RangeSpec {
  description: string;
  unit?: string;
  defaultText?: string;
  min?: number;
  max?: number;
  env?: boolean;
}

function describeRange(spec: RangeSpec, what: string): string {
  const unit = spec.unit ? ` (${spec.unit})` : '';
  if (spec.min !== undefined && spec.max !== undefined) return `${what} from ${spec.min} to ${spec.max}${unit}`;
  if (spec.min !== undefined) return `${what} of at least ${spec.min}${unit}`;
  if (spec.max !== undefined) return `${what} of at most ${spec.max}${unit}`;
  return `${what}${unit}`;
}

export function integer<D extends number | undefined = undefined>(
  spec: RangeSpec & { default?: D },
): OptionSpec<number> & (D extends number ? { default: number } : object) {
  return {
    ...spec,
    placeholder: 'N',
    parse(raw: string, source: string): number {
      const value = /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      const inRange =
        Number.isSafeInteger(value) &&
        (spec.min === undefined || value >= spec.min) &&
        (spec.max === undefined || value <= spec.max);
      if (!inRange) throw new OptionError(`${source} must be ${describeRange(spec, 'an integer')}, got "${raw}"`);
      return value;
    },
  } as OptionSpec<number> & (D extends number ? { default: number } : object);
}

export function decimal<D extends number | undefined = undefined>(
  spec: RangeSpec & { default?: D },
): OptionSpec<number> & (D extends number ? { default: number } : object) {
  return {
    ...spec,
    placeholder: 'X',
    parse(raw: string, source: string): number {
      const value = /^-?(\d+\.?\d*|\.\d+)$/.test(raw.trim()) ? Number(raw) : Number.NaN;
      const inRange =
        Number.isFinite(value) &&
        (spec.min === undefined || value >= spec.min) &&
        (spec.max === undefined || value <= spec.max);
      if (!inRange) throw new OptionError(`${source} must be ${describeRange(spec, 'a number')}, got "${raw}"`);
      return value;
    },
  } as OptionSpec<number> & (D extends number ? { default: number } : object);
}

export function text<D extends string | undefined = undefined>(spec: {
  description: string;
  default?: D;
  placeholder?: string;
  env?: boolean;
  /** Rejects the value with a message when it returns a string. */
  check?: (value: string) => string | undefined;
}): OptionSpec<string> & (D extends string ? { default: string } : object) {
  return {
    ...spec,
    placeholder: spec.placeholder ?? 'TEXT',
    parse(raw: string, source: string): string {
      if (raw === '') throw new OptionError(`${source} must not be empty`);
      const problem = spec.check?.(raw);
      if (problem) throw new OptionError(`${source} ${problem}, got "${raw}"`);
      return raw;
    },
  } as OptionSpec<string> & (D extends string ? { default: string } : object);
}

export function choice<const C extends readonly string[], D extends C[number] | undefined = undefined>(spec: {
  description: string;
  choices: C;
  default?: D;
  env?: boolean;
}): OptionSpec<C[number]> & (D extends string ? { default: C[number] } : object) {
  return {
    ...spec,
    placeholder: spec.choices.join('|'),
    parse(raw: string, source: string): C[number] {
      if (!spec.choices.includes(raw)) {
        throw new OptionError(`${source} must be one of ${spec.choices.join(', ')}, got "${raw}"`);
      }
      return raw;
    },
  } as unknown as OptionSpec<C[number]> & (D extends string ? { default: C[number] } : object);
}

export function toggle(spec: { description: string; default?: boolean; env?: boolean }): OptionSpec<boolean> & {
  default: boolean;
} {
  return {
    ...spec,
    default: spec.default ?? false,
    placeholder: '',
    isSwitch: true,
    parse(raw: string, source: string): boolean {
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new OptionError(`${source} must be true or false, got "${raw}"`);
    },
  };
}

/** A repeatable option: every `--flag value` adds one item; its env twin is comma-separated. */
export function list<T>(item: OptionSpec<T>): OptionSpec<T[]> & { default: T[] } {
  return {
    description: item.description,
    unit: item.unit,
    env: item.env,
    placeholder: item.placeholder,
    repeatable: true,
    default: [],
    parse(raw: string, source: string): T[] {
      return raw
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== '')
        .map((part) => item.parse(part, source));
    },
  };
}

export function flagName(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (letter) => '-' + letter.toLowerCase());
}

export function envName(key: string): string {
  return 'MPG_' + key.replace(/[A-Z]/g, (letter) => '_' + letter).toUpperCase();
}

export interface ParsedCommandLine<Specs extends OptionSpecs> {
  options: OptionsOf<Specs>;
  /** Arguments that are not options, in order. */
  positionals: string[];
  help: boolean;
}

export interface ParseOptions {
  /** How many arguments that are not options are accepted; more are an error. */
  maxPositionals?: number;
}

export interface ConfigurationOptions<Specs extends OptionSpecs> extends ParseOptions {
  /**
   * The key of a text option naming a JSON configuration file, e.g. `config` (`--config FILE`,
   * `MPG_CONFIG`). Without it no file is read.
   */
  fileOption?: Extract<keyof Specs, string>;
}

/**
 * Parses argv (without the command words) and the environment against the specs.
 * Throws OptionError naming the flag or variable at fault.
 */
export function parseCommandLine<Specs extends OptionSpecs>(
  specs: Specs,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  { maxPositionals = 0 }: ParseOptions = {},
): ParsedCommandLine<Specs> {
  return parseConfiguration(specs, argv, env, { maxPositionals });
}

/**
 * Parses argv, the environment and, when `fileOption` is given and set, the JSON configuration
 * file it names. Precedence: flags > environment > file > defaults.
 *
 * The file is an object keyed by option key (`{"port": 8080, "publicUpstream": ["http://a:1"]}`).
 * Its values are JSON strings, numbers or booleans, converted to text and checked by the same
 * parser as a flag, so ranges, units and choices hold alike. A repeatable option also takes an
 * array, each item read like one occurrence of its flag, or a single string read like its
 * comma-separated environment twin. Every key of the file is checked, including one a flag
 * overrides, so a file is valid or not on its own. The file option itself may not appear in it.
 *
 * A repeatable option takes its value from one layer only: any `--flag` occurrence replaces the
 * environment's and the file's lists entirely, and the environment's list replaces the file's.
 *
 * The path is read synchronously, relative to the working directory, once at start.
 * Throws OptionError naming the flag, variable or file and key at fault.
 */
export function parseConfiguration<Specs extends OptionSpecs>(
  specs: Specs,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  { fileOption, maxPositionals = 0 }: ConfigurationOptions<Specs> = {},
): ParsedCommandLine<Specs> {
  const { fromFlags, positionals, help } = parseArgv(specs, argv);
  if (positionals.length > maxPositionals) {
    throw new OptionError(`unexpected argument "${positionals[maxPositionals]}"`);
  }

  // Flags, then the environment, read lazily: a variable that a flag overrides is never parsed.
  const fromFlagsOrEnv = (key: string): { value: unknown; source: string } | undefined => {
    if (fromFlags.has(key)) return { value: fromFlags.get(key), source: flagName(key) };
    const variable = envName(key);
    const raw = specs[key]!.env === false ? undefined : env[variable];
    if (raw === undefined || raw === '') return undefined;
    return { value: specs[key]!.parse(raw, variable), source: variable };
  };

  let fromFile = new Map<string, unknown>();
  if (fileOption !== undefined) {
    if (!Object.hasOwn(specs, fileOption)) throw new TypeError(`fileOption "${fileOption}" is not one of the specs`);
    const named = fromFlagsOrEnv(fileOption) ?? {
      value: specs[fileOption]!.default,
      source: `the default of ${flagName(fileOption)}`,
    };
    if (named.value !== undefined) {
      if (typeof named.value !== 'string') throw new TypeError(`fileOption "${fileOption}" must be a text option`);
      fromFile = readConfigurationFile(specs, fileOption, named.value, named.source);
    }
  }

  const options: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const layered = fromFlagsOrEnv(key);
    if (layered !== undefined) options[key] = layered.value;
    else if (fromFile.has(key)) options[key] = fromFile.get(key);
    else options[key] = spec.default;
  }
  return { options: Object.freeze(options) as OptionsOf<Specs>, positionals, help };
}

function parseArgv(
  specs: OptionSpecs,
  argv: readonly string[],
): { fromFlags: Map<string, unknown>; positionals: string[]; help: boolean } {
  const byFlag = new Map(Object.keys(specs).map((key) => [flagName(key), key]));
  const fromFlags = new Map<string, unknown>();
  const positionals: string[] = [];
  let help = false;

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (arg === '--') {
      positionals.push(...argv.slice(index + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    let flag = equals === -1 ? arg : arg.slice(0, equals);
    let negated = false;
    if (!byFlag.has(flag) && flag.startsWith('--no-') && byFlag.has('--' + flag.slice(5))) {
      flag = '--' + flag.slice(5);
      negated = true;
    }
    const key = byFlag.get(flag);
    if (key === undefined) {
      const known = [...byFlag.keys()].sort().join(', ');
      throw new OptionError(`unknown option ${flag}; known options: ${known}, --help`);
    }
    const spec = specs[key]!;
    let raw: string;
    if (spec.isSwitch) {
      if (equals !== -1) raw = arg.slice(equals + 1);
      else raw = negated ? 'false' : 'true';
    } else if (equals !== -1) {
      raw = arg.slice(equals + 1);
    } else {
      const next = argv[index + 1];
      if (next === undefined || next.startsWith('--'))
        throw new OptionError(`${flag} needs a value (${spec.placeholder})`);
      raw = next;
      index++;
    }
    const value: unknown = spec.parse(raw, flag);
    if (spec.repeatable) {
      const previous = (fromFlags.get(key) as unknown[] | undefined) ?? [];
      fromFlags.set(key, [...previous, ...(value as unknown[])]);
    } else {
      fromFlags.set(key, value);
    }
  }
  return { fromFlags, positionals, help };
}

/** Reads and checks the whole configuration file; returns the parsed value of each key in it. */
function readConfigurationFile(
  specs: OptionSpecs,
  fileOption: string,
  path: string,
  namedBy: string,
): Map<string, unknown> {
  let contents: string;
  try {
    contents = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? (error as Error).message);
    throw new OptionError(`cannot read configuration file ${path} (from ${namedBy}): ${reason}`, { cause: error });
  }
  let document: unknown;
  try {
    document = JSON.parse(contents.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new OptionError(`${path}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new OptionError(`${path}: must be a JSON object keyed by option name, got ${describeJson(document)}`);
  }

  const entries = Object.entries(document);
  const fileKeys = Object.keys(specs).filter((key) => key !== fileOption);
  if (entries.some(([key]) => key === fileOption)) {
    const where =
      specs[fileOption]!.env === false ? flagName(fileOption) : `${flagName(fileOption)} or ${envName(fileOption)}`;
    throw new OptionError(`${path}: "${fileOption}" cannot be set inside the configuration file; use ${where}`);
  }
  const unknown = entries.map(([key]) => key).filter((key) => !Object.hasOwn(specs, key));
  if (unknown.length > 0) {
    const keys = unknown.map((key) => `"${key}"`).join(', ');
    throw new OptionError(
      `${path}: unknown key${unknown.length > 1 ? 's' : ''} ${keys}; known keys: ${fileKeys.sort().join(', ')}`,
    );
  }

  const values = new Map<string, unknown>();
  for (const [key, value] of entries) {
    const spec = specs[key]!;
    const source = `${path}: "${key}"`;
    if (Array.isArray(value)) {
      if (!spec.repeatable) throw new OptionError(`${source} takes one value, not an array`);
      values.set(
        key,
        value.flatMap(
          (item: unknown, index) =>
            spec.parse(jsonScalarToRaw(item, `${source}[${index}]`), `${source}[${index}]`) as unknown[],
        ),
      );
    } else {
      values.set(key, spec.parse(jsonScalarToRaw(value, source), source));
    }
  }
  return values;
}

function jsonScalarToRaw(value: unknown, source: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new OptionError(`${source} must be a string, number or boolean, got ${describeJson(value)}`);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : JSON.stringify(value);
}

/** Help text listing each flag with its environment twin, unit and default. */
export function formatOptionsHelp(specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([key, spec]) => {
    const flag = spec.isSwitch ? flagName(key) : `${flagName(key)} ${spec.placeholder}`;
    const notes: string[] = [];
    if (spec.unit) notes.push(`unit: ${spec.unit}`);
    if (spec.repeatable) notes.push('repeatable');
    if (spec.default !== undefined && !(Array.isArray(spec.default) && spec.default.length === 0)) {
      notes.push(`default: ${String(spec.default)}`);
    }
    if (spec.env !== false) notes.push(`env: ${envName(key)}`);
    return `  ${flag}\n      ${spec.description}${notes.length ? ` [${notes.join('; ')}]` : ''}`;
  });
  return rows.join('\n');
}
