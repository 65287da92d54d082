/**
 * `npm run demo:consortium`: three Node-RED partners confirm each other's entries at 2 of 3;
 * Ctrl-C ends the launcher and the three Node-RED processes within a few seconds, with no
 * "Close timed out" (issue 11 defect 9); started again on the same folder with another
 * MQTT_PORT, the partners follow it and confirm again (defect 8).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess } from 'node:child_process';
import { freeConsecutivePorts, freePort, spawnDemo, stopChild, tmpDir } from '../helpers';
import { stopAndMeasure } from '../process-tree';

interface LedgerInfo {
  origin: string;
  treeSize: number;
  quorum: number;
  confirmedSize: number;
  witnesses: string[];
}

/** The three partners' ledger summaries once `ok` holds for all three (or after ms: what there was). */
async function infosUntil(base: number, ok: (x: LedgerInfo) => boolean, ms: number): Promise<LedgerInfo[]> {
  const infos: LedgerInfo[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    infos.length = 0;
    for (let i = 0; i < 3; i++) {
      try {
        const [info] = (await (await fetch(`http://127.0.0.1:${base + i}/bot-ledger/ledgers`)).json()) as LedgerInfo[];
        if (info) infos.push(info);
      } catch {
        /* not up yet */
      }
    }
    if (infos.length === 3 && infos.every(ok)) break;
  }
  return infos;
}

describe('npm run demo:consortium', function () {
  this.timeout(120000);
  let t: ReturnType<typeof tmpDir>;
  let child: ChildProcess | undefined;
  let base = 0;
  let confirmed: Record<string, number> = {};

  after(async () => {
    await stopChild(child);
    t?.cleanup();
  });

  it('starts three partners whose entries become confirmed by the others; Ctrl-C ends every process within a few seconds', async () => {
    t = tmpDir('bot-consortium-');
    base = await freeConsecutivePorts(3); // the partners' ports
    const mqtt = await freePort();
    const demo = spawnDemo('demo-consortium.js', { PORT: String(base), MQTT_PORT: String(mqtt), BOT_DEMO_DIR: t.dir });
    child = demo.child;
    const infos = await infosUntil(base, (x) => x.confirmedSize > 0, 90000);
    assert.equal(infos.length, 3, demo.output());
    for (const x of infos) {
      assert.equal(x.quorum, 2, JSON.stringify(x));
      assert.equal(x.witnesses.length, 2);
      assert.ok(x.confirmedSize > 0, `${x.origin} has nothing confirmed:\n${demo.output()}`);
    }
    confirmed = Object.fromEntries(infos.map((x) => [x.origin, x.confirmedSize]));
    assert.ok(!/\[error\]/.test(demo.output()), demo.output());

    const stop = await stopAndMeasure(child);
    assert.equal(stop.children.length, 3, 'three Node-RED processes');
    assert.deepEqual(stop.left, [], `Node-RED processes still running after ${stop.took} ms`);
    assert.ok(stop.took < 5000, `stopping took ${stop.took} ms:\n${demo.output()}`);
    assert.ok(!/Close timed out/i.test(demo.output()), demo.output());
  });

  it('started again on the same folder with another MQTT_PORT, the partners follow it and confirm again', async () => {
    assert.ok(t && base > 0, 'the first start ran');
    const mqtt = await freePort();
    const demo = spawnDemo('demo-consortium.js', { PORT: String(base), MQTT_PORT: String(mqtt), BOT_DEMO_DIR: t.dir });
    child = demo.child;
    const infos = await infosUntil(base, (x) => x.confirmedSize > (confirmed[x.origin] ?? 0), 30000);
    assert.equal(infos.length, 3, demo.output());
    for (const x of infos) assert.ok(x.confirmedSize > (confirmed[x.origin] ?? 0), `${x.origin} confirmed nothing new over the new broker:\n${demo.output()}`);
    assert.ok(!/\[error\]/.test(demo.output()), demo.output());
  });
});
