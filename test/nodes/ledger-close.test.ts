/**
 * Issue 11 defect 9: a synced bot-ledger closes within a bounded time whatever the broker and
 * the partners do (nodes/bot-ledger.ts close: checkpoint → stopSync → lease release). Ledger A
 * (Node-RED) witnesses and mirrors a partner B whose checkpoints are on the broker but who
 * never answers: A's consistency-proof request (witness) and entries request (mirror) are in
 * flight when A closes — with the broker up, and with the broker frozen (SIGSTOP: connected,
 * acknowledging nothing). Without a bound, close waits for those requests' timeouts (5 s and
 * 10 s), and Node-RED reports "Close timed out" after 15 s.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { MqttLink } from '../../lib/consortium/mqtt-link';
import { ledgerId } from '../../lib/consortium/quorum';
import { ledgerTopics } from '../../lib/consortium/publisher';
import { Mosquitto } from '../mosquitto';
import { ALL_NODES, type FlowNode, freshUserDir, helper, until } from './util';

const A_OP = Identity.generate();
const B_OP = Identity.generate();
const A_ORIGIN = 'example.com/close-a';
const B_ORIGIN = 'example.com/close-b';

describe('bot-ledger over MQTT closes within a bounded time (real MQTT broker)', function () {
  this.timeout(30000);

  for (const broker of ['up', 'frozen'] as const) {
    it(`with a witness request and a mirror request in flight to a silent partner, broker ${broker}: closed in under 3 s`, async () => {
      const b = await Mosquitto.start();
      const userDir = freshUserDir();
      const watch = new MqttLink({ url: b.url });
      let bLedger: Ledger | undefined;
      try {
        watch.on('error', () => undefined);
        watch.start();
        await watch.connected(5000);
        // B: a real ledger whose signed checkpoints are retained on the broker; nobody answers its rpc topic.
        bLedger = await Ledger.open({ dir: path.join(userDir, 'b'), origin: B_ORIGIN, identity: B_OP });
        const bTopics = ledgerTopics(ledgerId(B_ORIGIN, B_OP.did));
        const grow = async (n: number): Promise<void> => {
          for (let i = 0; i < n; i++) await bLedger!.append(signEnvelope(B_OP, { kind: 'reading', seq: bLedger!.size + 1, ts: Date.now(), payload: { i } }));
          const cp = await bLedger!.checkpoint();
          await watch.publish(bTopics.checkpoint, cp!.note, { retain: true });
        };
        await grow(1);
        const asked = new Set<string>();
        watch.subscribe(bTopics.rpc, (_t, p) => {
          asked.add((JSON.parse(p.toString()) as { method: string }).method);
        });
        let cosigned = false;
        watch.subscribe(bTopics.cosignatures, () => {
          cosigned = true;
        });

        const flow: FlowNode[] = [
          { id: 't1', type: 'tab', label: 'close' },
          { id: 'op', type: 'bot-identity', name: 'A operator' },
          {
            id: 'L1',
            type: 'bot-ledger',
            name: 'A',
            origin: A_ORIGIN,
            identity: 'op',
            dir: path.join(userDir, 'a'),
            checkpointMs: 200,
            checkpointEntries: 0,
            maxEntryBytes: 65536,
            broker: b.url,
            clientId: '',
            witnesses: `${B_OP.did} ${B_ORIGIN}`,
            quorum: '',
            witnessed: `${B_ORIGIN} ${B_OP.did}`,
            mirrored: `${B_ORIGIN} ${B_OP.did}`,
          },
        ];
        await helper.load(ALL_NODES, flow, { op: { secretKey: A_OP.exportSeed().toString('hex') } });
        // A cosigns B's first checkpoint (no proof needed from size 0), then B grows: A asks B for a
        // consistency proof, and A's mirror asks for entries; B never answers.
        await until(() => cosigned, 10000, "A's cosignature of B");
        await grow(2);
        await until(() => asked.has('consistency') && asked.has('entries'), 10000, `A's requests to B (seen: ${[...asked].join(', ')})`);
        if (broker === 'frozen') b.signal('SIGSTOP');
        const t0 = Date.now();
        await helper.unload();
        const took = Date.now() - t0;
        assert.ok(took < 3000, `closing took ${took} ms`);
        const log = helper
          .log()
          .args.map((a) => JSON.stringify(a))
          .join('\n');
        assert.ok(!/Close timed out/i.test(log), log);
      } finally {
        b.signal('SIGCONT');
        await watch.close();
        await bLedger?.close();
        await b.close();
        fs.rmSync(userDir, { recursive: true, force: true });
      }
    });
  }
});
