/** The audit on a live ledger: a consistent snapshot, worker threads or none. */
import { strict as assert } from 'node:assert';
import { auditLedger, Identity, Ledger, signEnvelope } from '../../lib';
import { tmpDir } from '../helpers';

describe('audit', function () {
  this.timeout(60000);
  let t: ReturnType<typeof tmpDir>;
  beforeEach(() => {
    t = tmpDir('bot-audit-');
  });
  afterEach(() => t.cleanup());

  it('passes on a ledger that is being appended to, with and without worker threads', async () => {
    const op = Identity.generate();
    const dev = Identity.generate();
    const led = await Ledger.open({ dir: t.dir, origin: 'example.com/audit', identity: op });
    let seq = 0;
    const batch = (n: number): Promise<unknown[]> =>
      Promise.all(Array.from({ length: n }, () => led.append(signEnvelope(dev, { kind: 'reading', seq: seq++, ts: Date.now(), payload: { s: seq } }))));
    await batch(700);
    await led.checkpoint();
    await batch(33);
    await led.checkpoint();
    const progress: number[] = [];
    const [withWorkers, appended] = await Promise.all([auditLedger(led, { workers: 2, onProgress: (p) => progress.push(p.checked) }), batch(500)]);
    assert.equal(appended.length, 500);
    assert.ok(withWorkers.ok, JSON.stringify(withWorkers));
    assert.ok(withWorkers.size >= 733 && withWorkers.size <= 1233);
    assert.equal(withWorkers.workers, 2);
    assert.equal(withWorkers.checkpoints, 2);
    assert.ok(progress.length > 5 && progress[progress.length - 1] === withWorkers.size);
    const inline = await auditLedger(led, { workers: 0 });
    assert.ok(inline.ok && inline.size === 1233 && inline.root === led.root().toString('base64'), JSON.stringify(inline));
    await led.close();
  });
});
