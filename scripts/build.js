#!/usr/bin/env node
// Build: compile TypeScript to dist/ (CommonJS, as Node-RED loads nodes with require()),
// then copy the non-TypeScript assets each compiled node needs beside it.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
// `--keep` compiles over the existing dist/ (for parallel work: other processes may be
// running tests from it); a plain build starts from an empty dist/.
if (!process.argv.includes('--keep')) fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });

/** Copy every file under src whose extension is in exts into the same place under dist/. */
function copyAssets(src, exts) {
  const from = path.join(root, src);
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !exts.includes(path.extname(entry.name))) continue;
    const abs = path.join(entry.parentPath ?? entry.path, entry.name);
    const out = path.join(root, 'dist', path.relative(root, abs));
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.copyFileSync(abs, out);
  }
}
copyAssets('nodes', ['.html', '.json', '.svg']);
copyAssets('plugins', ['.html', '.json', '.svg', '.js', '.css']);
const cli = path.join(root, 'dist', 'bin', 'bot-ledger.js');
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
