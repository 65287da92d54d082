/**
 * A deployed bot-ledger serves its running ledger as C2SP tlog-tiles on the admin API
 * (nodes/tiles-route.ts): the checkpoint as stored, hash tiles and entry bundles that match
 * the ledger, an inclusion proof computed from the fetched level-0 tile, 404 for unknown
 * paths and ledgers; what a later checkpoint covers appears without a redeploy.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { decodeEntryBundle, fromBase64, Identity, leafHash, type Ledger, nodeHash, parseCheckpoint, signEnvelope, verifyInclusion } from '../../lib';
import { ALL_NODES, type FlowNode, userDirPerTest, helper } from './util';

const OP = Identity.generate();
const DEV = Identity.generate();
const CREDS = { op: { secretKey: OP.exportSeed().toString('hex') } };

function flow(dir: string): FlowNode[] {
  return [
    { id: 'op', type: 'bot-identity', name: 'operator' },
    {
      id: 'L1',
      type: 'bot-ledger',
      name: 'Plant 1',
      origin: 'example.com/tiles-node',
      identity: 'op',
      dir,
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
    },
  ];
}

/** The part of supertest (helper.request()) that reads a binary answer. */
interface RawRequest extends PromiseLike<{ status: number; headers: Record<string, string>; body: unknown }> {
  set(name: string, value: string): RawRequest;
  buffer(on: boolean): RawRequest;
  parse(fn: (res: NodeJS.ReadableStream, done: (err: Error | null, body: Buffer) => void) => void): RawRequest;
}

/** GET a path of the admin API: status, headers and raw bytes. */
async function get(p: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  let req = (helper.request() as unknown as { get(url: string): RawRequest }).get(p).buffer(true);
  for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
  const r = await req.parse((res, done) => {
    const parts: Buffer[] = [];
    res.on('data', (d: Buffer) => parts.push(d));
    res.on('end', () => done(null, Buffer.concat(parts)));
  });
  return { status: r.status, headers: new Headers(r.headers), body: r.body as Buffer };
}

describe('bot-ledger tiles on the admin API (Node-RED)', function () {
  this.timeout(20000);
  const userDir = userDirPerTest();

  it('GET /bot-ledger/ledgers/:id/tiles/… serves the running ledger as tlog-tiles', async () => {
    await helper.load(ALL_NODES, flow(path.join(userDir(), 'l')), CREDS);
    const ledger = await (helper.getNode('L1') as unknown as { lease: { ledger: Promise<Ledger> } }).lease.ledger;
    const prefix = '/bot-ledger/ledgers/L1/tiles/';
    assert.equal((await get(prefix + 'checkpoint')).status, 404, 'nothing before the first checkpoint');
    const envs = Array.from({ length: 300 }, (_, i) => signEnvelope(DEV, { kind: 'reading', seq: i, ts: 1_700_000_000_000 + i, payload: { i } }));
    await ledger.appendAll(envs);
    await ledger.checkpoint();

    const cp = await get(prefix + 'checkpoint');
    assert.equal(cp.status, 200);
    assert.equal(cp.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(cp.body.toString('utf8'), ledger.latestCheckpoint()?.note);
    const { size, root } = parseCheckpoint(cp.body.toString('utf8').split('\n\n')[0] + '\n');
    assert.equal(size, 300);

    const tile0 = await get(prefix + 'tile/0/000');
    assert.equal(tile0.status, 200);
    assert.match(tile0.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(tile0.headers.get('access-control-allow-origin'), null, 'no CORS on the admin API');
    const tail = await get(prefix + 'tile/0/001.p/44');
    assert.equal(tail.body.length, 44 * 32);
    const top = await get(prefix + 'tile/1/000.p/1');
    assert.equal(top.body.length, 32);
    // The level-1 hash is the root of tile 0; with the 44 tail hashes it gives the checkpoint root.
    let level: Buffer[] = Array.from({ length: 256 }, (_, i) => tile0.body.subarray(i * 32, (i + 1) * 32));
    while (level.length > 1) level = Array.from({ length: level.length / 2 }, (_, i) => nodeHash(level[2 * i], level[2 * i + 1]));
    assert.ok(level[0].equals(top.body));
    // Inclusion of entry 7 from the tiles alone: its siblings inside tile 0, then MTH(D[256:300]).
    const leaves = decodeEntryBundle((await get(prefix + 'tile/entries/000')).body);
    assert.equal(leaves.length, 256);
    assert.ok(leafHash(leaves[7]).equals(tile0.body.subarray(7 * 32, 8 * 32)));
    const proof: Buffer[] = [];
    let hashes: Buffer[] = Array.from({ length: 256 }, (_, i) => tile0.body.subarray(i * 32, (i + 1) * 32));
    for (let k = 7; hashes.length > 1; k >>= 1) {
      proof.push(hashes[k ^ 1]);
      hashes = Array.from({ length: hashes.length / 2 }, (_, i) => nodeHash(hashes[2 * i], hashes[2 * i + 1]));
    }
    const t = Array.from({ length: 44 }, (_, i) => tail.body.subarray(i * 32, (i + 1) * 32));
    const mth = (h: Buffer[]): Buffer => {
      if (h.length === 1) return h[0];
      let k = 1;
      while (k * 2 < h.length) k *= 2;
      return nodeHash(mth(h.slice(0, k)), mth(h.slice(k)));
    };
    proof.push(mth(t));
    verifyInclusion(7, 300, leafHash(leaves[7]), proof, root);

    for (const p of ['tile/0/001', 'tile/0/001.p/45', 'tile/x', 'nothing', '../ledgers']) assert.equal((await get(prefix + p)).status, 404, p);
    assert.equal((await get('/bot-ledger/ledgers/nope/tiles/checkpoint')).status, 404);

    // A later checkpoint is served at once (the same open ledger).
    await ledger.appendAll(envs.map((_, i) => signEnvelope(DEV, { kind: 'reading', seq: 300 + i, ts: 1_700_000_001_000 + i, payload: { i } })));
    await ledger.checkpoint();
    assert.equal((await get(prefix + 'tile/0/001')).status, 200);
    assert.match((await get(prefix + 'checkpoint')).body.toString('utf8'), /^example\.com\/tiles-node\n600\n/);
    assert.ok(fromBase64((await get(prefix + 'checkpoint')).body.toString('utf8').split('\n')[2], 'root').length === 32);
  });
});
