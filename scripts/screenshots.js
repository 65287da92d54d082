#!/usr/bin/env node
// `npm run screenshots`: regenerate docs/demo-flow.png and docs/sidebar.png in a real browser,
// with the browser tests' harness (test/browser/harness.ts: Debian's Chromium driven by
// playwright-core, never a downloaded browser). It starts the demo (`npm start`) on free ports
// in a temporary directory and pictures the demo flow; then the consortium demo (`npm run
// demo:consortium`) and pictures partner A's Ledger sidebar: its consensus strip with the two
// other partners' cosignatures, an audit, and an entry verified in the browser. Needs a build
// first (`npm run build` or `npm install`).
// Usage: node scripts/screenshots.js [OUT_DIR]   (default docs/)
'use strict';
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.resolve(process.argv[2] || path.join(root, 'docs'));

let harness;
let helpers;
try {
  harness = require(path.join(root, 'dist/test/browser/harness.js'));
  helpers = require(path.join(root, 'dist/test/helpers.js'));
} catch {
  console.error('screenshots: build first (npm run build): dist/test/browser/harness.js is missing');
  process.exit(1);
}
const { openEditor } = harness;
const { freeConsecutivePorts, freePort, spawnDemo, stopChild, tmpDir } = helpers;

async function waitForOutput(demo, re, ms) {
  const end = Date.now() + ms;
  while (!re.test(demo.output())) {
    if (demo.child.exitCode !== null) throw new Error(`the demo exited:\n${demo.output()}`);
    if (Date.now() > end) throw new Error(`the demo did not start:\n${demo.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The demo flow with its nodes' statuses, the debug sidebar open (docs/demo-flow.png). */
async function demoFlow(page, out) {
  await page.waitForSelector('#red-ui-workspace-chart .red-ui-flow-node', { timeout: 30000 });
  await page.waitForTimeout(6000);   // the nodes report their status (receipts, verify counts, ledger)
  await page.click('#red-ui-tab-debug-link-button').catch(() => undefined);
  await page.mouse.move(600, 700);   // no tooltip in the picture
  await page.waitForTimeout(1000);
  await page.screenshot({ path: out });
}

/** The Ledger sidebar, widened, after an audit and with the newest entry verified in the browser (docs/sidebar.png). */
async function sidebar(page, out) {
  await page.evaluate(() => window.RED.sidebar.show('bot-ledger'));
  const sep = await page.locator('#red-ui-sidebar-separator').boundingBox();
  if (sep) {
    await page.mouse.move(sep.x + sep.width / 2, sep.y + 200);
    await page.mouse.down();
    await page.mouse.move(sep.x - 200, sep.y + 200, { steps: 8 });
    await page.mouse.up();
  }
  await page.waitForSelector('.bot-ledger-section .bot-entry', { timeout: 30000 });
  // A few checkpoints confirmed by the partners' cosignatures.
  await page.waitForFunction(() => document.querySelectorAll('.bot-ledger-section .bot-cp-confirmed').length >= 6, undefined, { timeout: 60000 });
  await page.click('.bot-ledger-section .bot-verify-btn');
  await page.waitForSelector('.bot-ledger-section .bot-audit-result[data-state="done"]', { timeout: 30000 });
  await page.click('.bot-ledger-section .bot-entry >> nth=2');
  await page.waitForSelector('.bot-ledger-section .bot-entry-detail[data-verified]', { timeout: 30000 });
  await page.evaluate(() => {
    // Show the entry's checks, not the top of the long envelope.
    const pre = document.querySelector('.bot-ledger-section .bot-envelope');
    if (pre) pre.style.maxHeight = '90px';
    document.querySelector('.bot-ledger-section .bot-entries').style.maxHeight = '130px';
  });
  await page.mouse.move(300, 700);
  await page.waitForTimeout(500);
  await page.screenshot({ path: out });
}

/** Run a demo launcher in a temporary directory until fn is done with it. */
async function withDemo(script, env, ready, fn) {
  const t = tmpDir('bot-screenshots-');
  const demo = spawnDemo(script, { ...env, BOT_DEMO_DIR: t.dir });
  try {
    await waitForOutput(demo, ready, 90000);
    await fn();
  } finally {
    await stopChild(demo.child);
    t.cleanup();
  }
}

async function main() {
  const port = await freePort();
  await withDemo('start.js', { PORT: String(port), MQTT_PORT: String(await freePort()) }, /editor: http:/, async () => {
    const ed = await openEditor(`http://127.0.0.1:${port}`, { viewport: { width: 1400, height: 760 } });
    try {
      const out = path.join(outDir, 'demo-flow.png');
      await demoFlow(ed.page, out);
      console.log(out);
    } finally {
      await ed.close();
    }
  });
  const base = await freeConsecutivePorts(3);
  await withDemo('demo-consortium.js', { PORT: String(base), MQTT_PORT: String(await freePort()) }, /partner C: editor/, async () => {
    const ed = await openEditor(`http://127.0.0.1:${base}`, { viewport: { width: 1400, height: 1080 } });
    try {
      const out = path.join(outDir, 'sidebar.png');
      await sidebar(ed.page, out);
      console.log(out);
    } finally {
      await ed.close();
    }
  });
}

main().catch((err) => { console.error(`screenshots: ${err.message}`); process.exit(1); });
