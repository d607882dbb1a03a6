/**
 * The foreman: `startForeman(options)` or `new Foreman(options).start()`.
 * @packageDocumentation
 */
export { Foreman, startForeman } from './foreman.ts';
export { FOREMAN_BOUNDS, FOREMAN_DEFAULTS, type ForemanOptions } from './foreman-options.ts';
