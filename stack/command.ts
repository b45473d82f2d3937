// `mpg stack` (what `npm start` runs): the whole mixed-privacy stack on this one machine — the
// gateway, a public model server and the enclave (emulated unless told otherwise), each in its own
// process as on an EC2 parent. Prints the URLs and a curl example per route, then every part's log
// lines, prefixed by part; restarts a part that dies (supervisor.ts); Ctrl-C or SIGTERM stops
// everything and leaves no process or socket behind, and so does SIGKILL, as far as it can: the
// children stop by themselves and the next start removes the runtime directory (stack/README.md).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  OptionError,
  choice,
  formatOptionsHelp,
  integer,
  optionCommand,
  parseCommandLine,
  text,
} from '../common/index.js';
import {
  EMULATION_WARNING,
  EnclaveConfigurationError,
  attestationPcrsOption,
  nitroEnclaveOptions,
  nitroEnclaveSettings,
} from '../enclave/index.js';
import { jsonLineLog, sampleImage } from '../common/index.js';
import type { LaunchedStack } from './launch.js';
import { LOG_LEVELS, childEnvironment, launchStack, splitCpus } from './launch.js';
import type { PartName } from './part-output.js';
import { LOG_FORMATS, partOutput } from './part-output.js';
import { PortBusyError, checkPortsFree } from './port-check.js';
import { removeStaleRuntimeDirs } from './runtime-dir.js';
import type { SupervisionEvent } from './supervisor.js';

export const stackOptions = {
  port: integer({ description: "The gateway's port", default: 8080, min: 0, max: 65535 }),
  host: text({ description: "The gateway's address", default: '127.0.0.1', placeholder: 'HOST' }),
  publicPort: integer({
    description: "The public model server's port (on 127.0.0.1)",
    default: 8081,
    min: 0,
    max: 65535,
  }),
  enclave: choice({
    description:
      'Where the secure route runs: "emulated" on this machine, or "nitro", a Nitro Enclave on this EC2 parent (see enclave/README.md)',
    choices: ['emulated', 'nitro'] as const,
    default: 'emulated',
  }),
  enclaveCpus: text({
    description: "emulated: CPUs for the enclave (taskset list); default: the upper half of this machine's CPUs",
    placeholder: 'LIST',
  }),
  logLevel: choice({
    description: 'The log level of every part (gateway, model servers, enclave)',
    choices: LOG_LEVELS,
    default: 'info',
  }),
  logFormat: choice({
    description:
      'Part log lines: "pretty", one compact line each behind the part\'s name; "json", pino\'s JSON with a "part" field',
    choices: LOG_FORMATS,
    default: 'pretty',
  }),
  ...nitroEnclaveOptions,
  ...attestationPcrsOption,
};

const usage = () =>
  [
    'Usage: mpg stack [options]',
    '',
    'Runs the gateway, a public model server and an emulated enclave on this machine. With',
    '--enclave nitro on an EC2 parent, the secure route goes to a Nitro Enclave started from --eif',
    '(the "nitro:" options below) through the parent relay. Each part\'s log lines go to stderr,',
    'prefixed by part; a part that dies is restarted with backoff (see stack/README.md).',
    '',
    'Options:',
    formatOptionsHelp(stackOptions),
  ].join('\n');

export const stackCommand = optionCommand({
  path: 'stack',
  options: stackOptions,
  summary: 'Run the whole stack on this machine: gateway, public model server, emulated enclave',
  usage,
  parse: (argv, env) => {
    const { options, help } = parseCommandLine(stackOptions, argv, env);
    if (!help && options.enclave === 'nitro') {
      if (options.enclaveCpus !== undefined)
        throw new OptionError(
          "--enclave-cpus is for the emulated enclave; a Nitro enclave takes --cpu-count from the allocator's pool",
        );
      nitroEnclaveSettings(options, '/checked-at-parse', env); // the required flags, before anything starts
      if (!options.attestationPcrs)
        throw new OptionError(
          '--attestation-pcrs is required with the nitro enclave: the measurements "mpg enclave build" wrote, which the gateway attests it against',
        );
    }
    return { options, help };
  },
  async run({ options }, { stdout, stderr, env }) {
    const format = options.logFormat;
    const log = jsonLineLog(partOutput('stack', stderr, format), { component: 'stack' });
    // Separate line splitters per stream: lines of two streams never mix, each arrives whole.
    const output = (part: PartName) => ({
      stdout: partOutput(part, stderr, format),
      stderr: partOutput(part, stderr, format),
    });
    try {
      // Before anything starts: a busy port found after the models have loaded would be a stack trace.
      await checkPortsFree([
        { option: 'port', owner: 'the gateway', host: options.host, port: options.port },
        { option: 'publicPort', owner: 'the public model server', host: '127.0.0.1', port: options.publicPort },
      ]);
    } catch (error) {
      if (!(error instanceof PortBusyError)) throw error;
      stderr.write(`mpg stack: ${error.message}\n`);
      return 2;
    }
    // Only once the stack will start: a refused start touches nothing on the machine.
    for (const dir of await removeStaleRuntimeDirs())
      log.warn({ dir }, 'removed the runtime directory of a stack that died without stopping (its socket and files)');
    const cpus = splitCpus();
    const childEnv = childEnvironment(env);
    const starting = new AbortController();
    let stack: LaunchedStack | undefined;
    let stopping: Promise<void> | undefined;
    const stopAll = () => (stopping ??= stack ? stack.stop() : Promise.resolve());

    let finish: (code: number) => void = () => {};
    const finished = new Promise<number>((resolve) => (finish = resolve));
    // Every signal is handled (not just the first): a second Ctrl-C while stopping must not kill
    // this process and orphan the enclave's process group.
    let signalled = false;
    const onSignal = (signal: string) => {
      if (signalled || stopping) return;
      signalled = true;
      stdout.write(`\n${signal}: stopping the stack\n`);
      starting.abort();
      if (stack) void stopAll().then(() => finish(0));
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);

    try {
      stack = await launchStack({
        host: options.host,
        port: options.port,
        publicPort: options.publicPort,
        threads: cpus.threadsEach,
        enclave:
          options.enclave === 'nitro'
            ? {
                mode: 'nitro',
                nitro: nitroEnclaveSettings(options, '/set-by-the-launcher', childEnv),
                attestationPcrs: options.attestationPcrs,
              }
            : { mode: 'emulated', cpus: options.enclaveCpus ?? cpus.enclaveCpus, threads: cpus.threadsEach },
        env: childEnv,
        log,
        logLevel: options.logLevel,
        output,
        signal: starting.signal,
        supervise: { report: (event) => reportSupervision(log, event) },
      });
    } catch (error) {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      if (signalled) return 0;
      stderr.write(`mpg stack: ${(error as Error).message}\n`);
      return error instanceof EnclaveConfigurationError ? 2 : 1;
    }
    const { gatewayUrl, publicUrl, secureSocket, enclave } = stack;
    const samplePath = join(stack.runtimeDir, 'sample.jpg');
    await writeFile(samplePath, await sampleImage());

    const enclaveLines =
      enclave.mode === 'nitro'
        ? [
            `  enclave          unix:${secureSocket}   Nitro enclave ${enclave.started.EnclaveID}, CID ${enclave.started.EnclaveCID}, ${enclave.started.NumberOfCPUs} vCPUs, ${enclave.started.MemoryMiB} MiB`,
            `  attestation      verified against ${stack.measurementsFile} and the AWS Nitro root before any secure request`,
          ]
        : [
            `  enclave          unix:${secureSocket}   network: ${enclave.isolation.network === 'namespace' ? 'own namespace, no network' : `NOT isolated (${enclave.isolation.reason ?? 'unknown'})`}` +
              `${enclave.isolation.cpus ? `, CPUs ${enclave.isolation.cpus}` : ''}`,
            `  attestation      emulated NSM, PCRs pinned in ${stack.measurementsFile}; its throwaway root trusted INSECURELY`,
            `  ${EMULATION_WARNING}`,
          ];
    stdout.write(
      [
        '',
        `mixed-privacy stack ready (enclave: ${options.enclave})`,
        `  gateway          ${gatewayUrl}   (metrics: ${gatewayUrl}/metrics)`,
        `  public server    ${publicUrl}`,
        ...enclaveLines,
        '',
        'Secure route, end to end: the client verifies the enclave and encrypts to it (the gateway sees ciphertext):',
        `  bin/mpg client predict --gateway ${gatewayUrl} --pcrs ${stack.measurementsFile}` +
          (enclave.mode === 'nitro'
            ? ''
            : ` --insecure-trust-emulated-nsm-root ${join(stack.runtimeDir, 'nsm-root.pem')}`) +
          ` ${samplePath}`,
        `  or open ${gatewayUrl}/ in a browser on this machine`,
        'Public route:',
        `  curl -s --data-binary @${samplePath} -H 'content-type: image/jpeg' ${gatewayUrl}/predict-public`,
        "Secure route in plaintext (the seed study's clients; the parent can read it):",
        `  curl -s --data-binary @${samplePath} -H 'content-type: image/jpeg' ${gatewayUrl}/predict-secure`,
        '',
        'A part that dies is restarted; log lines follow, prefixed by part. Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
    if (signalled) void stopAll().then(() => finish(0));
    const code = await finished;
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    return code;
  },
});

/** Deaths are warnings, restarts information; a part in a crash loop is an error on every death. */
function reportSupervision(log: ReturnType<typeof jsonLineLog>, event: SupervisionEvent): void {
  if (event.event === 'restarted') {
    log.info({ part: event.part, pid: event.pid, downForMs: event.downForMs }, `the ${event.part} is back`);
    return;
  }
  const { part, deathsInARow, restartInMs, crashLoop } = event;
  const what =
    event.event === 'died'
      ? `the ${part} died (${event.code})`
      : `the ${part} could not be restarted (${event.error.message})`;
  const fields = {
    part,
    deathsInARow,
    restartInMs,
    ...(event.event === 'died' ? { code: event.code } : { err: event.error }),
  };
  if (crashLoop)
    log.error(
      fields,
      `${what}: it keeps dying (${deathsInARow} times in a row); retrying every ${Math.round(restartInMs / 1000)} s. Its own log lines above say why`,
    );
  else log.warn(fields, `${what}; restarting in ${restartInMs} ms`);
}
