/**
 * Folders of src/ must not import each other in a ring either (npm run check:deps runs this
 * after the module rules). A ring of folders is how a "small interfaces" module goes missing:
 * the dispatcher importing a dashboard type while the dashboard's routes reach the dispatcher.
 * Contracts several folders share live in a folder each may import (src/foreman/shared/).
 * Tests are left out: they reach into test/support, which imports the product back.
 */
const modules = require('./.dependency-cruiser.cjs');

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment: 'Folders must not import each other, directly or in a ring: give what both sides need a home both may import.',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: { ...modules.options, exclude: { path: ['\\.test\\.ts$', '^test/', '^src/store/conformance/'] } },
};
