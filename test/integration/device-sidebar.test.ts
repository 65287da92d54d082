/**
 * The Ledger sidebar's device list (issue 14 part 1) in a real Node-RED 4 runtime in its own
 * process: GET /bot-ledger/view/ledgers/:id/devices lists the devices a bot-device enrolled,
 * with state, last seq, last seen, message rate and the silent flag, and shows a revocation.
 */
import { strict as assert } from 'node:assert';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { type RedRuntime, startRed } from '../browser/harness';

interface Row {
  name: string;
  status: string;
  key: string;
  lastSeq: number | null;
  lastSeen: number | null;
  perMinute: number;
  silent: boolean;
}

describe('Ledger sidebar: devices', function () {
  this.timeout(60000);
  let red: RedRuntime | undefined;
  after(async () => {
    await red?.stop();
  });

  it('lists enrolled devices with state, last seq, last seen, rate and silence; a revocation shows', async () => {
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
        { id: 'led', type: 'bot-ledger', name: 'plant', origin: 'example.com/sidebar-devices', identity: 'op', dir: '', checkpointMs: 0, checkpointEntries: 0 },
        inj('e1', { op: 'enrol', device: s1.did, name: 'sensor 1', topics: ['plant/1/#'] }, 'dev'),
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
    };
    const rows = async (): Promise<Row[]> => {
      const r = await fetch(`${url}/bot-ledger/view/ledgers/led/devices?silentMs=600000`);
      assert.equal(r.status, 200, await r.clone().text());
      return (await r.json()) as Row[];
    };
    const until = async (what: string, ok: (r: Row[]) => boolean): Promise<Row[]> => {
      for (let i = 0; i < 100; i++) {
        const r = await rows();
        if (ok(r)) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await rows())}\n${red?.output() ?? ''}`);
    };
    await click('e1');
    await until('sensor 1 enrolled', (r) => r.length === 1);
    await click('e2');
    await until('sensor 2 enrolled', (r) => r.length === 2);
    for (const id of ['r0', 'r1', 'r2']) await click(id);
    const seen = await until('three readings of sensor 1', (r) => r.find((x) => x.name === 'sensor 1')?.lastSeq === 2);
    const one = seen.find((x) => x.name === 'sensor 1') as Row;
    const two = seen.find((x) => x.name === 'sensor 2') as Row;
    assert.deepEqual([one.status, one.key, one.lastSeen, one.silent], ['active', s1.did, ts + 2, false]);
    assert.ok(one.perMinute > 0, `rate ${one.perMinute}`);
    assert.deepEqual([two.status, two.lastSeq, two.lastSeen, two.silent], ['active', null, null, true]);
    await click('rv');
    const after = await until('sensor 1 revoked', (r) => r.find((x) => x.name === 'sensor 1')?.status === 'revoked');
    assert.equal(after.find((x) => x.name === 'sensor 1')?.silent, false, 'a revoked device is not flagged silent');
    const bad = await fetch(`${url}/bot-ledger/view/ledgers/led/devices?silentMs=x`);
    assert.equal(bad.status, 400);
  });
});
