/** The audit on a live ledger: a consistent snapshot, worker threads or none; a failed worker ends it with ok:false. */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { auditLedger, type AuditResult, Identity, Ledger, signEnvelope } from '../../lib';
import { auditWorkerHook } from '../../lib/store/audit';
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

describe('audit: a worker that fails (fail-stop)', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger;
  before(async () => {
    t = tmpDir('bot-audit-fail-');
    const op = Identity.generate();
    const dev = Identity.generate();
    led = await Ledger.open({ dir: t.dir, origin: 'example.com/audit-fail', identity: op });
    // 300 entries: five chunks of 64, enough for the audit to use worker threads (4 chunks or more).
    await Promise.all(Array.from({ length: 300 }, (_, seq) => led.append(signEnvelope(dev, { kind: 'reading', seq, ts: Date.now(), payload: { seq } }))));
    await led.checkpoint();
  });
  afterEach(() => {
    delete auditWorkerHook.script;
    delete auditWorkerHook.options;
  });
  after(async () => {
    await led.close();
    t.cleanup();
  });

  /** The audit's result, or a failure after 10 s: before the fix, a dead worker's chunk was awaited forever. */
  const bounded = async (): Promise<AuditResult> => {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the audit did not end within 10 s after its worker failed')), 10000);
    });
    try {
      return await Promise.race([auditLedger(led, { workers: 2 }), hang]);
    } finally {
      clearTimeout(timer);
    }
  };
  /** A worker script (eval) that checks chunks like audit-worker.js, with `onTask` run first. */
  const worker = (onTask: string): string => `
    const { parentPort } = require('node:worker_threads');
    const { checkLeaves } = require(${JSON.stringify(path.join(__dirname, '../../lib/store/audit-leaves.js'))});
    parentPort.on('message', (task) => {
      ${onTask}
      parentPort.postMessage({ id: task.id, result: checkLeaves(task) });
    });`;

  it('the ledger passes with working workers', async () => {
    const r = await bounded();
    assert.ok(r.ok && r.size === 300 && r.workers === 2, JSON.stringify(r));
  });

  it('workers V8 ends at their memory limit (ERR_WORKER_OUT_OF_MEMORY): ok:false, E_STORE, no hang', async () => {
    auditWorkerHook.options = { resourceLimits: { maxOldGenerationSizeMb: 1, maxYoungGenerationSizeMb: 1, codeRangeSizeMb: 1 } };
    const r = await bounded();
    assert.ok(!r.ok, JSON.stringify(r));
    assert.equal(r.code, 'E_STORE');
    assert.match(r.reason, /audit worker failed: .*memory limit/);
  });

  it('a worker that throws on one chunk: ok:false, E_STORE at an entry no later than that chunk; the rest is checked elsewhere', async () => {
    auditWorkerHook.script = worker("if (task.chunk === 2) throw new Error('boom in chunk 2');");
    auditWorkerHook.options = { eval: true };
    const r = await bounded();
    assert.ok(!r.ok, JSON.stringify(r));
    assert.equal(r.code, 'E_STORE');
    assert.match(r.reason, /audit worker failed: boom in chunk 2/);
    assert.ok(r.index <= 128 && r.index % 64 === 0, JSON.stringify(r));
  });

  it('a worker that exits (exit code 0, no error) holding a chunk: ok:false, E_STORE, no hang', async () => {
    auditWorkerHook.script = worker('process.exit(0);');
    auditWorkerHook.options = { eval: true };
    const r = await bounded();
    assert.ok(!r.ok, JSON.stringify(r));
    assert.equal(r.code, 'E_STORE');
    assert.match(r.reason, /audit worker exited unexpectedly \(exit code 0\)/);
  });
});
