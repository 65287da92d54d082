/**
 * Flow benchmark (issue: the Node-RED nodes): messages per second through `bot-sign` →
 * `bot-append` against two core `change` nodes in series, the same messages, in one real
 * Node-RED runtime (node-red-node-test-helper, with its call-recording spies removed once
 * the flow is loaded), alternating rounds. Messages are injected
 * the way an `mqtt in` node does, without waiting for earlier ones; a round ends when the
 * last message reaches the node at the end of the flow. Target: ratio >= 0.6.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Figure, median } from './common';

interface TestNode {
  receive(msg: Record<string, unknown>): void;
  on(event: 'input', cb: (msg: unknown) => void): void;
}
interface Helper {
  init(runtime: string): void;
  settings(s: Record<string, unknown>): void;
  load(nodes: unknown[], flow: Record<string, unknown>[], creds?: Record<string, Record<string, string>>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): TestNode;
  /** The helper's sinon sandbox: it spies on every Node method call, which a benchmark must not pay for. */
  _sandbox: { restore(): void };
}

const helper = require('node-red-node-test-helper') as Helper;
helper.init(require.resolve('node-red'));
const changeNode = require('@node-red/nodes/core/function/15-change.js') as (red: unknown) => void;
const ours = ['bot-identity', 'bot-ledger', 'bot-sign', 'bot-append'].map((n) => require(`../nodes/${n}`) as unknown);

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
  for (let i = 0; i < n; i++) node.receive({ topic: `plant/1/sensor-${i % 16}`, payload: { celsius: 20 + (i % 50) / 10, rh: 40 + (i % 20), seq: i } });
  await done;
  return n / (Number(process.hrtime.bigint() - t) / 1e9);
}

/** Measure bot-sign → bot-append against change → change, alternating rounds. */
export async function benchFlow(messages: number, rounds: number): Promise<Figure & { messages: number }> {
  const value: number[] = [],
    peer: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-flow-'));
    try {
      helper.settings({ userDir });
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
      helper._sandbox.restore();
      value.push(await rate('sign', messages));
      await helper.unload();
      await helper.load(
        [changeNode],
        [
          { id: 'tab', type: 'tab' },
          { id: 'c1', type: 'change', z: 'tab', rules: [{ t: 'set', p: 'stamp', pt: 'msg', to: '', tot: 'date' }], wires: [['c2']] },
          { id: 'c2', type: 'change', z: 'tab', rules: [{ t: 'move', p: 'stamp', pt: 'msg', to: 'received', tot: 'msg' }], wires: [['end']] },
          { id: 'end', type: 'helper', z: 'tab' },
        ],
      );
      helper._sandbox.restore();
      peer.push(await rate('c1', messages));
      await helper.unload();
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
  };
}

if (require.main === module) {
  const short = process.argv.includes('--short');
  benchFlow(short ? 5000 : 20000, short ? 3 : 5)
    .then((f) => {
      console.log(JSON.stringify({ bench: 'flow', mode: short ? 'short' : 'full', flow: f }, null, 2));
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
