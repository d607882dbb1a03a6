export * from './states.ts';
export * from './errors.ts';
export * from './messages.ts';
export * from './parse.ts';
