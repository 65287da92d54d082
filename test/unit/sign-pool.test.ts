/**
 * SignPool (lib/format/sign-pool.ts): envelopes signed on worker threads are byte for byte the
 * ones signEnvelope makes (RFC 8032 and the device-profile vectors), delivered in call order;
 * the workers' queue stays bounded; close() rejects pending jobs with E_CLOSED; a worker that
 * dies fails its jobs with E_WORKER and the pool goes on.
 */
import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import { ENVELOPE_DOMAIN, type EnvelopeInput, Identity, isBotError, SignPool, type SignedEnvelope, signEnvelope, verifyPortable } from '../../lib';
import { sharedSignPool } from '../../lib/format/sign-pool';

const VECTORS = path.join(__dirname, '..', '..', '..', 'test', 'vectors');
const read = <T>(f: string): T => JSON.parse(fs.readFileSync(path.join(VECTORS, f), 'utf8')) as T;

const inputs = (n: number, from = 0): EnvelopeInput[] =>
  Array.from({ length: n }, (_, i) => ({ kind: 'reading', seq: from + i, ts: 1_767_225_600_000 + i, topic: `plant/${i % 4}`, payload: { i, t: 20 + i / 10 } }));

/** Every promise's outcome, in order, without unhandled rejections. */
const outcomes = (ps: Promise<SignedEnvelope>[]): Promise<(SignedEnvelope | Error)[]> => Promise.all(ps.map((p) => p.catch((e: Error) => e)));

describe('SignPool', function () {
  this.timeout(20000);
  const pools: SignPool[] = [];
  const pool = (id: Identity, opts: ConstructorParameters<typeof SignPool>[1]): SignPool => {
    const p = new SignPool(id, opts);
    pools.push(p);
    return p;
  };
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
  });

  it('signs the device-profile vectors and RFC 8032 keys exactly as signEnvelope does', async () => {
    const dp = read<{
      valid: {
        seed: string;
        envelope?: string;
        sig: string;
        kind?: string;
        seq: string;
        ts: string;
        topic?: string;
        payload: { bytesFill?: [number, number] };
        envelopeSha256: string;
      }[];
    }>('device-profile.json');
    for (const v of dp.valid) {
      if (v.envelope === undefined) {
        // The largest envelope (exactly 64 KiB): its size is known before signing, to the byte.
        const [byte, n] = v.payload.bytesFill as [number, number];
        const input: EnvelopeInput = { kind: v.kind ?? 'reading', seq: Number(v.seq), ts: Number(v.ts), topic: v.topic, payload: Buffer.alloc(n, byte) };
        const p = pool(Identity.fromSeed(Buffer.from(v.seed, 'hex')), { workers: 1, mode: 'always' });
        const signed = await p.sign(input);
        assert.equal(signed.envelope.sig, v.sig);
        assert.equal(crypto.createHash('sha256').update(signed.bytes).digest('hex'), v.envelopeSha256);
        assert.throws(
          () => p.sign(input, { maxBytes: signed.bytes.length - 1 }),
          (e: unknown) => isBotError(e, 'E_TOO_LARGE'),
        );
        continue;
      }
      const env = JSON.parse(v.envelope) as { kind: string; seq: number; ts: number; topic?: string; payload: unknown; enc?: string };
      const payload = env.enc === 'base64' ? Buffer.from(env.payload as string, 'base64') : (env.payload as EnvelopeInput['payload']);
      const input: EnvelopeInput = { kind: env.kind, seq: env.seq, ts: env.ts, payload, ...(env.topic === undefined ? {} : { topic: env.topic }) };
      const p = pool(Identity.fromSeed(Buffer.from(v.seed, 'hex')), { workers: 1, mode: 'always' });
      const signed = await p.sign(input);
      assert.equal(signed.bytes.toString('utf8'), v.envelope);
      assert.equal(signed.envelope.sig, v.sig);
      assert.equal(p.stats.pooled, 1);
    }
    const rfc = read<{ vectors: { secret_key: string; public_key: string }[] }>('ed25519-vectors.json');
    for (const v of rfc.vectors) {
      const id = Identity.fromSeed(Buffer.from(v.secret_key, 'hex'));
      assert.equal(id.publicKey.bytes.toString('hex'), v.public_key);
      const p = pool(id, { workers: 1, mode: 'always' });
      const got = await Promise.all(inputs(3).map((x) => p.sign(x)));
      got.forEach((g, i) => {
        assert.deepEqual(g.bytes, signEnvelope(id, inputs(3)[i]).bytes);
        // RFC 8032 §5.1.7 on the portable verifier: the signature is over the domain and the body.
        const body = g.bytes.toString().replace(/,"sig":"[^"]+"/, '');
        assert.ok(verifyPortable(Buffer.from(ENVELOPE_DOMAIN + body, 'utf8'), Buffer.from(g.envelope.sig, 'base64url'), id.publicKey.bytes));
      });
    }
  });

  it('gives the same envelopes as inline signing, in call order, over several workers and batches', async () => {
    const id = Identity.generate();
    const p = pool(id, { workers: 2, batch: 16, mode: 'always' });
    const xs = inputs(500);
    const got = await Promise.all(xs.map((x) => p.sign(x)));
    assert.deepEqual(
      got.map((g) => g.bytes.toString()),
      xs.map((x) => signEnvelope(id, x).bytes.toString()),
    );
    assert.equal(p.stats.pooled, 500);
    assert.ok(p.stats.batches >= 500 / 16);
    assert.equal(p.pending, 0);
  });

  it('keeps at most maxQueue jobs in the workers: the caller signs the rest itself, still in order', async () => {
    const id = Identity.generate();
    const p = pool(id, { workers: 1, batch: 8, maxQueue: 32, mode: 'always' });
    const xs = inputs(1000);
    const ps = xs.map((x) => p.sign(x));
    assert.ok(p.inWorkers <= 32, `${p.inWorkers} jobs in the workers`);
    assert.equal(p.pending, 1000);
    let spaced = false;
    void p.whenSpace().then(() => (spaced = true));
    const got = await Promise.all(ps);
    assert.ok(spaced);
    assert.ok(p.stats.maxInWorkers <= 32, `at most ${p.stats.maxInWorkers} in the workers`);
    assert.ok(p.stats.inline > 0 && p.stats.pooled > 0);
    assert.deepEqual(
      got.map((g) => g.envelope.seq),
      xs.map((x) => x.seq),
    );
    assert.equal(got[999].bytes.toString(), signEnvelope(id, xs[999]).bytes.toString());
  });

  it('signs inline when calls come at a low rate, and starts no worker', async () => {
    const id = Identity.generate();
    const p = pool(id, { workers: 1 });
    for (const x of inputs(4)) {
      await p.sign(x);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(p.stats.inline, 4);
    assert.equal(p.stats.workers, 0);
    // A burst goes to the workers.
    await Promise.all(inputs(200, 4).map((x) => p.sign(x)));
    assert.ok(p.stats.pooled > 0);
    assert.equal(p._threads().length, 1);
  });

  it('refuses a bad input at once, and rejects pending jobs with E_CLOSED on close', async () => {
    const id = Identity.generate();
    const p = pool(id, { workers: 1, mode: 'always' });
    assert.throws(
      () => p.sign({ kind: 'Bad Kind', seq: 0, ts: 0, payload: null }),
      (e: unknown) => isBotError(e, 'E_ENVELOPE'),
    );
    assert.throws(
      () => p.sign({ kind: 'reading', seq: 0, ts: 0, payload: 'x'.repeat(200) }, { maxBytes: 200 }),
      (e: unknown) => isBotError(e, 'E_TOO_LARGE'),
    );
    const ps = outcomes(inputs(200).map((x) => p.sign(x)));
    await p.close();
    const got = await ps;
    assert.ok(got.every((g) => isBotError(g, 'E_CLOSED')));
    assert.equal(p._threads().length, 0);
    await assert.rejects(p.sign(inputs(1)[0]), (e: unknown) => isBotError(e, 'E_CLOSED'));
  });

  it('fails the jobs of a worker that dies with E_WORKER, then goes on with a new one (inline after maxRestarts)', async () => {
    const id = Identity.generate();
    const p = pool(id, { workers: 1, batch: 8, mode: 'always', maxRestarts: 2 });
    const xs = inputs(64);
    const ps = outcomes(xs.map((x) => p.sign(x)));
    await p._threads()[0].terminate();
    const got = await ps;
    assert.ok(got.some((g) => isBotError(g, 'E_WORKER')));
    // The seed is in no error, in the pool's inspection or JSON.
    const seed = id.exportSeed();
    const shown = [
      util.inspect(p, { depth: 6, showHidden: true }),
      JSON.stringify(p),
      ...got.map((g) => (g instanceof Error ? `${g.message} ${g.stack}` : '')),
    ].join('\n');
    for (const form of [seed.toString('hex'), seed.toString('base64'), seed.toString('base64url')]) assert.ok(!shown.includes(form));
    got.forEach((g, i) => {
      if (!(g instanceof Error)) assert.equal(g.bytes.toString(), signEnvelope(id, xs[i]).bytes.toString());
    });
    assert.equal(p.stats.workerDeaths, 1);
    const again = await Promise.all(inputs(32, 64).map((x) => p.sign(x)));
    assert.equal(again.length, 32);
    assert.equal(p.stats.workers, 1);
    // A second death reaches maxRestarts: the pool signs on the calling thread from then on.
    const more = outcomes(inputs(16, 96).map((x) => p.sign(x)));
    await p._threads()[0].terminate();
    await more;
    const before = p.stats.pooled;
    const last = await Promise.all(inputs(16, 112).map((x) => p.sign(x)));
    assert.equal(p.stats.pooled, before);
    assert.equal(last[15].bytes.toString(), signEnvelope(id, inputs(16, 112)[15]).bytes.toString());
  });

  it('sharedSignPool: one pool per identity; a share taken while the last one drains keeps it open', async () => {
    const id = Identity.generate();
    const a = sharedSignPool(id, { workers: 1 });
    const b = sharedSignPool(id);
    assert.equal(a.pool, b.pool, 'two shares of one identity, one pool');
    const other = sharedSignPool(Identity.generate());
    assert.notEqual(other.pool, a.pool);
    await other.release();
    await a.release();
    const env = await b.pool.sign({ kind: 'reading', seq: 1, ts: 1, payload: 1 });
    assert.equal(env.bytes.toString(), signEnvelope(id, { kind: 'reading', seq: 1, ts: 1, payload: 1 }).bytes.toString());
    // The last share goes; a new one is taken before its drain ends: the same pool, still open.
    const slow = b.pool.sign({ kind: 'reading', seq: 2, ts: 1, payload: 2 });
    const going = b.release(2000);
    const c = sharedSignPool(id);
    assert.equal(c.pool, b.pool);
    await going;
    await slow;
    await c.pool.sign({ kind: 'reading', seq: 3, ts: 1, payload: 3 });
    await c.release();
    await assert.rejects(c.pool.sign({ kind: 'reading', seq: 4, ts: 1, payload: 4 }), (e: unknown) => isBotError(e, 'E_CLOSED'));
    const d = sharedSignPool(id);
    assert.notEqual(d.pool, c.pool, 'a share after the close makes a new pool');
    await d.release();
  });
});
