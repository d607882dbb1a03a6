/** Handlers for the benchmark worker: a no-op, and an echo for latency. */
export default {
  'bench.noop': () => null,
  'bench.echo': (task: { input: unknown }) => task.input,
};
