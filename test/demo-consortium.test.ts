/** `npm run demo:consortium`: three Node-RED partners confirm each other's entries at 2 of 3. */
import { strict as assert } from 'node:assert';
import { ChildProcess } from 'node:child_process';
import { freeConsecutivePorts, freePort, spawnDemo, stopChild, tmpDir } from './helpers';

interface LedgerInfo { origin: string; treeSize: number; quorum: number; confirmedSize: number; witnesses: string[] }

describe('npm run demo:consortium', function () {
  this.timeout(120000);
  let t: ReturnType<typeof tmpDir>;
  let child: ChildProcess;

  after(async () => {
    await stopChild(child);
    t?.cleanup();
  });

  it('starts three partners whose entries become confirmed by the others', async () => {
    t = tmpDir('bot-consortium-');
    const base = await freeConsecutivePorts(3); // the partners' ports
    const mqtt = await freePort();
    const demo = spawnDemo('demo-consortium.js', { PORT: String(base), MQTT_PORT: String(mqtt), BOT_DEMO_DIR: t.dir });
    child = demo.child;
    const infos: LedgerInfo[] = [];
    const end = Date.now() + 90000;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1000));
      infos.length = 0;
      for (let i = 0; i < 3; i++) {
        try {
          const [info] = (await (await fetch(`http://127.0.0.1:${base + i}/bot-ledger/ledgers`)).json()) as LedgerInfo[];
          if (info) infos.push(info);
        } catch { /* not up yet */ }
      }
      if (infos.length === 3 && infos.every((x) => x.confirmedSize > 0)) break;
    }
    assert.equal(infos.length, 3, demo.output());
    for (const x of infos) {
      assert.equal(x.quorum, 2, JSON.stringify(x));
      assert.equal(x.witnesses.length, 2);
      assert.ok(x.confirmedSize > 0, `${x.origin} has nothing confirmed:\n${demo.output()}`);
    }
    assert.ok(!/\[error\]/.test(demo.output()), demo.output());
  });
});
