import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { signEnvelope } from '../../lib/format/envelope';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { acquireLedger, failedLease, openLedgers, settledLedgers } from '../../lib/store/registry';
import { tmpDir } from '../helpers';

describe('lib/registry: shared ledgers', () => {
  let t: { dir: string; cleanup: () => void };
  const op = Identity.generate();
  const dev = Identity.generate();
  let seq = 0;
  const env = () => signEnvelope(dev, { kind: 'reading', seq: seq++, ts: Date.now(), payload: { n: seq } });
  beforeEach(() => {
    t = tmpDir('bot-reg-');
  });
  afterEach(async () => {
    await settledLedgers();
    t.cleanup();
  });

  it('shares one open ledger between users and closes it after the last release', async () => {
    const dir = path.join(t.dir, 'l');
    const a = acquireLedger({ dir, origin: 'test.example/a', identity: op });
    const b = acquireLedger({ dir, identity: op });
    const [la, lb] = await Promise.all([a.ledger, b.ledger]);
    assert.equal(la, lb);
    assert.equal(a.current, la);
    assert.deepEqual(
      openLedgers().filter((o) => o.dir === path.resolve(dir)),
      [{ dir: path.resolve(dir), users: 2 }],
    );
    await la.append(env());
    await a.release();
    await a.release(); // idempotent: does not count twice
    assert.equal(la.closed, false);
    assert.equal(a.current, undefined);
    await b.release();
    assert.equal(la.closed, true);
    assert.equal(
      openLedgers().some((o) => o.dir === path.resolve(dir)),
      false,
    );
  });

  it('opens a directory again only after its close has finished (redeploy)', async () => {
    const dir = path.join(t.dir, 'l');
    for (let round = 0; round < 5; round++) {
      const old = acquireLedger({ dir, origin: 'test.example/r', identity: op });
      const l = await old.ledger;
      const before = l.size;
      await l.append(env());
      // Release and re-acquire without awaiting the close in between.
      void old.release();
      const next = acquireLedger({ dir, origin: 'test.example/r', identity: op });
      const l2 = await next.ledger;
      assert.notEqual(l2, l);
      assert.equal(l.closed, true);
      assert.equal(l2.size, before + 1);
      await next.release();
    }
  });

  it('reports a failed open to every user, and a later acquire tries again', async () => {
    const dir = path.join(t.dir, 'missing');
    const a = acquireLedger({ dir, origin: 'test.example/m' }); // no operator key: cannot create
    await assert.rejects(a.ledger, (e: Error & { code?: string }) => e.code === 'E_KEY');
    await a.release();
    const b = acquireLedger({ dir, origin: 'test.example/m', identity: op });
    const l = await b.ledger;
    assert.equal(l.origin, 'test.example/m');
    await b.release();
  });

  it('uses defaultOrigin only to create, and refuses a user asking for another origin or key', async () => {
    const dir = path.join(t.dir, 'l');
    const a = acquireLedger({ dir, defaultOrigin: 'test.example/first', identity: op });
    assert.equal((await a.ledger).origin, 'test.example/first');
    await a.release();
    const b = acquireLedger({ dir, defaultOrigin: 'test.example/second', identity: op });
    assert.equal((await b.ledger).origin, 'test.example/first');
    const c = acquireLedger({ dir, origin: 'test.example/other' });
    await assert.rejects(c.ledger, (e: Error & { code?: string }) => e.code === 'E_NOTE');
    const d = acquireLedger({ dir, identity: dev });
    await assert.rejects(d.ledger, (e: Error & { code?: string }) => e.code === 'E_KEY');
    await Promise.all([b.release(), c.release(), d.release()]);
    assert.equal(
      openLedgers().some((o) => o.dir === path.resolve(dir)),
      false,
    );
  });

  it('replaces a shared ledger that was closed behind its back', async () => {
    const dir = path.join(t.dir, 'l');
    const a = acquireLedger({ dir, origin: 'test.example/c', identity: op });
    const l = await a.ledger;
    await l.close();
    const b = acquireLedger({ dir, identity: op });
    const l2 = await b.ledger;
    assert.notEqual(l2, l);
    assert.equal(l2.closed, false);
    await a.release(); // a no-op for the new ledger
    assert.equal(l2.closed, false);
    await b.release();
    assert.equal(l2.closed, true);
  });

  it('a failed lease rejects and releases without effect', async () => {
    const f = failedLease(new Error('nope'));
    await assert.rejects(f.ledger, /nope/);
    await f.release();
    assert.equal(f.current, undefined);
  });

  it('a ledger stays usable by other processes once released (no lock left)', async () => {
    const dir = path.join(t.dir, 'l');
    const a = acquireLedger({ dir, origin: 'test.example/x', identity: op });
    await (await a.ledger).append(env());
    await a.release();
    const direct = await Ledger.open({ dir });
    assert.equal(direct.size, 1);
    await direct.close();
  });
});
