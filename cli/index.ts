#!/usr/bin/env node
// `mpg`: the one entry point.
import { mpgCommand } from './commands.js';

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
