export { Foreman, startForeman, type ForemanOptions } from './foreman.ts';
