/**
 * Flow benchmark (issue: the Node-RED nodes): messages per second through `bot-sign` →
 * `bot-append` against two core `change` nodes in series, the same messages, in one real
 * Node-RED runtime (node-red-node-test-helper, with its call-recording spies removed once
 * the flow is loaded), alternating rounds. Messages are injected
 * the way an `mqtt in` node does, without waiting for earlier ones; a round ends when the
 * last message reaches the node at the end of the flow. Target: ratio >= 0.6. `poolOff` is the
 * same flow with bot-sign's signing pool off (settings.js `botSignWorkers: 0`, every signature
 * inline), measured in the same alternated rounds.
 *
 * benchLatency: end-to-end time of one message (bot-sign receives it → bot-append's receipt
 * reaches the end node) at a low rate (10 msg/s), pool off ("before") against pool on ("after"),
 * alternated rounds, p50 and p99: the pool must cost a single message nothing. `stages` splits
 * each message at bot-append's input: `sign` (where the pool acts) and `append` (the synced
 * write and the receipt), so a tail can be placed.
 *
 * CLI: `node dist/bench/flow.js [--short] [--flow | --latency]` prints one JSON object.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Figure, median } from './common';

import { helper, type TestNode, unspy } from './red-helper';

const changeNode = require('@node-red/nodes/core/function/15-change.js') as (red: unknown) => void;
const ours = ['bot-identity', 'bot-ledger', 'bot-sign', 'bot-append'].map((n) => require(`../nodes/${n}`) as unknown);

/** CPU µs per message of the last rate() round, all threads of the process (the signing workers too). */
let lastCpuMicros = 0;

async function rate(first: string, n: number): Promise<number> {
  const end = helper.getNode('end');
  let got = 0;
  const done = new Promise<void>((resolve) =>
    end.on('input', () => {
      if (++got === n) resolve();
    }),
  );
  const node = helper.getNode(first);
  const t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) node.receive({ topic: `plant/1/sensor-${i % 16}`, payload: { celsius: 20 + (i % 50) / 10, rh: 40 + (i % 20), seq: i } });
  await done;
  const used = process.cpuUsage(cpu);
  lastCpuMicros = (used.user + used.system) / n;
  return n / (Number(process.hrtime.bigint() - t) / 1e9);
}

/** Load bot-sign → bot-append into a fresh user directory; `workers` is bot-sign's botSignWorkers setting (0: no pool). */
async function loadOurs(userDir: string, workers?: number): Promise<void> {
  fs.mkdirSync(userDir, { recursive: true });
  helper.settings(workers === undefined ? { userDir } : { userDir, botSignWorkers: workers });
  await helper.load(
    ours,
    [
      { id: 'tab', type: 'tab' },
      { id: 'key', type: 'bot-identity', name: 'bench' },
      {
        id: 'led',
        type: 'bot-ledger',
        name: 'bench',
        origin: 'bench.example/flow',
        identity: 'key',
        dir: path.join(userDir, 'ledger'),
        checkpointMs: 1000,
      },
      { id: 'sign', type: 'bot-sign', z: 'tab', identity: 'key', wires: [['append']] },
      { id: 'append', type: 'bot-append', z: 'tab', ledger: 'led', wires: [['end']] },
      { id: 'end', type: 'helper', z: 'tab' },
    ],
    { key: { secretKey: 'ab'.repeat(32) } },
  );
  unspy(['sign', 'append', 'end']);
}

/** Measure bot-sign → bot-append (pool on, then off) against change → change, alternating rounds. */
export async function benchFlow(messages: number, rounds: number): Promise<Figure & { messages: number }> {
  const value: number[] = [],
    off: number[] = [],
    peer: number[] = [];
  const cpu: { value: number[]; off: number[]; peer: number[] } = { value: [], off: [], peer: [] };
  for (let r = 0; r < rounds; r++) {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-flow-'));
    // The order rotates from round to round: a flow measured right after another pays for the
    // garbage and the LevelDB compaction the previous one left behind.
    const runs: (() => Promise<void>)[] = [
      async () => {
        await loadOurs(path.join(userDir, 'on'));
        value.push(await rate('sign', messages));
        cpu.value.push(lastCpuMicros);
        await helper.unload();
      },
      async () => {
        await loadOurs(path.join(userDir, 'off'), 0);
        off.push(await rate('sign', messages));
        cpu.off.push(lastCpuMicros);
        await helper.unload();
      },
      async () => {
        helper.settings({ userDir });
        await helper.load(
          [changeNode],
          [
            { id: 'tab', type: 'tab' },
            { id: 'c1', type: 'change', z: 'tab', rules: [{ t: 'set', p: 'stamp', pt: 'msg', to: '', tot: 'date' }], wires: [['c2']] },
            { id: 'c2', type: 'change', z: 'tab', rules: [{ t: 'move', p: 'stamp', pt: 'msg', to: 'received', tot: 'msg' }], wires: [['end']] },
            { id: 'end', type: 'helper', z: 'tab' },
          ],
        );
        unspy(['c1', 'c2', 'end']);
        peer.push(await rate('c1', messages));
        cpu.peer.push(lastCpuMicros);
        await helper.unload();
      },
    ];
    try {
      for (let i = 0; i < runs.length; i++) await runs[(r + i) % runs.length]();
    } finally {
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  }
  const v = median(value),
    p = median(peer);
  return {
    what: 'msg/s through bot-sign → bot-append (durable), messages injected without waiting',
    peerWhat: 'msg/s through two core change nodes in series, same messages',
    unit: 'msg/s',
    value: Math.round(v),
    peer: Math.round(p),
    ratio: Math.round((v / p) * 1000) / 1000,
    target: 'ratio >= 0.6',
    meetsTarget: v / p >= 0.6,
    rounds: { value: value.map(Math.round), peer: peer.map(Math.round) },
    messages,
    poolOff: {
      what: 'the same flow with botSignWorkers: 0 (signatures inline)',
      value: Math.round(median(off)),
      ratio: Math.round((median(off) / p) * 1000) / 1000,
      rounds: off.map(Math.round),
    },
    // Less sensitive to other load than msg/s: CPU time of every thread, per message (medians).
    cpuMicrosPerMessage: { value: Math.round(median(cpu.value)), poolOff: Math.round(median(cpu.off)), peer: Math.round(median(cpu.peer)) },
  };
}

/** One message's ms end to end, and of its first stage (bot-sign receives it → bot-append receives the envelope). */
interface Timing {
  total: number;
  sign: number;
}

/** Timings of `messages` single messages sent every 1000/perSecond ms through bot-sign → bot-append. */
async function lowRate(messages: number, perSecond: number): Promise<Timing[]> {
  const end = helper.getNode('end');
  const sign = helper.getNode('sign');
  // When the envelope reaches bot-append: the rest (append → durable → receipt out) is the second stage.
  const append = helper.getNode('append') as TestNode & { receive(msg: Record<string, unknown>): void };
  let atAppend = 0n;
  const receive = append.receive.bind(append);
  append.receive = (msg) => {
    atAppend = process.hrtime.bigint();
    receive(msg);
  };
  const times: Timing[] = [];
  for (let i = 0; i < messages; i++) {
    const arrived = new Promise<void>((resolve) => end.on('input', () => resolve()));
    const t = process.hrtime.bigint();
    sign.receive({ topic: 'plant/1/sensor-1', payload: { celsius: 20 + i / 10, seq: i } });
    await arrived;
    times.push({ total: Number(process.hrtime.bigint() - t) / 1e6, sign: Number(atAppend - t) / 1e6 });
    (end as unknown as { removeAllListeners(e: string): void }).removeAllListeners('input');
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 / perSecond - times[i].total)));
  }
  return times;
}

const pct = (xs: number[], q: number): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/**
 * p50 of one message end to end at a low rate, pool on (value) against pool off (peer), alternated
 * rounds; p99 end to end, and p50/p99 of each stage: `sign` (bot-sign → bot-append receives the
 * envelope, where the pool acts) and `append` (the durable, synced append and the receipt out).
 */
export async function benchLatency(messages: number, rounds: number, perSecond = 10): Promise<Figure> {
  const on: number[] = [],
    off: number[] = [],
    all: { on: Timing[]; off: Timing[] } = { on: [], off: [] };
  for (let r = 0; r < rounds; r++) {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-latency-'));
    try {
      // Pool off first in even rounds, on first in odd ones: the second flow of a round pays for the
      // garbage the first one left (a major GC in its sign stage), which must not count against either.
      for (const pool of r % 2 === 0 ? [false, true] : [true, false]) {
        await loadOurs(path.join(userDir, String(pool)), pool ? undefined : 0);
        await lowRate(3, perSecond); // warm-up
        const t = await lowRate(messages, perSecond);
        (pool ? all.on : all.off).push(...t);
        (pool ? on : off).push(
          pct(
            t.map((x) => x.total),
            0.5,
          ),
        );
        await helper.unload();
      }
    } finally {
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  }
  const v = median(on),
    p = median(off);
  const ms = (x: number): number => Math.round(x * 100) / 100;
  const stage = (ts: Timing[], f: (t: Timing) => number): { p50: number; p99: number } => ({ p50: ms(pct(ts.map(f), 0.5)), p99: ms(pct(ts.map(f), 0.99)) });
  const stages = (ts: Timing[]): { sign: { p50: number; p99: number }; append: { p50: number; p99: number } } => ({
    sign: stage(ts, (t) => t.sign),
    append: stage(ts, (t) => t.total - t.sign),
  });
  return {
    what: `p50 ms of one message end to end through bot-sign → bot-append at ${perSecond} msg/s, signing pool on (after)`,
    peerWhat: 'the same with the pool off (botSignWorkers: 0, before)',
    unit: 'ms',
    value: ms(v),
    peer: ms(p),
    ratio: Math.round((v / p) * 1000) / 1000,
    target: 'ratio <= 1.1',
    meetsTarget: v / p <= 1.1,
    rounds: { value: on.map(ms), peer: off.map(ms) },
    p99: {
      value: ms(
        pct(
          all.on.map((t) => t.total),
          0.99,
        ),
      ),
      peer: ms(
        pct(
          all.off.map((t) => t.total),
          0.99,
        ),
      ),
    },
    stages: { value: stages(all.on), peer: stages(all.off) },
    messages,
  };
}

if (require.main === module) {
  // `--short`: fewer messages and rounds; `--flow` / `--latency`: only that part.
  const short = process.argv.includes('--short');
  const only = process.argv.includes('--flow') ? 'flow' : process.argv.includes('--latency') ? 'latency' : undefined;
  const started = process.hrtime.bigint();
  const loadAverage = os.loadavg();
  (async () => {
    const f = only === 'latency' ? undefined : await benchFlow(short ? 5000 : 20000, short ? 3 : 5);
    const latency = only === 'flow' ? undefined : await benchLatency(short ? 20 : 40, short ? 2 : 4);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      JSON.stringify({ bench: 'flow', mode: short ? 'short' : 'full', loadAverage, flow: f, latency, loadAverageAtEnd: os.loadavg(), seconds }, null, 2),
    );
    process.exit(0);
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
