// The whole stack on one machine: what `npm start` runs, and the launcher the load-test harness shares.
export { stackCommand, stackOptions } from './command.js';
export {
  childEnvironment,
  launchStack,
  splitCpus,
  startEnclave,
  startGateway,
  startPublicServer,
  STACK_MAX_QUEUE_IMAGES,
} from './launch.js';
export type { EnclaveSettings, LaunchedStack, LaunchOptions, StackEnclave, StackPart, StackProcess } from './launch.js';
