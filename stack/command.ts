// `mpg stack` (what `npm start` runs): the whole mixed-privacy stack on this one machine — the
// gateway, a public model server and the enclave (emulated unless told otherwise), each in its own
// process as on an EC2 parent. Prints the URLs and a curl example per route; Ctrl-C or SIGTERM
// stops everything and leaves no process or socket behind.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OptionError, choice, formatOptionsHelp, integer, optionCommand, parseCommandLine, text } from '../common/index.js';
import { EMULATION_WARNING, EnclaveConfigurationError, attestationPcrsOption, nitroEnclaveOptions, nitroEnclaveSettings } from '../enclave/index.js';
import { jsonLineLog, sampleImage } from '../common/index.js';
import type { LaunchedStack } from './launch.js';
import { childEnvironment, launchStack, splitCpus } from './launch.js';

export const stackOptions = {
  port: integer({ description: 'The gateway\'s port', default: 8080, min: 0, max: 65535 }),
  host: text({ description: 'The gateway\'s address', default: '127.0.0.1', placeholder: 'HOST' }),
  publicPort: integer({ description: 'The public model server\'s port (on 127.0.0.1)', default: 8081, min: 0, max: 65535 }),
  enclave: choice({ description: 'Where the secure route runs: "emulated" on this machine, or "nitro", a Nitro Enclave on this EC2 parent (see enclave/README.md)', choices: ['emulated', 'nitro'] as const, default: 'emulated' }),
  enclaveCpus: text({ description: 'emulated: CPUs for the enclave (taskset list); default: the upper half of this machine\'s CPUs', placeholder: 'LIST' }),
  ...nitroEnclaveOptions,
  ...attestationPcrsOption,
};

const usage = () =>
  [
    'Usage: mpg stack [options]',
    '',
    'Runs the gateway, a public model server and an emulated enclave on this machine. With',
    '--enclave nitro on an EC2 parent, the secure route goes to a Nitro Enclave started from --eif',
    '(the "nitro:" options below) through the parent relay.',
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
      if (options.enclaveCpus !== undefined) throw new OptionError('--enclave-cpus is for the emulated enclave; a Nitro enclave takes --cpu-count from the allocator\'s pool');
      nitroEnclaveSettings(options, '/checked-at-parse', env); // the required flags, before anything starts
      if (!options.attestationPcrs) throw new OptionError('--attestation-pcrs is required with the nitro enclave: the measurements "mpg enclave build" wrote, which the gateway attests it against');
    }
    return { options, help };
  },
  async run({ options }, { stdout, stderr, env }) {
    const log = jsonLineLog(stderr, { component: 'stack' });
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
            ? { mode: 'nitro', nitro: nitroEnclaveSettings(options, '/set-by-the-launcher', childEnv), attestationPcrs: options.attestationPcrs }
            : { mode: 'emulated', cpus: options.enclaveCpus ?? cpus.enclaveCpus, threads: cpus.threadsEach },
        env: childEnv,
        log,
        enclaveOutput: { stdout: stderr, stderr },
        signal: starting.signal,
      });
    } catch (error) {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      if (signalled) return 0;
      stderr.write(`mpg stack: ${(error as Error).message}\n`);
      return error instanceof EnclaveConfigurationError ? 2 : 1;
    }
    const { gatewayUrl, publicUrl, secureSocket, enclave } = stack;
    void stack.unexpectedExit.then(({ part, code }) => {
      if (stopping) return;
      stderr.write(`mpg stack: the ${part} stopped unexpectedly (${typeof code === 'number' ? code : null}); stopping the stack\n`);
      void stopAll().then(() => finish(1));
    });
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
        'Try:',
        `  curl -s --data-binary @${samplePath} -H 'content-type: image/jpeg' ${gatewayUrl}/predict-public`,
        `  curl -s --data-binary @${samplePath} -H 'content-type: image/jpeg' ${gatewayUrl}/predict-secure`,
        '',
        'Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
    if (signalled) void stopAll().then(() => finish(0));
    const code = await finished;
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    return code;
  },
});
