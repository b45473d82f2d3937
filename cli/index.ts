#!/usr/bin/env node
// `mpg`: the one entry point.
import { EXIT_WITH_PARENT_VARIABLE, exitWithParent } from '../common/index.js';
import { mpgCommand } from './commands.js';

// A child of `mpg stack` (or of the enclave's entrypoint) stops when its parent dies, however it dies.
exitWithParent(process.env, {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  terminate: () => process.kill(process.pid, 'SIGTERM'),
  exit: (code) => process.exit(code),
});
// The request is for this process only: a process it starts has another stdin, and its own
// parent sets the variable again if it holds that stdin's pipe.
delete process.env[EXIT_WITH_PARENT_VARIABLE];

const code = await mpgCommand.run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
process.exitCode = code;
// A command has finished: whatever handle is still open (a socket a client keeps alive past a
// shutdown's grace period) must not keep the process alive, but output gets a moment to flush.
setTimeout(() => process.exit(code), 1000).unref();
