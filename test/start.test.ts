/** `npm start`: the demo starts, devices' readings are verified and appended, queries answer with proofs. */
import { strict as assert } from 'node:assert';
import { ChildProcess } from 'node:child_process';
import { canonicalBytes, leafHash, NoteVerifier, openNote, parseCheckpoint, PublicKey, verifyInclusion } from '../lib';
import { freePort, spawnDemo, stopChild, tmpDir } from './helpers';

interface Answer { checkpoint: string; treeSize: number; entries: { index: number; leaf: { signer: string; topic: string }; proof: string[] }[] }
interface LedgerInfo { id: string; origin: string; did: string; treeSize: number; checkpoint: string }

describe('npm start (the demo)', function () {
  this.timeout(120000);
  let t: ReturnType<typeof tmpDir>;
  let child: ChildProcess;

  after(async () => {
    await stopChild(child);
    t?.cleanup();
  });

  it('starts Node-RED with the demo flow; device readings become ledger entries with proofs', async () => {
    t = tmpDir('bot-demo-');
    const [port, mqttPort] = [await freePort(), await freePort()];
    const demo = spawnDemo('start.js', { PORT: String(port), MQTT_PORT: String(mqttPort), BOT_DEMO_DIR: t.dir });
    child = demo.child;
    const base = `http://127.0.0.1:${port}`;
    let answer: Answer | undefined;
    const end = Date.now() + 90000;
    while (Date.now() < end && !(answer && new Set(answer.entries.map((e) => e.leaf.signer)).size >= 3)) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        const res = await fetch(`${base}/bot/query?topic=devices/%23&limit=30`);
        if (res.ok) answer = (await res.json()) as Answer;
      } catch { /* not up yet */ }
    }
    assert.ok(answer && answer.entries.length > 0, `no entries; demo output:\n${demo.output()}`);
    assert.ok(new Set(answer.entries.map((e) => e.leaf.signer)).size >= 3, 'all three devices are in the ledger');
    const [info] = (await (await fetch(`${base}/bot-ledger/ledgers`)).json()) as LedgerInfo[];
    const note = openNote(answer.checkpoint, [NoteVerifier.ed25519(info.origin, PublicKey.fromDid(info.did))]);
    const cp = parseCheckpoint(note.text);
    for (const e of answer.entries) verifyInclusion(e.index, cp.size, leafHash(canonicalBytes(e.leaf)), e.proof.map((p) => Buffer.from(p, 'base64')), cp.root);
    assert.ok(!/\[error\]/.test(demo.output()), demo.output());
  });
});
