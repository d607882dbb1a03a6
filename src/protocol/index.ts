/**
 * The language foreman, workers and clients speak: states, error codes, WebSocket messages,
 * framing and REST shapes. It imports nothing else of CrowdCompute's.
 * @packageDocumentation
 */
export * from './states.ts';
export * from './errors.ts';
export * from './messages.ts';
export * from './parse.ts';
export * from './framing.ts';
export * from './json-limits.ts';
export * from './case-keys.ts';
export * from './rest.ts';
export * from './auth.ts';
export * from './limits.ts';
export * from './time-fields.ts';
export * from './schedules.ts';
export * from './webhooks.ts';
export * from './trace-context.ts';
export * from './failed-tasks.ts';
