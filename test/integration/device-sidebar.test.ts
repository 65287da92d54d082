/**
 * The Ledger sidebar's device list (issue 14 part 1) in a real Node-RED 4 runtime in its own
 * process: GET /bot-ledger/view/ledgers/:id/devices lists the devices a bot-device enrolled,
 * with state, last seq, last seen, message rate and the silent flag, and shows a revocation.
 * The flow is test/device-sidebar-flow.ts (shared with the browser test).
 */
import { strict as assert } from 'node:assert';
import type { RedRuntime } from '../browser/harness';
import { type DeviceRow, startDevicesRed } from '../device-sidebar-flow';

describe('Ledger sidebar: devices', function () {
  this.timeout(60000);
  let red: RedRuntime | undefined;
  after(async () => {
    await red?.stop();
  });

  it('lists enrolled devices with state, last seq, last seen, rate and silence; a revocation shows', async () => {
    const d = await startDevicesRed('example.com/sidebar-devices');
    red = d.red;
    const { s1, ts, click, until } = d;
    const seen = await d.enrolAndRead();
    const one = seen.find((x) => x.name === 'sensor 1') as DeviceRow;
    const two = seen.find((x) => x.name === 'sensor 2') as DeviceRow;
    assert.deepEqual([one.status, one.key, one.lastSeen, one.silent], ['active', s1.did, ts + 2, false]);
    assert.ok(one.perMinute > 0, `rate ${one.perMinute}`);
    assert.deepEqual([two.status, two.lastSeq, two.lastSeen, two.silent], ['active', null, null, true]);
    await click('rv');
    const after = await until('sensor 1 revoked', (r) => r.find((x) => x.name === 'sensor 1')?.status === 'revoked');
    assert.equal(after.find((x) => x.name === 'sensor 1')?.silent, false, 'a revoked device is not flagged silent');
    const bad = await fetch(`${red.url}/bot-ledger/view/ledgers/led/devices?silentMs=x`);
    assert.equal(bad.status, 400);
  });
});
