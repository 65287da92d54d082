// Mocha settings. The whole suite by default (`npm test`); a file given on the command line
// (`npx mocha dist/test/ledger.test.js`) runs alone instead of being added to the suite.
'use strict';
const named = process.argv.slice(2).some((a) => /\.test\.js$/.test(a));
module.exports = {
  ...(named ? {} : { spec: ['dist/test/**/*.test.js'] }),
  timeout: 30000,
  recursive: true,
};
