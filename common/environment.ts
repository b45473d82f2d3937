// What a result was measured on, recorded beside every figure so two runs can be compared.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus, release, totalmem, type } from 'node:os';

export interface Environment {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  onnxruntime: string;
  gitCommit: string | undefined;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}

/** onnxruntime-node's version, read from its package.json: loading the runtime itself takes a second. */
function onnxruntimeVersion(): string {
  try {
    const manifest: unknown = createRequire(import.meta.url)('onnxruntime-node/package.json');
    const version =
      typeof manifest === 'object' && manifest !== null && 'version' in manifest ? manifest.version : undefined;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeEnvironment(): Environment {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${type()} ${release()}`,
    node: process.versions.node,
    onnxruntime: onnxruntimeVersion(),
    gitCommit: gitCommit(),
  };
}
