// The shape every `mpg` subcommand has: a name, a one-line summary, and a run function that
// receives the remaining arguments and the environment and resolves to an exit code.
import type { OptionSpecs } from './options.js';
import { OptionError, formatOptionsHelp } from './options.js';

export interface CommandContext {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface Command {
  name: string;
  summary: string;
  /** An internal command (one command starts another with it): runs, but no help lists it. */
  hidden?: boolean;
  /** The options it takes, declared once: its help and docs/configuration.md are made from them. */
  options?: OptionSpecs;
  /** A group's commands. */
  subcommands?: readonly Command[];
  /** A lazy command's module, imported only when it runs (or its reference is generated). */
  load?(): Promise<Command>;
  run(context: CommandContext): Promise<number>;
}

/** Dispatches to one of several subcommands (`mpg model generate`, `mpg model fetch`). */
export function commandGroup(name: string, summary: string, commands: readonly Command[]): Command {
  const prefix = name === '' ? 'mpg' : `mpg ${name}`;
  const usage = () =>
    [
      `Usage: ${prefix} <command> [options]`,
      '',
      summary,
      '',
      'Commands:',
      ...commands
        .filter((command) => !command.hidden)
        .map((command) => `  ${command.name.padEnd(14)}${command.summary}`),
      '',
      `Run "${prefix} <command> --help" for the options of each.`,
    ].join('\n');
  return {
    name,
    summary,
    subcommands: commands,
    async run(context) {
      const [word, ...rest] = context.argv;
      if (word === undefined || word === '--help' || word === '-h' || word === 'help') {
        context.stdout.write(usage() + '\n');
        return word === undefined ? 2 : 0;
      }
      const command = commands.find((candidate) => candidate.name === word);
      if (!command) {
        context.stderr.write(`${prefix}: unknown command "${word}"\n\n${usage()}\n`);
        return 2;
      }
      return command.run({ ...context, argv: rest });
    },
  };
}

/**
 * A command whose module is imported only when it runs, so `mpg model fetch` does not pay for
 * loading onnxruntime, sharp and Fastify, and `mpg model-server` not for the downloader.
 */
export function lazyCommand(name: string, summary: string, load: () => Promise<Command>): Command {
  return {
    name,
    summary,
    load,
    async run(context) {
      return (await load()).run(context);
    },
  };
}

export interface OptionCommandSpec<Parsed> {
  /** The words after `mpg`, e.g. 'model generate'; the last one is the command's name. */
  path: string;
  summary: string;
  /** The option declarations it parses (several commands share one set, e.g. nitroEnclaveOptions). */
  options?: OptionSpecs;
  /** Internal: left out of its group's help. */
  hidden?: boolean;
  usage: () => string;
  /** Parses and checks the options once; throws OptionError (or a subclass) for the user's mistakes. */
  parse(argv: readonly string[], env: CommandContext['env']): Parsed | Promise<Parsed>;
  run(parsed: Parsed, context: CommandContext): Promise<number>;
}

/**
 * A command with options: `--help` prints the usage (exit 0), a bad option prints its message
 * and where to find help (exit 2), anything else runs.
 */
export function optionCommand<Parsed extends { help: boolean }>(spec: OptionCommandSpec<Parsed>): Command {
  return {
    name: spec.path.split(' ').at(-1)!,
    summary: spec.summary,
    ...(spec.options ? { options: spec.options } : {}),
    ...(spec.hidden ? { hidden: true } : {}),
    async run(context) {
      let parsed: Parsed;
      try {
        parsed = await spec.parse(context.argv, context.env);
      } catch (error) {
        if (!(error instanceof OptionError)) throw error;
        context.stderr.write(`mpg ${spec.path}: ${error.message}\nRun "mpg ${spec.path} --help" for the options.\n`);
        return 2;
      }
      if (parsed.help) {
        context.stdout.write(spec.usage() + '\n');
        return 0;
      }
      return spec.run(parsed, context);
    },
  };
}

/** A usage text: the given lines, then the options' help. */
export const usageWithOptions = (lines: readonly string[], specs: OptionSpecs) => (): string =>
  [...lines, '', 'Options:', formatOptionsHelp(specs)].join('\n');
