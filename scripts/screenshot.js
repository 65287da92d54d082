#!/usr/bin/env node
// Screenshot of the running demo (`npm start`) in a real browser: Debian's Chromium driven
// by playwright-core (no downloaded browser). Usage: node scripts/screenshot.js [URL] [OUT]
'use strict';
const path = require('node:path');
const { chromium } = require('playwright-core');

const url = process.argv[2] || `http://127.0.0.1:${process.env.PORT || 1880}/`;
const out = process.argv[3] || path.resolve(__dirname, '../docs/demo-flow.png');

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 760 } });
    await page.goto(url, { waitUntil: 'networkidle' });
    await page.waitForSelector('#red-ui-workspace-chart .red-ui-flow-node', { timeout: 30000 });
    // Let the nodes report their status (receipt index, verify counts, ledger status).
    await page.waitForTimeout(6000);
    await page.click('#red-ui-tab-debug-link-button').catch(() => undefined);
    await page.mouse.move(600, 700); // no tooltip in the picture
    await page.waitForTimeout(1000);
    await page.screenshot({ path: out });
    console.log(out);
  } finally {
    await browser.close();
  }
})().catch((err) => { console.error(err.message); process.exit(1); });
