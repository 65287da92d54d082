/**
 * The witness (c2sp.org/tlog-witness@v1.0.0 add-checkpoint) and equivocation evidence, over
 * real ledgers in LevelDB: checkpoints come from a Ledger, forks from a second ledger with
 * the same operator key and origin, or from signCheckpoint over a different root.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import {
  type AuxStore,
  cosignatureMessage,
  Identity,
  Ledger,
  NoteVerifier,
  openNote,
  parseCheckpoint,
  parseNote,
  signCheckpoint,
  signEnvelope,
} from '../../lib';
import {
  type AddCheckpointResult,
  formatAddCheckpointRequest,
  formatAddCheckpointResponse,
  MAX_SUSPECTS_PER_LOG,
  parseAddCheckpointRequest,
  parseAddCheckpointResponse,
  Witness,
} from '../../lib/consortium/witness';
import { checkEvidence, consistencyRoots, evidenceToJson, explainEvidence, parseEvidence } from '../../lib/format/equivocation';
import { tmpDir } from '../helpers';

const ORIGIN = 'example.com/plant-1';
const op = Identity.generate();
const logV = NoteVerifier.ed25519(ORIGIN, op.publicKey);
const device = Identity.generate();
const wid = Identity.generate();
const W_NAME = 'partner-b.example/witness';
const cosignerV = NoteVerifier.cosigner(W_NAME, wid.publicKey);

/** Grow a ledger to size n with readings tagged tag, sign a checkpoint, return its note. */
async function growTo(led: Ledger, n: number, tag: string): Promise<string> {
  let seq = (await led.lastSeq(device.did)) + 1;
  const envs = [];
  for (let i = led.size; i < n; i++) envs.push(signEnvelope(device, { kind: 'reading', seq: seq++, ts: 1_700_000_000_000 + i, payload: { tag, i } }));
  await Promise.all(envs.map((e) => led.append(e)));
  const cp = await led.checkpoint();
  if (cp && cp.size === n) return cp.note;
  const at = await led.checkpointAt(n);
  assert.ok(at, `checkpoint at ${n}`);
  return at.note;
}

async function request(led: Ledger, old: number, note: string): Promise<string> {
  const size = parseCheckpoint(parseNote(note).text).size;
  const proof = old === 0 ? [] : await led.consistencyProof(old, size);
  return formatAddCheckpointRequest(old, proof, note);
}

function assertOk(r: AddCheckpointResult): asserts r is Extract<AddCheckpointResult, { code: 'ok' }> {
  assert.equal(r.code, 'ok', `expected ok, got ${JSON.stringify(r)}`);
}

describe('witness (tlog-witness add-checkpoint)', function () {
  this.timeout(20000);
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger; // the honest log
  let fork: Ledger; // same operator key and origin, different entries
  let wled: Ledger; // the witness partner's own ledger: its aux store holds witness state
  let store: AuxStore;
  let now: number;
  const clock = (): number => now;
  const witness = (s: AuxStore = store): Witness => new Witness({ name: W_NAME, identity: wid, store: s, logs: [{ origin: ORIGIN, key: op.did }], clock });

  beforeEach(async () => {
    t = tmpDir('bot-witness-');
    now = 1_700_000_000_000;
    led = await Ledger.open({ dir: `${t.dir}/log`, origin: ORIGIN, identity: op });
    fork = await Ledger.open({ dir: `${t.dir}/fork`, origin: ORIGIN, identity: op });
    wled = await Ledger.open({ dir: `${t.dir}/w`, origin: 'example.com/partner-b', identity: wid });
    store = wled.aux;
  });
  afterEach(async () => {
    await Promise.all([led.close(), fork.close(), wled.close()]);
    t.cleanup();
  });

  it('cosigns honest growth over several steps, each cosignature verifying with the cosigner key', async () => {
    const w = witness();
    assert.equal(w.vkey, cosignerV.toString());
    assert.deepEqual(await w.state(ORIGIN), { origin: ORIGIN, status: 'new', size: 0, evidence: 0, suspects: 0 });
    let old = 0;
    for (const n of [3, 5, 8, 13, 16]) {
      const note = await growTo(led, n, 'honest');
      now += 61_000;
      const r = await w.addCheckpoint(await request(led, old, note));
      assertOk(r);
      assert.equal(r.cosignatures.length, 1);
      const opened = openNote(note + r.cosignatures[0], [cosignerV]);
      assert.equal(opened.verified.length, 1);
      assert.equal(opened.verified[0].timestamp, Math.floor(now / 1000));
      // The signed message is exactly tlog-cosignature's: header, time line, checkpoint body.
      const raw = Buffer.from(r.cosignatures[0].trim().split(' ')[2], 'base64');
      assert.ok(wid.publicKey.verify(cosignatureMessage(parseNote(note).text, Math.floor(now / 1000)), raw.subarray(12)));
      const st = await w.state(ORIGIN);
      assert.equal(st.status, 'ok');
      assert.equal(st.size, n);
      old = n;
    }
    // The same checkpoint again (old = size, empty proof) is cosigned again.
    const again = await w.addCheckpoint(await request(led, 16, (await led.checkpointAt(16))!.note));
    assertOk(again);
  });

  it('never cosigns a rollback: 409 with its current size (400 when old is above the size)', async () => {
    const w = witness();
    const n5 = await growTo(led, 5, 'h');
    assertOk(await w.addCheckpoint(await request(led, 0, n5)));
    const n8 = await growTo(led, 8, 'h');
    assertOk(await w.addCheckpoint(await request(led, 5, n8)));
    const back = await w.addCheckpoint(formatAddCheckpointRequest(5, [], n5));
    assert.equal(back.code, 'conflict');
    assert.equal(back.status, 409);
    assert.ok(back.code === 'conflict' && back.size === 8 && !back.equivocation);
    assert.equal(formatAddCheckpointResponse(back).body, '8\n');
    assert.equal(formatAddCheckpointResponse(back).contentType, 'text/x.tlog.size');
    const fromZero = await w.addCheckpoint(formatAddCheckpointRequest(0, [], n5));
    assert.ok(fromZero.code === 'conflict' && fromZero.size === 8);
    const over = await w.addCheckpoint(formatAddCheckpointRequest(8, [], n5));
    assert.equal(over.status, 400);
    assert.equal((await w.state(ORIGIN)).size, 8);
  });

  it('answers 409 with its size to a stale old size', async () => {
    const w = witness();
    assertOk(await w.addCheckpoint(await request(led, 0, await growTo(led, 3, 'h'))));
    assertOk(await w.addCheckpoint(await request(led, 3, await growTo(led, 6, 'h'))));
    const n9 = await growTo(led, 9, 'h');
    const stale = await w.addCheckpoint(await request(led, 3, n9));
    assert.ok(stale.code === 'conflict' && stale.size === 6 && !stale.equivocation, JSON.stringify(stale));
    // The client learns the size from the 409 body and retries.
    const parsed = parseAddCheckpointResponse(409, formatAddCheckpointResponse(stale).body);
    assert.ok(parsed.code === 'conflict');
    assertOk(await w.addCheckpoint(await request(led, parsed.size, n9)));
  });

  it('keeps evidence of a fork at the same size, reports conflict and refuses the log from then on', async () => {
    const w = witness();
    const n6 = await growTo(led, 6, 'h');
    assertOk(await w.addCheckpoint(await request(led, 0, n6)));
    const f6 = await growTo(fork, 6, 'fork'); // same key and origin, other entries
    const r = await w.addCheckpoint(formatAddCheckpointRequest(6, [], f6));
    assert.ok(r.code === 'conflict' && r.size === 6 && r.equivocation, JSON.stringify(r));
    const st = await w.state(ORIGIN);
    assert.equal(st.status, 'conflict');
    assert.equal(st.evidence, 1);
    const [ev] = await w.evidence(ORIGIN);
    assert.equal(ev.kind, 'fork');
    assert.equal(ev.witness, W_NAME);
    assert.ok(checkEvidence(ev, logV));
    const published = evidenceToJson(ev);
    assert.ok(checkEvidence(JSON.parse(published), logV));
    assert.ok(checkEvidence(published, [logV]));
    assert.deepEqual(parseEvidence(published), ev);
    // Another key does not make it evidence against this log; nor do equal roots.
    assert.equal(checkEvidence(ev, NoteVerifier.ed25519(ORIGIN, Identity.generate().publicKey)), false);
    assert.equal(checkEvidence({ ...ev, b: ev.a }, logV), false);
    assert.equal(checkEvidence({ ...ev, kind: 'inconsistent' }, logV), false);
    assert.match(explainEvidence({ ...ev, a: 'junk' }, logV).reason, /not signed by the log/);
    // The honest next checkpoint is refused too: the log equivocated.
    const n9 = await growTo(led, 9, 'h');
    const after = await w.addCheckpoint(await request(led, 6, n9));
    assert.ok(after.code === 'conflict' && after.equivocation);
    assert.equal((await w.state(ORIGIN)).size, 6);
  });

  it('detects a forged checkpoint (signCheckpoint over another root) at the stored size even with a wrong old size', async () => {
    const w = witness();
    const n4 = await growTo(led, 4, 'h');
    assertOk(await w.addCheckpoint(await request(led, 0, n4)));
    const forged = signCheckpoint(ORIGIN, 4, crypto.randomBytes(32), op);
    const r = await w.addCheckpoint(formatAddCheckpointRequest(0, [], forged));
    assert.ok(r.code === 'conflict' && r.equivocation && r.size === 4);
    const [ev] = await w.evidence(ORIGIN);
    assert.ok(checkEvidence(ev, logV));
  });

  it('answers 422 to a fork at a larger size and keeps the inconsistent proof as evidence', async () => {
    const w = witness();
    const n3 = await growTo(led, 3, 'h');
    assertOk(await w.addCheckpoint(await request(led, 0, n3)));
    const f7 = await growTo(fork, 7, 'fork');
    const r = await w.addCheckpoint(await request(fork, 3, f7)); // the fork's own, internally valid proof
    assert.ok(r.code === 'bad-proof' && r.status === 422 && r.equivocation, JSON.stringify(r));
    assert.equal((await w.state(ORIGIN)).status, 'conflict');
    const [ev] = await w.evidence(ORIGIN);
    assert.equal(ev.kind, 'inconsistent');
    assert.equal(ev.proof.length, (await fork.consistencyProof(3, 7)).length);
    assert.ok(checkEvidence(ev, logV), explainEvidence(ev, logV).reason);
    // The evidence shows the fork's prefix root at 3, which differs from the signed one.
    const roots = consistencyRoots(
      3,
      7,
      ev.proof.map((p) => Buffer.from(p, 'base64')),
    );
    assert.ok(roots && roots.oldRoot.equals(await fork.rootAt(3)) && !roots.oldRoot.equals(await led.rootAt(3)));
    // An honest proof between the same sizes of the honest log is no evidence.
    const honest = { ...ev, b: await growTo(led, 7, 'h'), proof: (await led.consistencyProof(3, 7)).map((h) => h.toString('base64')) };
    assert.equal(checkEvidence(honest, logV), false);
    const refused = await w.addCheckpoint(await request(led, 3, honest.b));
    assert.ok(refused.code === 'conflict' && refused.equivocation);
  });

  it("does not let a stranger's garbage proof put an honest log in conflict (suspect record only)", async () => {
    const w = witness();
    const n4 = await growTo(led, 4, 'h');
    assertOk(await w.addCheckpoint(await request(led, 0, n4)));
    const n10 = await growTo(led, 10, 'h');
    for (let i = 0; i < MAX_SUSPECTS_PER_LOG + 3; i++) {
      const junk = formatAddCheckpointRequest(4, [crypto.randomBytes(32), crypto.randomBytes(32)], n10);
      const r = await w.addCheckpoint(junk);
      assert.ok(r.code === 'bad-proof' && !r.equivocation);
    }
    // A real fork whose old size is a power of two cannot be proven by its proof: also a suspect.
    const f10 = await growTo(fork, 10, 'fork');
    const r = await w.addCheckpoint(await request(fork, 4, f10));
    assert.ok(r.code === 'bad-proof' && !r.equivocation);
    const st = await w.state(ORIGIN);
    assert.equal(st.status, 'ok');
    assert.equal(st.suspects, MAX_SUSPECTS_PER_LOG);
    assert.equal((await w.suspects(ORIGIN)).length, MAX_SUSPECTS_PER_LOG);
    assert.deepEqual(await w.evidence(ORIGIN), []);
    assertOk(await w.addCheckpoint(await request(led, 4, n10)));
    assert.equal((await w.state(ORIGIN)).size, 10);
  });

  it('answers 403 to checkpoints without a valid signature of the log key', async () => {
    const w = witness();
    const other = signCheckpoint(ORIGIN, 0, crypto.createHash('sha256').digest(), Identity.generate());
    const r1 = await w.addCheckpoint(formatAddCheckpointRequest(0, [], other));
    assert.equal(r1.status, 403);
    const good = await growTo(led, 2, 'h');
    const sigs = parseNote(good).signatures;
    const bytes = Buffer.from(sigs[0].line.trim().split(' ')[2], 'base64');
    bytes[bytes.length - 1] ^= 1;
    const tampered = `${parseNote(good).text}\n— ${ORIGIN} ${bytes.toString('base64')}\n`;
    const r2 = await w.addCheckpoint(formatAddCheckpointRequest(0, [], tampered));
    assert.equal(r2.code, 'bad-signature');
    assert.equal((await w.state(ORIGIN)).status, 'new');
  });

  it('answers 404 to an unknown origin and 400 to malformed requests', async () => {
    const w = witness();
    const stranger = Identity.generate();
    const unknown = signCheckpoint('example.com/unknown', 0, crypto.createHash('sha256').digest(), stranger);
    const r = await w.addCheckpoint(formatAddCheckpointRequest(0, [], unknown));
    assert.ok(r.code === 'unknown-log' && r.status === 404);
    const note = await growTo(led, 3, 'h');
    const bodies = [
      'garbage',
      `old 01\n\n${note}`,
      `old -1\n\n${note}`,
      `old 0\nnot-base64!\n\n${note}`,
      `old 0\n${note}`, // no blank line after the old size
      `old 3\n${Array.from({ length: 64 }, () => crypto.randomBytes(32).toString('base64')).join('\n')}\n\n${note}`,
      formatAddCheckpointRequest(0, [crypto.randomBytes(32)], note), // proof from size 0
      formatAddCheckpointRequest(4, [], note), // old above the size
      'x'.repeat(70_000),
    ];
    for (const b of bodies) {
      const res = await w.addCheckpoint(b);
      assert.equal(res.status, 400, `${b.slice(0, 30)} → ${JSON.stringify(res)}`);
    }
    assert.equal((await w.state(ORIGIN)).status, 'new');
    await assert.rejects(w.state('example.com/unknown'), { code: 'E_NOT_FOUND' });
  });

  it('keeps refusing a rollback and a forked log after a restart on the same store', async () => {
    let w = witness();
    const n5 = await growTo(led, 5, 'h');
    assertOk(await w.addCheckpoint(await request(led, 0, n5)));
    const n8 = await growTo(led, 8, 'h');
    assertOk(await w.addCheckpoint(await request(led, 5, n8)));
    await wled.close();
    wled = await Ledger.open({ dir: `${t.dir}/w`, create: false });
    w = witness(wled.aux);
    const back = await w.addCheckpoint(formatAddCheckpointRequest(5, [], n5));
    assert.ok(back.code === 'conflict' && back.size === 8);
    assert.equal((await w.state(ORIGIN)).size, 8);
    // Equivocation evidence and the conflict status survive a restart as well.
    const f8 = await growTo(fork, 8, 'f');
    assert.equal((await w.addCheckpoint(formatAddCheckpointRequest(8, [], f8))).code, 'conflict');
    await wled.close();
    wled = await Ledger.open({ dir: `${t.dir}/w`, create: false });
    w = witness(wled.aux);
    assert.equal((await w.state(ORIGIN)).status, 'conflict');
    assert.ok(checkEvidence((await w.evidence(ORIGIN))[0], logV));
    const n11 = await growTo(led, 11, 'h');
    const refused = await w.addCheckpoint(await request(led, 8, n11));
    assert.ok(refused.code === 'conflict' && refused.equivocation);
  });

  it('lets only one of concurrent requests pass the old-size check (even across Witness objects on one store)', async () => {
    // A store whose reads are slow, so that unserialized requests would all read the old state.
    const slow: AuxStore = {
      get: async (k) => {
        await new Promise((r) => setTimeout(r, 15));
        return store.get(k);
      },
      batch: (ops) => store.batch(ops),
      iterator: (p) => store.iterator(p),
    };
    const w1 = witness(slow);
    const w2 = witness(slow);
    assertOk(await w1.addCheckpoint(await request(led, 0, await growTo(led, 3, 'h'))));
    const n5 = await growTo(led, 5, 'h');
    const n9 = await growTo(led, 9, 'h');
    const n12 = await growTo(led, 12, 'h');
    const bodies = [await request(led, 3, n5), await request(led, 3, n9), await request(led, 3, n12), await request(led, 3, n12)];
    const results = await Promise.all(bodies.map((b, i) => (i % 2 ? w2 : w1).addCheckpoint(b)));
    const oks = results.filter((r) => r.code === 'ok');
    assert.equal(oks.length, 1, JSON.stringify(results));
    const winner = results.findIndex((r) => r.code === 'ok');
    const size = [5, 9, 12, 12][winner];
    for (const r of results) if (r.code !== 'ok') assert.ok(r.code === 'conflict' && r.size === size, JSON.stringify(r));
    assert.equal((await w1.state(ORIGIN)).size, size);
  });

  it('formats and parses request and response bodies', async () => {
    const note = await growTo(led, 7, 'h');
    const proof = await led.consistencyProof(3, 7);
    const body = formatAddCheckpointRequest(3, proof, note);
    assert.ok(body.startsWith(`old 3\n${proof[0].toString('base64')}\n`));
    const req = parseAddCheckpointRequest(Buffer.from(body, 'utf8'));
    assert.equal(req.oldSize, 3);
    assert.deepEqual(
      req.proof,
      proof.map((p) => Buffer.from(p)),
    );
    assert.equal(req.checkpoint, note);
    const w = witness();
    const ok = await w.addCheckpoint(formatAddCheckpointRequest(0, [], note));
    assertOk(ok);
    const resp = formatAddCheckpointResponse(ok);
    assert.equal(resp.status, 200);
    const back = parseAddCheckpointResponse(resp.status, resp.body);
    assertOk(back);
    assert.deepEqual(back.cosignatures, ok.cosignatures);
    for (const [status, code] of [
      [400, 'bad-request'],
      [403, 'bad-signature'],
      [404, 'unknown-log'],
      [422, 'bad-proof'],
    ] as const) {
      assert.equal(parseAddCheckpointResponse(status, 'why\n').code, code);
    }
    assert.throws(() => parseAddCheckpointResponse(409, 'eight\n'), { code: 'E_NOTE' });
    assert.throws(() => parseAddCheckpointResponse(500, ''), { code: 'E_NOTE' });
    assert.throws(() => parseAddCheckpointResponse(200, 'not a signature\n'), { code: 'E_NOTE' });
  });
});
