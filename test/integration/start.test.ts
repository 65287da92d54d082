/**
 * `npm start`: the demo starts, devices' readings are verified and appended, queries answer
 * with proofs; started again on the same folder with another MQTT_PORT it follows it (issue 11
 * defect 8), also when the folder was deployed by an older launcher that wrote the port into
 * the flow; and Ctrl-C ends the launcher and Node-RED within a few seconds.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canonicalBytes, leafHash, NoteVerifier, openNote, parseCheckpoint, PublicKey, verifyInclusion } from '../../lib';
import { freePort, spawnDemo, stopChild, tmpDir } from '../helpers';
import { stopAndMeasure } from '../process-tree';

interface Answer {
  checkpoint: string;
  treeSize: number;
  entries: { index: number; leaf: { signer: string; topic: string; ts: number }; proof: string[] }[];
}
interface LedgerInfo {
  id: string;
  origin: string;
  did: string;
  treeSize: number;
  checkpoint: string;
}

/** Query the demo until `ok` accepts the answer (or ms pass); the last answer. */
async function queryUntil(base: string, q: string, ok: (a: Answer) => boolean, ms: number): Promise<Answer | undefined> {
  let answer: Answer | undefined;
  const end = Date.now() + ms;
  while (Date.now() < end && !(answer && ok(answer))) {
    await new Promise((r) => setTimeout(r, 500));
    try {
      const res = await fetch(`${base}/bot/query?${q}`);
      if (res.ok) answer = (await res.json()) as Answer;
    } catch {
      /* not up yet */
    }
  }
  return answer;
}

describe('npm start (the demo)', function () {
  this.timeout(120000);
  let t: ReturnType<typeof tmpDir>;
  let child: ChildProcess | undefined;
  let port = 0;
  let did = '';

  after(async () => {
    await stopChild(child);
    t?.cleanup();
  });

  it('starts Node-RED with the demo flow; device readings become ledger entries with proofs', async () => {
    t = tmpDir('bot-demo-');
    const mqttPort = await freePort();
    port = await freePort();
    const demo = spawnDemo('start.js', { PORT: String(port), MQTT_PORT: String(mqttPort), BOT_DEMO_DIR: t.dir });
    child = demo.child;
    const base = `http://127.0.0.1:${port}`;
    const answer = await queryUntil(base, 'topic=devices/%23&limit=30', (a) => new Set(a.entries.map((e) => e.leaf.signer)).size >= 3, 90000);
    assert.ok(answer && answer.entries.length > 0, `no entries; demo output:\n${demo.output()}`);
    assert.ok(new Set(answer.entries.map((e) => e.leaf.signer)).size >= 3, 'all three devices are in the ledger');
    const [info] = (await (await fetch(`${base}/bot-ledger/ledgers`)).json()) as LedgerInfo[];
    did = info.did;
    const note = openNote(answer.checkpoint, [NoteVerifier.ed25519(info.origin, PublicKey.fromDid(info.did))]);
    const cp = parseCheckpoint(note.text);
    for (const e of answer.entries)
      verifyInclusion(
        e.index,
        cp.size,
        leafHash(canonicalBytes(e.leaf)),
        e.proof.map((p) => Buffer.from(p, 'base64')),
        cp.root,
      );
    assert.ok(!/\[error\]/.test(demo.output()), demo.output());

    // Ctrl-C: the launcher and its Node-RED are gone within a few seconds, none left behind.
    const stop = await stopAndMeasure(child);
    assert.equal(stop.children.length, 1, 'one Node-RED process');
    assert.deepEqual(stop.left, [], `still running after ${stop.took} ms`);
    assert.ok(stop.took < 5000, `stopping took ${stop.took} ms`);
  });

  it('started again on the same folder with another MQTT_PORT, it follows it (also a flow an older launcher wrote the port into)', async () => {
    assert.ok(t && did, 'the first start ran');
    // As an older launcher left it: the port written into the deployed flow.
    const flowsFile = path.join(t.dir, 'node-red', 'flows.json');
    const flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8')) as { id: string; port?: string }[];
    const brokerNode = flows.find((n) => n.id === 'demo-broker');
    assert.equal(brokerNode?.port, '${MQTT_PORT}', 'the demo flow reads the port from the environment');
    brokerNode!.port = '1';
    fs.writeFileSync(flowsFile, JSON.stringify(flows));

    const mqttPort = await freePort();
    const demo = spawnDemo('start.js', { PORT: String(port), MQTT_PORT: String(mqttPort), BOT_DEMO_DIR: t.dir });
    child = demo.child;
    const since = Date.now();
    const base = `http://127.0.0.1:${port}`;
    // New device readings arrive over the broker on the new port: the flow follows it.
    const answer = await queryUntil(base, `topic=devices/%23&since=${since}&limit=30`, (a) => a.entries.length > 0, 30000);
    assert.ok(answer && answer.entries.length > 0, `no device reading since the restart; demo output:\n${demo.output()}`);
    assert.match(demo.output(), /broker port was 1: it is now \$\{MQTT_PORT\}, which follows MQTT_PORT/);
    const [info] = (await (await fetch(`${base}/bot-ledger/ledgers`)).json()) as LedgerInfo[];
    assert.equal(info.did, did, 'the same gateway key (its credential kept through the update)');
    assert.ok(!/\[error\]/.test(demo.output()), demo.output());
  });
});
