/**
 * The layering of src/, checked on every `npm test` (npm run check:deps). A violation fails
 * the run and names the import. docs/architecture.md explains the layers.
 */
const notTest = '\\.test\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Modules must not import each other, directly or in a ring.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'protocol-is-a-leaf',
      severity: 'error',
      comment: 'protocol/ defines the language; it imports nothing else of ours, and nothing of Node: only zod. It runs in browser tabs too.',
      from: { path: '^src/protocol/', pathNot: notTest },
      to: { pathNot: ['^src/protocol/', '^node_modules/zod/'] },
    },
    {
      name: 'core-is-pure',
      severity: 'error',
      comment: 'core/ is pure logic: it imports only protocol/ and itself, no Node module, no package but croner (calendar arithmetic for cron ticks: no I/O, no dependencies).',
      from: { path: '^src/core/', pathNot: notTest },
      to: { pathNot: ['^src/(core|protocol)/', '^node_modules/croner/'] },
    },
    {
      name: 'worker-runtime-without-node',
      severity: 'error',
      comment: 'The worker runtime and the link run in a browser too: no node: module, no Node-only package (the join page serves these to browsers).',
      from: { path: '^src/(worker/runtime|worker/browser|link)/', pathNot: notTest },
      to: { pathNot: ['^src/(protocol|core|link|worker/runtime|worker/browser)/', '^node_modules/(zod|eventemitter3|@noble/hashes)/'] },
    },
    {
      name: 'tracing-on-the-api-only',
      severity: 'error',
      comment: 'tracing/ is the OpenTelemetry glue the sides share: it imports protocol/ and @opentelemetry/api, never an SDK (only the CLI installs one, src/host/tracing.ts).',
      from: { path: '^src/tracing/', pathNot: notTest },
      to: { pathNot: ['^src/(tracing|protocol)/', '^node_modules/(zod|@opentelemetry/api)/'] },
    },
    {
      name: 'store-below-foreman',
      severity: 'error',
      comment: 'The store knows protocol/ and core/, not the foreman, workers or clients.',
      from: { path: '^src/store/', pathNot: [notTest, '^src/store/conformance/'] },
      to: { path: '^src/(foreman|worker|client|link|cli|testing|host)/' },
    },
    {
      name: 'foreman-logic-without-transport',
      severity: 'error',
      comment: 'Sessions, dispatch, jobs and maintenance talk to peers, not to the WebSocket transport.',
      from: { path: '^src/foreman/(workers|dispatch|jobs|maintenance|shared)/', pathNot: notTest },
      to: { path: ['^src/foreman/ws/', '^node_modules/ws/'] },
    },
    {
      name: 'sides-apart',
      severity: 'error',
      comment: 'Foreman, worker and client meet only in protocol/: none imports another.',
      from: { path: '^src/(foreman|worker|client|link)/', pathNot: notTest },
      to: { path: '^src/(cli|testing)/' },
    },
    {
      name: 'foreman-not-worker-or-client',
      severity: 'error',
      from: { path: '^src/foreman/', pathNot: notTest },
      to: { path: '^src/(worker|client|link)/' },
    },
    {
      name: 'worker-and-client-not-foreman-or-store',
      severity: 'error',
      from: { path: '^src/(worker|client)/', pathNot: notTest },
      to: { path: '^src/(foreman|store)/' },
    },
    {
      name: 'no-tests-in-product',
      severity: 'error',
      comment: 'Product code does not import tests or the store conformance suite.',
      from: { path: '^src/', pathNot: [notTest, '^src/store/conformance/'] },
      to: { path: [notTest, '^src/store/conformance/'] },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports count as dependencies too.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['crowdcompute-source', 'import', 'types', 'default'], extensions: ['.ts', '.js', '.d.ts'] },
  },
};
