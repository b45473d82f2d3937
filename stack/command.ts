// `mpg stack` (what `npm start` runs): the whole mixed-privacy stack on this one machine — the
// gateway, a public model server and the enclave (emulated unless told otherwise), each in its own
// process as on an EC2 parent. Prints the URLs and a curl example per route; Ctrl-C or SIGTERM
// stops everything and leaves no process or socket behind.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { OptionError, choice, formatOptionsHelp, integer, optionCommand, parseCommandLine, stopChild, text } from '../common/index.js';
import type { EmulatedEnclave, NitroEnclave } from '../enclave/index.js';
import { EMULATION_WARNING, EnclaveConfigurationError, MPG_LAUNCHER, jsonLineLog, nitroEnclaveOptions, nitroEnclaveSettings, startEmulatedEnclave, startNitroEnclave } from '../enclave/index.js';
import { sampleImage } from '../loadtest/index.js';
import { emulatedImageMeasurements, writeMeasurementsFile } from '../attestation/index.js';
import { DEFAULT_MODEL_PATH, ensureModel } from '../model/index.js';

const STOP_GRACE_MS = 15_000;
// Both model servers queue up to this many images: 100 concurrent batch-2 requests (the study's
// heaviest load) queue rather than bounce off the default bound of 64 as 503s.
const STACK_MAX_QUEUE_IMAGES = 256;

export const stackOptions = {
  port: integer({ description: 'The gateway\'s port', default: 8080, min: 0, max: 65535 }),
  host: text({ description: 'The gateway\'s address', default: '127.0.0.1', placeholder: 'HOST' }),
  publicPort: integer({ description: 'The public model server\'s port (on 127.0.0.1)', default: 8081, min: 0, max: 65535 }),
  enclave: choice({ description: 'Where the secure route runs: "emulated" on this machine, or "nitro", a Nitro Enclave on this EC2 parent (see enclave/README.md)', choices: ['emulated', 'nitro'] as const, default: 'emulated' }),
  enclaveCpus: text({ description: 'emulated: CPUs for the enclave (taskset list); default: the upper half of this machine\'s CPUs', placeholder: 'LIST' }),
  attestationPcrs: text({ description: 'nitro: the EIF\'s measurements ("mpg enclave build --measurements"); the gateway attests the enclave against them', placeholder: 'FILE' }),
  ...nitroEnclaveOptions,
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

/** As a Nitro parent's allocator does, the enclave gets CPUs of its own: the upper half. */
function splitCpus(): { enclaveCpus: string; threadsEach: number } {
  const cores = availableParallelism();
  if (cores < 2) return { enclaveCpus: '0', threadsEach: 1 };
  const half = Math.floor(cores / 2);
  return { enclaveCpus: `${half}-${cores - 1}`, threadsEach: half };
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = pattern.exec(seen);
      if (match) resolve(match);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready`)));
  });
}

async function waitUntilReady(url: string, child: ChildProcess): Promise<void> {
  while (child.exitCode === null) {
    if (await fetch(url).then((response) => response.ok, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered: the process exited`);
}


export const stackCommand = optionCommand({
  path: 'stack',
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
    const runtime = await mkdtemp(join(tmpdir(), 'mpg-stack-'));
    const secureSocket = join(runtime, 'enclave.sock');
    const samplePath = join(runtime, 'sample.jpg');
    const measurementsFile = join(runtime, 'measurements.json');
    const cpus = splitCpus();
    // Children get explicit addresses; MPG_PORT and friends are for the gateway, which this
    // command passes on as flags, so they must not move the model servers too.
    const childEnv = { ...env, MPG_PORT: undefined, MPG_HOST: undefined, MPG_SOCKET: undefined, MPG_ENCLAVE: undefined };
    let publicServer: ChildProcess | undefined;
    let gateway: ChildProcess | undefined;
    let enclave: EmulatedEnclave | NitroEnclave | undefined;
    let stopping: Promise<void> | undefined;

    const stopAll = () =>
      (stopping ??= (async () => {
        await stopChild(gateway, STOP_GRACE_MS);
        await Promise.all([stopChild(publicServer, STOP_GRACE_MS), enclave?.stop()]);
        await rm(runtime, { recursive: true, force: true });
      })());

    let finish: (code: number) => void = () => {};
    const finished = new Promise<number>((resolve) => (finish = resolve));
    // Every signal is handled (not just the first): a second Ctrl-C while stopping must not kill
    // this process and orphan the enclave's process group.
    const onSignal = (signal: string) => {
      if (stopping) return;
      stdout.write(`\n${signal}: stopping the stack\n`);
      void stopAll().then(() => finish(0));
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    const onChildExit = (what: string) => (code: number | null) => {
      if (stopping) return;
      stderr.write(`mpg stack: the ${what} stopped unexpectedly (${code}); stopping the stack\n`);
      void stopAll().then(() => finish(1));
    };

    try {
      await writeFile(samplePath, await sampleImage());
      if (options.enclave === 'emulated') {
        // The emulated "enclave build": the PCRs of what the enclave will run (this project's code
        // and the model), computed here, outside it. The gateway pins them; the enclave's emulated
        // NSM measures what it actually runs.
        await ensureModel(DEFAULT_MODEL_PATH, (line) => stderr.write(`mpg stack: ${line}\n`));
        await writeMeasurementsFile(measurementsFile, emulatedImageMeasurements({ modelPath: DEFAULT_MODEL_PATH }));
      }
      publicServer = spawn(
        MPG_LAUNCHER,
        ['model-server', '--host', '127.0.0.1', '--port', String(options.publicPort), '--threads', String(cpus.threadsEach), '--max-queue', String(STACK_MAX_QUEUE_IMAGES), '--log-level', 'warn'],
        { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const publicListening = waitForLine(publicServer, /listening on (http:\/\/\S+)/, 'public model server');
      // Observed at once: if the enclave fails first, stopping the public server must not crash us.
      publicListening.catch(() => {});
      enclave =
        options.enclave === 'nitro'
          ? await startNitroEnclave({ ...nitroEnclaveSettings(options, secureSocket, childEnv), log })
          : await startEmulatedEnclave({
              socketPath: secureSocket,
              cpus: options.enclaveCpus ?? cpus.enclaveCpus,
              modelServerArgs: ['--threads', String(cpus.threadsEach), '--max-queue', String(STACK_MAX_QUEUE_IMAGES), '--log-level', 'warn'],
              env: childEnv,
              log,
              output: { stdout: stderr, stderr },
            });
      const [, publicUrl = ''] = await publicListening;
      publicServer.once('exit', onChildExit('public model server'));
      void (enclave.exited as Promise<unknown>).then((code) => onChildExit('enclave')(typeof code === 'number' ? code : null));
      await Promise.all([waitUntilReady(`${publicUrl}/readyz`, publicServer), enclave.ready]);

      gateway = spawn(
        MPG_LAUNCHER,
        [
          'gateway', '--host', options.host, '--port', String(options.port), '--public-upstream', publicUrl, '--secure-upstream', `unix:${secureSocket}`, '--log-level', 'warn',
          ...(enclave.mode === 'nitro'
            ? ['--attestation-pcrs', options.attestationPcrs!]
            : ['--attestation-pcrs', measurementsFile, '--insecure-trust-emulated-nsm-root', enclave.nsmRootFile]),
        ],
        { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const [, gatewayUrl = ''] = await waitForLine(gateway, /gateway listening on (http:\/\/\S+)/, 'gateway');
      gateway.once('exit', onChildExit('gateway'));
      await waitUntilReady(`${gatewayUrl}/readyz`, gateway);

      const enclaveLines =
        enclave.mode === 'nitro'
          ? [
              `  enclave          unix:${secureSocket}   Nitro enclave ${enclave.started.EnclaveID}, CID ${enclave.started.EnclaveCID}, ${enclave.started.NumberOfCPUs} vCPUs, ${enclave.started.MemoryMiB} MiB`,
              `  attestation      verified against ${options.attestationPcrs} and the AWS Nitro root before any secure request`,
            ]
          : [
              `  enclave          unix:${secureSocket}   network: ${enclave.isolation.network === 'namespace' ? 'own namespace, no network' : `NOT isolated (${enclave.isolation.reason ?? 'unknown'})`}` +
                `${enclave.isolation.cpus ? `, CPUs ${enclave.isolation.cpus}` : ''}`,
              `  attestation      emulated NSM, PCRs pinned in ${measurementsFile}; its throwaway root trusted INSECURELY`,
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
    } catch (error) {
      stderr.write(`mpg stack: ${(error as Error).message}\n`);
      await stopAll();
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      return error instanceof EnclaveConfigurationError ? 2 : 1;
    }
    const code = await finished;
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    return code;
  },
});
