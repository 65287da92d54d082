/**
 * C2SP tlog-tiles: the path scheme, partial tiles and entry bundles of lib/format/tlog-tiles.ts
 * against the spec's own examples, the parser fuzzed (never throws, accepts only canonical
 * paths), and the tiles view of a real LevelDB ledger (lib/store/tile-reader.ts): its HTTP
 * answers for odd paths, and an entry too large for a bundle.
 */
import { strict as assert } from 'node:assert';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import {
  DEFAULT_MAX_ENTRY_BYTES,
  decodeEntryBundle,
  encodeEntryBundle,
  encodeTileIndex,
  entriesPath,
  Identity,
  leafHash,
  Ledger,
  MAX_BUNDLE_ENTRY_BYTES,
  parseTilePath,
  partialTiles,
  refPath,
  type SignedEnvelope,
  signEnvelope,
  TileReader,
  tilePath,
  tileResponse,
  tilesAtLevel,
} from '../../lib';
import { tmpDir } from '../helpers';

const op = Identity.generate();
const device = Identity.generate();

function readings(n: number, seq0 = 0): SignedEnvelope[] {
  return Array.from({ length: n }, (_, i) =>
    signEnvelope(device, { kind: 'reading', seq: seq0 + i, ts: 1_700_000_000_000 + seq0 + i, topic: 'plant/1/temp', payload: { v: i } }),
  );
}

describe('tlog-tiles format', () => {
  it('encodes N as x-prefixed 3-digit elements (spec: 1234067 is x001/x234/067)', () => {
    assert.equal(encodeTileIndex(1234067), 'x001/x234/067');
    assert.equal(encodeTileIndex(0), '000');
    assert.equal(encodeTileIndex(999), '999');
    assert.equal(encodeTileIndex(1000), 'x001/000');
    assert.equal(tilePath(0, 1234067), 'tile/0/x001/x234/067');
    assert.equal(tilePath(2, 5, 17), 'tile/2/005.p/17');
    assert.equal(entriesPath(3, 112), 'tile/entries/003.p/112');
    assert.equal(entriesPath(3), 'tile/entries/003');
    assert.throws(() => tilePath(64, 0), { code: 'E_RANGE' });
    assert.throws(() => tilePath(0, 0, 0), { code: 'E_RANGE' });
    assert.throws(() => tilePath(0, -1), { code: 'E_RANGE' });
  });

  it("takes the ledger's largest default entry in a bundle, and a default ledger refuses one byte more (uint16 lengths)", () => {
    assert.equal(DEFAULT_MAX_ENTRY_BYTES, MAX_BUNDLE_ENTRY_BYTES);
    const sized = (n: number): SignedEnvelope => {
      const probe = signEnvelope(device, { kind: 'reading', seq: 0, ts: 1, payload: { v: '' } }).bytes.length;
      return signEnvelope(device, { kind: 'reading', seq: 0, ts: 1, payload: { v: 'x'.repeat(n - probe) } }, { maxBytes: n });
    };
    const largest = sized(DEFAULT_MAX_ENTRY_BYTES);
    assert.equal(largest.bytes.length, 65535);
    assert.deepEqual(decodeEntryBundle(encodeEntryBundle([largest.bytes])), [largest.bytes]);
    const over = sized(DEFAULT_MAX_ENTRY_BYTES + 1);
    assert.throws(() => encodeEntryBundle([over.bytes]), { code: 'E_TOO_LARGE' });
    assert.throws(() => signEnvelope(device, { kind: 'reading', seq: 0, ts: 1, payload: over.envelope.payload }), { code: 'E_TOO_LARGE' });
  });

  it('has the partial tiles of the spec examples (size 70,000; size 256)', () => {
    assert.deepEqual(tilesAtLevel(70000, 0), { full: 273, partial: 112 });
    assert.deepEqual(tilesAtLevel(70000, 1), { full: 1, partial: 17 });
    assert.deepEqual(tilesAtLevel(70000, 2), { full: 0, partial: 1 });
    assert.deepEqual(partialTiles(70000).map(refPath), ['tile/0/273.p/112', 'tile/1/001.p/17', 'tile/2/000.p/1']);
    assert.deepEqual(partialTiles(256).map(refPath), ['tile/1/000.p/1']);
    assert.deepEqual(partialTiles(0), []);
  });

  it('parses exactly the canonical paths, and every path it writes', () => {
    for (const good of ['tile/0/000', 'tile/63/x001/x234/067.p/255', 'tile/entries/x001/000.p/1', 'tile/1/999']) {
      assert.equal(refPath(parseTilePath(good) ?? assert.fail(good)), good);
    }
    for (const bad of [
      'tile/00/000',
      'tile/64/000',
      'tile/0/0',
      'tile/0/x000/001', // a leading x000 element: not the canonical spelling
      'tile/0/001/002',
      'tile/0/x001',
      'tile/0/000.p/256',
      'tile/0/000.p/0',
      'tile/0/000.p/07',
      'tile/0/000.p/',
      'tile/0/000.p',
      'tile/0/000/',
      'tile/entries/000.p/1/x',
      'tile/-1/000',
      'tile/0/-01',
      '/tile/0/000',
      'tile//000',
      'tile/0/x001/x002/x003/x004/x005/x006/007',
      'tile/0/000.p/1.p/2',
      'tile/1e1/000',
      'tile/ 0/000',
      'checkpoint',
      '',
    ]) {
      assert.equal(parseTilePath(bad), undefined, bad);
    }
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 0, max: 63 }), fc.maxSafeNat(), fc.integer({ min: 1, max: 256 }), (entries, level, index, width) => {
        const ref = { entries, level: entries ? 0 : level, index, width };
        assert.deepEqual(parseTilePath(refPath(ref)), ref);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary paths, and what it accepts round-trips (fuzz)', () => {
    const piece = fc.oneof(
      fc.constantFrom('tile', 'entries', 'x', '.p', '000', 'x000', '255', '256', '/', '..', '%2F', '\0', '0', '63'),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.array(piece, { maxLength: 12 }).map((a) => a.join('')),
        ),
        (p) => {
          const ref = parseTilePath(p);
          if (ref) assert.equal(refPath(ref), p);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('encodes entry bundles as big-endian uint16 length-prefixed entries, at most 65,535 bytes each', () => {
    const entries = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(0xffff, 7)];
    const b = encodeEntryBundle(entries);
    assert.equal(b.length, 2 + 1 + 2 + 2 + 0xffff);
    assert.deepEqual([...b.subarray(0, 5)], [0, 1, 0x61, 0, 0]);
    assert.deepEqual([...b.subarray(5, 7)], [0xff, 0xff]);
    assert.deepEqual(decodeEntryBundle(b), entries);
    assert.throws(() => encodeEntryBundle([Buffer.alloc(0x10000)]), { code: 'E_TOO_LARGE' });
    assert.throws(() => decodeEntryBundle(Buffer.from([0, 5, 1, 2])), { code: 'E_RANGE' });
    assert.throws(() => decodeEntryBundle(Buffer.from([0])), { code: 'E_RANGE' });
  });
});

describe('tlog-tiles view of a ledger', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let led: Ledger;
  before(async () => {
    t = tmpDir('bot-tiles-');
    led = await Ledger.open({ dir: t.dir, origin: 'example.com/tiles', identity: op, maxEntryBytes: 70000 });
    await led.appendAll(readings(300));
    await led.checkpoint();
    // Entry 300 does not fit a bundle (its length is above a uint16); it is in the tree all the same.
    await led.append(signEnvelope(device, { kind: 'reading', seq: 300, ts: 1_700_000_000_300, payload: { v: 'x'.repeat(66000) } }, { maxBytes: 70000 }));
    await led.appendAll(readings(210, 301));
    await led.checkpoint();
  });
  after(async () => {
    await led.close();
    t.cleanup();
  });

  it('serves tiles and bundles up to the latest checkpoint only, with the spec headers', async () => {
    const reader = new TileReader(led);
    assert.equal(reader.size, 511);
    const ok = await tileResponse(reader, { url: '/tile/0/000', method: 'GET' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['Content-Type'], 'application/octet-stream');
    assert.match(ok.headers['Cache-Control'], /immutable/);
    assert.equal(ok.body.length, 8192);
    assert.equal(ok.headers['Access-Control-Allow-Origin'], undefined, 'no CORS unless asked');
    assert.equal((await tileResponse(reader, { url: '/tile/0/000' }, { cors: true })).headers['Access-Control-Allow-Origin'], '*');
    assert.equal((await tileResponse(reader, { url: '/log/tile/0/000' }, { prefix: '/log/' })).status, 200);
    assert.equal((await tileResponse(reader, { url: '/tile/0/000' }, { prefix: '/log/' })).status, 404);
    const first = await led.get(0);
    assert.ok(ok.body.subarray(0, 32).equals(first.leafHash));
    const partial = await tileResponse(reader, { url: '/tile/0/001.p/255?x=1' });
    assert.equal(partial.status, 200);
    assert.doesNotMatch(partial.headers['Cache-Control'], /immutable/);
    const bundle = await tileResponse(reader, { url: '/tile/entries/000', acceptEncoding: 'br, gzip;q=0.5' });
    assert.equal(bundle.headers['Content-Encoding'], 'gzip');
    const leaves = decodeEntryBundle(zlib.gunzipSync(bundle.body));
    assert.equal(leaves.length, 256);
    assert.ok(leafHash(leaves[5]).equals(ok.body.subarray(5 * 32, 6 * 32)));
    const plain = await tileResponse(reader, { url: '/tile/entries/000', acceptEncoding: 'gzip;q=0' });
    assert.equal(plain.headers['Content-Encoding'], undefined);
    assert.equal(plain.headers.Vary, 'Accept-Encoding');
    const cp = await tileResponse(reader, { url: '/checkpoint' });
    assert.equal(cp.headers['Content-Type'], 'text/plain; charset=utf-8');
    assert.equal(cp.body.toString('utf8'), led.latestCheckpoint()?.note);
    const head = await tileResponse(reader, { url: '/tile/0/000', method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['Content-Length'], '8192');
    for (const url of [
      '/tile/0/002',
      '/tile/0/001',
      '/tile/0/001.p/256',
      '/tile/1/000.p/2',
      '/tile/2/000.p/1',
      '/tile/entries/001',
      '/',
      '/tile/0/000/',
      '/../checkpoint',
    ]) {
      assert.equal((await tileResponse(reader, { url })).status, 404, url);
    }
    assert.equal((await tileResponse(reader, { url: '/tile/1/000.p/1' })).status, 200);
    const post = await tileResponse(reader, { url: '/checkpoint', method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.Allow, 'GET, HEAD');
  });

  it('answers an entry bundle it cannot encode with an error, not a crash; the hash tiles stay', async () => {
    const reader = new TileReader(led);
    const r = await tileResponse(reader, { url: '/tile/entries/001.p/255' });
    assert.equal(r.status, 500);
    assert.match(r.body.toString(), /entry 300 .* 65535/);
    assert.equal((await tileResponse(reader, { url: '/tile/0/001.p/255' })).status, 200);
    await assert.rejects(reader.tile({ entries: true, level: 0, index: 1, width: 255 }), { code: 'E_TOO_LARGE' });
  });

  it('lists the tiles a static copy needs, with the partial tiles of earlier checkpoints', async () => {
    const paths: string[] = [];
    for await (const ref of new TileReader(led).refs()) paths.push(refPath(ref));
    // size 300 → 0/001.p/44 (its full tile is not published at 511), 1/000.p/1; size 511 → 0/001.p/255, 1/000.p/1
    assert.deepEqual(paths, [
      'tile/0/000',
      'tile/entries/000',
      'tile/0/001.p/44',
      'tile/entries/001.p/44',
      'tile/0/001.p/255',
      'tile/entries/001.p/255',
      'tile/1/000.p/1',
    ]);
  });

  it('never throws, and answers 200 only for a published resource, whatever the request (fuzz)', async () => {
    const reader = new TileReader(led);
    const piece = fc.oneof(
      fc.constantFrom('tile/', 'entries/', '0/', '1/', 'x001/', '000', '001', '.p/', '44', '255', 'checkpoint', '?', '#', '%00', '..', '//'),
      fc.string({ maxLength: 5 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 8 }), fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', ''), async (pieces, method) => {
        const url = '/' + pieces.join('');
        const r = await tileResponse(reader, { url, method: method || undefined });
        assert.ok([200, 404, 405, 500].includes(r.status), `${r.status} for ${url}`);
        if (r.status === 200) assert.ok(url.split(/[?#]/)[0] === '/checkpoint' || parseTilePath(url.split(/[?#]/)[0].slice(1)), url);
      }),
      { numRuns: 1500 },
    );
  });
});
