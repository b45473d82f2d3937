// Running the docker CLI from the image tests (npm run test:docker): every call is a real call to
// the local engine; a failure carries docker's own output.
import { spawn } from 'node:child_process';

export const REPOSITORY_ROOT = new URL('../../../', import.meta.url).pathname;

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function docker(args: readonly string[], options: { input?: Buffer | string; allowFailure?: boolean } = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { cwd: REPOSITORY_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      if (result.code !== 0 && !options.allowFailure) reject(new Error(`docker ${args.join(' ')} exited ${result.code}:\n${stderr.slice(-4000)}${stdout.slice(-4000)}`));
      else resolve(result);
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Builds `dockerfile` from the repository root as `tag`; returns the image's size in bytes. */
export async function buildImage(dockerfile: string, tag: string, buildArgs: Record<string, string> = {}): Promise<number> {
  await docker(['build', '-f', dockerfile, '-t', tag, ...Object.entries(buildArgs).flatMap(([key, value]) => ['--build-arg', `${key}=${value}`]), '.']);
  const { stdout } = await docker(['image', 'inspect', '--format', '{{.Size}}', tag]);
  return Number(stdout.trim());
}
