/**
 * Device registry benchmark (issue 14): messages per second through `bot-verify` trusting the
 * devices enrolled in a ledger (docs/design.md "Devices": 64 devices, each message from one of
 * 16 of them on a topic of its enrolment) against the same `bot-verify` with the same 16
 * did:keys as a fixed trusted list, in one real Node-RED runtime (node-red-node-test-helper,
 * its call-recording spies removed once loaded: unspy), alternating rounds. Envelopes are signed
 * beforehand as a device outside this process would (deviceSigned), so both sides pay the
 * same Ed25519 verification; messages are injected without
 * waiting, and a round ends when the last one leaves output 1.
 *
 *   node dist/bench/devices.js [--short]   (also the `devices` figure of `npm run bench`)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Figure, median } from './common';
import { ENVELOPE_DOMAIN, type EnvelopeInput, prepareEnvelope } from '../lib/format/envelope';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { enrolDevice } from '../lib/devices/device-registry';

import { helper, unspy } from './red-helper';

const ours = ['bot-identity', 'bot-ledger', 'bot-verify'].map((n) => require(`../nodes/${n}`) as unknown);
const ORIGIN = 'bench.example/devices';

/**
 * An envelope as a device outside this process sends it: signEnvelope would remember its
 * signature as checked here (lib/format/envelope.ts), and bot-verify would then skip the
 * Ed25519 verification that every reading from a real device costs. The same bytes, signed
 * from prepareEnvelope's message without `finish`.
 */
function deviceSigned(id: Identity, input: EnvelopeInput): Record<string, unknown> {
  const p = prepareEnvelope(id.publicKey, input);
  const body = JSON.parse(p.message.subarray(ENVELOPE_DOMAIN.length).toString('utf8')) as Record<string, unknown>;
  return { ...body, sig: id.sign(p.message).toString('base64url') };
}

/** Messages per second (wall clock) and CPU microseconds of this process per message. */
async function rate(envelopes: unknown[]): Promise<{ rate: number; cpuUs: number }> {
  let got = 0;
  const n = envelopes.length;
  const done = new Promise<void>((resolve) =>
    helper.getNode('end').on('input', () => {
      if (++got === n) resolve();
    }),
  );
  const node = helper.getNode('verify');
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  for (const e of envelopes) node.receive({ payload: e });
  await done;
  const used = process.cpuUsage(cpu);
  return { rate: n / (Number(process.hrtime.bigint() - t) / 1e9), cpuUs: (used.user + used.system) / n };
}

/** Measure bot-verify against the registry and against a fixed list, alternating rounds. */
export async function benchDevices(
  messages: number,
  rounds: number,
): Promise<Figure & { messages: number; devices: number; cpuMicrosPerMessage: { value: number; peer: number } }> {
  const operator = Identity.generate();
  const devices = Array.from({ length: 64 }, () => Identity.generate());
  const senders = devices.slice(0, 16);
  const value: number[] = [],
    peer: number[] = [],
    cpuValue: number[] = [],
    cpuPeer: number[] = [];
  let seq = 0;
  /** Fresh envelopes each round (bot-verify refuses replays), signed as a device would: deviceSigned. */
  const envelopes = (): unknown[] =>
    Array.from({ length: messages }, (_, i) => {
      const d = i % senders.length;
      return deviceSigned(senders[d], {
        kind: 'reading',
        seq: seq++,
        ts: Date.now(),
        topic: `plant/1/sensor-${d}/temp`,
        payload: { celsius: 20 + (i % 50) / 10 },
      });
    });
  for (let r = 0; r < rounds; r++) {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-devices-'));
    try {
      const dir = path.join(userDir, 'ledger');
      const l = await Ledger.open({ dir, origin: ORIGIN, identity: operator });
      let opSeq = 0;
      for (const [i, d] of devices.entries())
        await enrolDevice(l, operator, () => opSeq++, { ledger: ORIGIN, device: d.did, name: `sensor ${i}`, topics: [`plant/1/sensor-${i}/#`] } as never);
      await l.close();
      helper.settings({ userDir });
      const base = [
        { id: 'tab', type: 'tab' },
        { id: 'key', type: 'bot-identity', name: 'operator' },
        { id: 'led', type: 'bot-ledger', name: 'bench', origin: ORIGIN, identity: 'key', dir, checkpointMs: 0, checkpointEntries: 0 },
        { id: 'end', type: 'helper', z: 'tab' },
      ];
      const creds = { key: { secretKey: operator.exportSeed().toString('hex') } };
      const verify = { id: 'verify', type: 'bot-verify', z: 'tab', ledger: '', maxSkewMs: 300000, wires: [['end'], []] };
      await helper.load(ours, [...base, { ...verify, trusted: '', devices: 'led' }], creds);
      unspy(['verify']);
      const a = await rate(envelopes());
      value.push(a.rate);
      cpuValue.push(a.cpuUs);
      await helper.unload();
      await helper.load(ours, [...base, { ...verify, trusted: senders.map((d) => d.did).join('\n'), devices: '' }], creds);
      unspy(['verify']);
      const b = await rate(envelopes());
      peer.push(b.rate);
      cpuPeer.push(b.cpuUs);
      await helper.unload();
    } finally {
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  }
  const v = median(value),
    p = median(peer);
  return {
    what: 'msg/s through bot-verify trusting the devices enrolled in a ledger (64 enrolled, 16 sending, topic filters checked)',
    peerWhat: 'msg/s through bot-verify with the same 16 did:keys as a fixed trusted list, same messages',
    unit: 'msg/s',
    value: Math.round(v),
    peer: Math.round(p),
    ratio: Math.round((v / p) * 1000) / 1000,
    target: 'ratio >= 0.9',
    meetsTarget: v / p >= 0.9,
    rounds: { value: value.map(Math.round), peer: peer.map(Math.round) },
    messages,
    devices: devices.length,
    cpuMicrosPerMessage: { value: Math.round(median(cpuValue)), peer: Math.round(median(cpuPeer)) },
  };
}

/** Messages per round and rounds, alone and in `npm run bench` (bench/run.ts); short: the smoke test's size. */
export const DEVICES_SIZES = { full: { messages: 10000, rounds: 5 }, short: { messages: 1000, rounds: 2 } };

if (require.main === module) {
  const short = process.argv.includes('--short');
  const size = short ? DEVICES_SIZES.short : DEVICES_SIZES.full;
  benchDevices(size.messages, size.rounds)
    .then((f) => {
      console.log(JSON.stringify({ bench: 'devices', mode: short ? 'short' : 'full', devices: f }, null, 2));
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
