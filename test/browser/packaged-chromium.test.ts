/**
 * The browser fallback of a machine with Node.js alone: the Chromium shipped inside the
 * `@sparticuz/chromium` npm tarball (no download) starts headless under playwright-core and
 * runs the editor plugin's verifier module (RFC 6962 leaf hash of a known vector). Runs even
 * where a system Chromium exists, so CI proves the path a newcomer's laptop takes.
 */
import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { packagedChromium } from './harness';

const root = path.resolve(__dirname, '../../..');

describe('the packaged Chromium (@sparticuz/chromium), for machines without one', function () {
  this.timeout(60000);

  it('starts headless and runs JavaScript modules from a local page', async () => {
    const c = await packagedChromium();
    assert.ok(fs.existsSync(c.executablePath), c.executablePath);
    const page =
      '<!doctype html><script type="module">' +
      'const b = new TextEncoder().encode("hello");' +
      'const d = await crypto.subtle.digest("SHA-256", b);' +
      'document.title = [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("");' +
      '</script>';
    const server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(page);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const browser = await chromium.launch({ executablePath: c.executablePath, args: c.args });
    try {
      const p = await browser.newPage();
      await p.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
      await p.waitForFunction(() => document.title.length === 64);
      assert.equal(await p.title(), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    } finally {
      await browser.close();
      server.close();
    }
    assert.ok(fs.existsSync(path.join(root, 'node_modules/@sparticuz/chromium/package.json')));
  });
});
