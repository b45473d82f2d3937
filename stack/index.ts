// The whole stack on one machine: what `npm start` runs.
export { stackCommand, stackOptions } from './command.js';
