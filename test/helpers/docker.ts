// Running the docker CLI (and Compose) from the image tests (npm run test:docker): every call is a
// real call to the local engine; a failure carries docker's own output.
import { spawn } from 'node:child_process';

export const REPOSITORY_ROOT = new URL('../../../', import.meta.url).pathname;

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function docker(
  args: readonly string[],
  options: { input?: Buffer | string; allowFailure?: boolean } = {},
): Promise<DockerResult> {
  return run('docker', args, options);
}

function run(
  command: string,
  args: readonly string[],
  options: { input?: Buffer | string; allowFailure?: boolean | undefined; env?: NodeJS.ProcessEnv },
): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: REPOSITORY_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      if (result.code !== 0 && !options.allowFailure)
        reject(
          new Error(
            `${command} ${args.join(' ')} exited ${result.code}:\n${stderr.slice(-4000)}${stdout.slice(-4000)}`,
          ),
        );
      else resolve(result);
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface BuildOptions {
  /** A named stage of the Dockerfile (docker build --target). */
  target?: string;
  /** The build's network (docker build --network), e.g. "host" to reach a server the test runs. */
  network?: string;
}

/** The docker build arguments for `dockerfile` from the repository root, tagged `tag`. */
export function buildArguments(
  dockerfile: string,
  tag: string,
  buildArgs: Record<string, string> = {},
  options: BuildOptions = {},
): string[] {
  return [
    'build',
    // The classic builder keeps the container of a failed step unless told not to.
    '--force-rm',
    '-f',
    dockerfile,
    '-t',
    tag,
    ...(options.target ? ['--target', options.target] : []),
    ...(options.network ? ['--network', options.network] : []),
    ...Object.entries(buildArgs).flatMap(([key, value]) => ['--build-arg', `${key}=${value}`]),
    '.',
  ];
}

/** Builds `dockerfile` from the repository root as `tag`; returns the image's size in bytes. */
export async function buildImage(
  dockerfile: string,
  tag: string,
  buildArgs: Record<string, string> = {},
  options: BuildOptions = {},
): Promise<number> {
  await docker(buildArguments(dockerfile, tag, buildArgs, options));
  return imageSize(tag);
}

export async function imageSize(tag: string): Promise<number> {
  const { stdout } = await docker(['image', 'inspect', '--format', '{{.Size}}', tag]);
  return Number(stdout.trim());
}

/** The images docker/Dockerfile builds, as the tests tag them. */
export const PROJECT_IMAGES = {
  'model-server': 'mpg-model-server:test',
  gateway: 'mpg-gateway:test',
  enclave: 'mpg-enclave:test',
} as const;

/** Builds one target of docker/Dockerfile under its test tag; returns the image's size in bytes. */
export function buildProjectImage(target: keyof typeof PROJECT_IMAGES): Promise<number> {
  return buildImage('docker/Dockerfile', PROJECT_IMAGES[target], {}, { target });
}

export function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

let composeCommand: Promise<string[]> | undefined;

/**
 * The Compose command this machine has: the v2 plugin ("docker compose") when it answers, else v1
 * ("docker-compose", which scripts/docker-engine.sh installs when neither is there).
 */
function findCompose(): Promise<string[]> {
  composeCommand ??= new Promise((resolve) => {
    const child = spawn('docker', ['compose', 'version'], { stdio: 'ignore' });
    child.once('error', () => resolve(['docker-compose']));
    child.once('close', (code) => resolve(code === 0 ? ['docker', 'compose'] : ['docker-compose']));
  });
  return composeCommand;
}

/**
 * Runs Compose with docker/compose.yaml (then `options.files`, paths from the repository root) as
 * project `project`, with `env` added to the environment.
 */
export async function compose(
  project: string,
  args: readonly string[],
  env: Record<string, string>,
  options: { allowFailure?: boolean; files?: readonly string[] } = {},
): Promise<DockerResult> {
  const [command, ...prefix] = await findCompose();
  const files = ['docker/compose.yaml', ...(options.files ?? [])].flatMap((file) => ['-f', file]);
  return run(command!, [...prefix, ...files, '-p', project, ...args], {
    env: { ...process.env, ...env },
    allowFailure: options.allowFailure,
  });
}
