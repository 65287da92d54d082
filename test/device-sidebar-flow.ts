/**
 * The Node-RED runtime the device-list tests share (test/integration/device-sidebar.test.ts,
 * test/browser/device-sidebar.test.ts): a ledger, a bot-device that enrols two sensors and
 * revokes the first, and three signed readings of sensor 1 through bot-verify into bot-append,
 * each behind an inject node the test clicks through the admin API.
 */
import { strict as assert } from 'node:assert';
import { signEnvelope } from '../lib/format/envelope';
import { Identity } from '../lib/format/identity';
import { type RedRuntime, startRed } from './browser/harness';

/** A row of GET /bot-ledger/view/ledgers/:id/devices. */
export interface DeviceRow {
  name: string;
  status: string;
  key: string;
  lastSeq: number | null;
  lastSeen: number | null;
  perMinute: number;
  silent: boolean;
}

/** The running flow: the runtime, the two sensors, the readings' first timestamp, and its controls. */
export interface DevicesRuntime {
  red: RedRuntime;
  s1: Identity;
  s2: Identity;
  /** ts of reading 0 (reading seq has ts + seq). */
  ts: number;
  /** Press an inject node: e1, e2 (enrol sensor 1, 2), rv (revoke sensor 1), r0, r1, r2 (sensor 1's readings). */
  click(id: string): Promise<void>;
  /** The device list of ledger `led` (silent after 10 minutes). */
  rows(): Promise<DeviceRow[]>;
  /** Poll rows() until ok holds (about 10 s). */
  until(what: string, ok: (r: DeviceRow[]) => boolean): Promise<DeviceRow[]>;
  /** Enrol both sensors, then send sensor 1's three readings; resolves with the list once all three are seen. */
  enrolAndRead(): Promise<DeviceRow[]>;
}

/** Start Node-RED (test/browser/harness.ts) with the devices flow on a ledger of this origin; sensor 1 is enrolled with meta. */
export async function startDevicesRed(origin: string, meta?: Record<string, string>): Promise<DevicesRuntime> {
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
  const red = await startRed({
    flows: [
      { id: 'tab', type: 'tab', label: 'devices' },
      { id: 'op', type: 'bot-identity', name: 'operator' },
      { id: 'led', type: 'bot-ledger', name: 'plant', origin, identity: 'op', dir: '', checkpointMs: 0, checkpointEntries: 0 },
      inj('e1', { op: 'enrol', device: s1.did, name: 'sensor 1', topics: ['plant/1/#'], ...(meta ? { meta } : {}) }, 'dev'),
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
  const rows = async (): Promise<DeviceRow[]> => {
    const r = await fetch(`${url}/bot-ledger/view/ledgers/led/devices?silentMs=600000`);
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as DeviceRow[];
  };
  const until = async (what: string, ok: (r: DeviceRow[]) => boolean): Promise<DeviceRow[]> => {
    for (let i = 0; i < 100; i++) {
      const r = await rows();
      if (ok(r)) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await rows())}\n${red.output()}`);
  };
  const enrolAndRead = async (): Promise<DeviceRow[]> => {
    await click('e1');
    await until('sensor 1 enrolled', (r) => r.length === 1);
    await click('e2');
    await until('sensor 2 enrolled', (r) => r.length === 2);
    for (const id of ['r0', 'r1', 'r2']) await click(id);
    return until('three readings of sensor 1', (r) => r.find((x) => x.name === 'sensor 1')?.lastSeq === 2);
  };
  return { red, s1, s2, ts, click, rows, until, enrolAndRead };
}
