/**
 * The Ledger sidebar's devices (issue 14 part 1) in a real browser against a real Node-RED 4
 * runtime: the devices a bot-device enrolled are listed with state, key, topics, last seq, last
 * seen and rate; a device that never sent is flagged silent; a revocation shows live over comms.
 */
import { strict as assert } from 'node:assert';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { type EditorSession, openEditor, type RedRuntime, startRed } from './harness';

describe('Ledger sidebar: devices (browser)', function () {
  this.timeout(90000);
  let red: RedRuntime | undefined;
  let ed: EditorSession | undefined;
  after(async () => {
    await ed?.close();
    await red?.stop();
  });

  it('lists the devices with their state and activity, flags the silent one, and shows a revocation live', async () => {
    const s1 = Identity.generate();
    const s2 = Identity.generate();
    const ts = Date.now();
    const readings = [0, 1, 2].map((seq) => signEnvelope(s1, { kind: 'reading', seq, ts: ts + seq, topic: 'plant/1/t', payload: seq }).toJSON());
    const inj = (id: string, payload: unknown, wire: string): object => ({
      id,
      type: 'inject',
      z: 'tab',
      props: [{ p: 'payload' }],
      repeat: '',
      once: false,
      payload: JSON.stringify(payload),
      payloadType: 'json',
      wires: [[wire]],
    });
    red = await startRed({
      flows: [
        { id: 'tab', type: 'tab', label: 'devices' },
        { id: 'op', type: 'bot-identity', name: 'operator' },
        { id: 'led', type: 'bot-ledger', name: 'plant', origin: 'example.com/browser-devices', identity: 'op', dir: '', checkpointMs: 0, checkpointEntries: 0 },
        inj('e1', { op: 'enrol', device: s1.did, name: 'sensor 1', topics: ['plant/1/#'], meta: { location: 'hall 3' } }, 'dev'),
        inj('e2', { op: 'enrol', device: s2.did, name: 'sensor 2', topics: ['plant/2/#'] }, 'dev'),
        inj('rv', { op: 'revoke', device: s1.did }, 'dev'),
        ...readings.map((r, i) => inj(`r${i}`, r, 'ver')),
        { id: 'dev', type: 'bot-device', z: 'tab', ledger: 'led', topics: '', validDays: '', wires: [[]] },
        { id: 'ver', type: 'bot-verify', z: 'tab', trusted: '', ledger: '', devices: 'led', maxSkewMs: 0, wires: [['app'], []] },
        { id: 'app', type: 'bot-append', z: 'tab', ledger: 'led', wires: [[]] },
      ],
    });
    const url = red.url;
    const click = async (id: string): Promise<void> => {
      const r = await fetch(`${url}/inject/${id}`, { method: 'POST' });
      assert.equal(r.status, 200, await r.text());
      await new Promise((res) => setTimeout(res, 150));
    };
    for (const id of ['e1', 'e2', 'r0', 'r1', 'r2']) await click(id);
    ed = await openEditor(url);
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
