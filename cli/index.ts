#!/usr/bin/env node
// `mpg`: the one entry point. Each component contributes its commands through its index, loaded
// only when its command runs.
import { commandGroup, lazyCommand } from '../common/index.js';

const mpg = commandGroup('', 'mixed-privacy-gateway: one model, a public and an enclave route.', [
  lazyCommand('model-server', 'Serve the image classifier over HTTP (the public container and the enclave run this)', async () =>
    (await import('../model-server/index.js')).modelServerCommand,
  ),
  lazyCommand('model', 'Create or fetch the ONNX model the model server loads', async () => (await import('../model/index.js')).modelCommand),
]);

process.exitCode = await mpg.run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
