#!/usr/bin/env node
// `mpg`: the one entry point. Each component contributes its commands through its index.
import type { Command } from '../common/index.js';
import { commandGroup } from '../common/index.js';
import { modelServerCommand } from '../model-server/index.js';
import { modelCommand } from '../model/index.js';

const mpg = commandGroup('', 'mixed-privacy-gateway: one model, a public and an enclave route.', [
  modelServerCommand,
  modelCommand,
] satisfies Command[]);

const code = await mpg.run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
process.exitCode = code;
