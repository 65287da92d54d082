/**
 * The Ledger sidebar's devices (issue 14 part 1) in a real browser against a real Node-RED 4
 * runtime: the devices a bot-device enrolled are listed with state, key, topics, last seq, last
 * seen and rate; a device that never sent is flagged silent; a revocation shows live over comms.
 * The flow is test/device-sidebar-flow.ts (shared with test/integration/device-sidebar.test.ts).
 */
import { strict as assert } from 'node:assert';
import { startDevicesRed } from '../device-sidebar-flow';
import { type EditorSession, openEditor, type RedRuntime } from './harness';

describe('Ledger sidebar: devices (browser)', function () {
  this.timeout(90000);
  let red: RedRuntime | undefined;
  let ed: EditorSession | undefined;
  after(async () => {
    await ed?.close();
    await red?.stop();
  });

  it('lists the devices with their state and activity, flags the silent one, and shows a revocation live', async () => {
    // Enrolled and read through the devices route first: no reading reaches bot-verify before its device is enrolled.
    const d = await startDevicesRed('example.com/browser-devices', { location: 'hall 3' });
    red = d.red;
    const { s1, s2, click } = d;
    await d.enrolAndRead();
    ed = await openEditor(red.url);
    const page = ed.page;
    await page.evaluate(() => (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show('bot-ledger'));
    const sel = '.bot-ledger-section[data-id="led"] .bot-device';
    await page.waitForFunction((s) => document.querySelectorAll(s).length === 2, sel, { timeout: 15000 });
    await page.waitForFunction((s) => document.querySelector(s)?.textContent === '2', `${sel}[data-id="${s1.did}"] .bot-device-seq`, { timeout: 15000 });
    const one = page.locator(`${sel}[data-id="${s1.did}"]`);
    const two = page.locator(`${sel}[data-id="${s2.did}"]`);
    assert.equal(await one.getAttribute('data-status'), 'active');
    assert.equal(await one.getAttribute('data-silent'), 'false');
    assert.match(await one.innerText(), /sensor 1 · hall 3/);
    assert.match(await one.innerText(), /plant\/1\/#/);
    assert.equal(await one.locator('.bot-device-key').getAttribute('title'), s1.did);
    assert.match((await one.locator('.bot-device-seen').innerText()) ?? '', /ago \(#\d+\)/);
    assert.equal(await two.getAttribute('data-silent'), 'true');
    assert.match(await two.innerText(), /silent/);
    assert.equal(await two.locator('.bot-device-seen').innerText(), 'never');
    await click('rv');
    await page.waitForFunction((s) => document.querySelector(s)?.getAttribute('data-status') === 'revoked', `${sel}[data-id="${s1.did}"]`, { timeout: 15000 });
    assert.match(await one.locator('.bot-device-state').innerText(), /^revoked \(#\d+\)$/);
    assert.deepEqual(ed.errors, []);
  });
});
