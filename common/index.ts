export * from './options.js';
export * from './errors.js';
export * from './command.js';
export * from './shutdown.js';
export * from './child-process.js';
export * from './metric-buckets.js';
export * from './parent-watch.js';
