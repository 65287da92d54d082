/**
 * Issue 15: the ledger as a C2SP tlog-tiles log, checked by a client that knows only the spec.
 * A ledger of a few thousand signed entries (real LevelDB) with two checkpoints at sizes that
 * are not multiples of 256; `bot-ledger serve` runs as a child process and `bot-ledger
 * export-tiles` writes static files. The client below is written from the specifications
 * alone (C2SP tlog-tiles for paths and contents, RFC 9162 §2.1 for hashing and proofs): it
 * fetches the checkpoint and verifies its signed note with the kernel's note verifier, fetches
 * the tiles it needs, computes inclusion and consistency proofs purely from them, and checks
 * the proofs against the checkpoint roots. The same client reads the exported files.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Identity, Ledger, NoteVerifier, openNote, parseCheckpoint, type SignedEnvelope, signEnvelope, verifyConsistency, verifyInclusion } from '../../lib';
import { stopChild, tmpDir, until } from '../helpers';

const CLI = path.resolve(__dirname, '../../bin/bot-ledger.js');
const ORIGIN = 'example.com/tiles-test';
const OLD_SIZE = 1000;
/**
 * 2777: 10 full level-0 tiles, a partial one of 217, a partial level-1 tile of 10. BOT_TILES_SIZE=70000
 * (the spec's example: full and partial tiles at levels 0–2) runs the same checks at scale.
 */
const SIZE = Number(process.env.BOT_TILES_SIZE) || 2777;

const sha256 = (...parts: Uint8Array[]): Buffer => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
/** RFC 9162 §2.1.1: leaf and interior node hashes. */
const hashLeaf = (leaf: Uint8Array): Buffer => sha256(Buffer.from([0]), leaf);
const hashChildren = (l: Uint8Array, r: Uint8Array): Buffer => sha256(Buffer.from([1]), l, r);

/** Fetches one tlog-tiles resource by its path under the log prefix. */
type Fetch = (path: string) => Promise<Buffer>;

/**
 * A tlog-tiles client from the spec alone: tile paths, which tiles a tree size has, the
 * hash of any subtree from tiles, and RFC 9162 proofs from those hashes.
 */
class SpecClient {
  #tiles = new Map<string, Promise<Buffer>>();
  fetched = new Set<string>();
  fallbacks = new Set<string>();
  constructor(
    readonly fetch: Fetch,
    readonly size: number,
  ) {}

  /** `<N>`: zero-padded 3-digit elements, all but the last prefixed with x. */
  static index(n: number): string {
    const parts: string[] = [];
    do {
      parts.unshift(String(n % 1000).padStart(3, '0'));
      n = Math.floor(n / 1000);
    } while (n > 0);
    return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join('/');
  }

  /** The path of tile (level, n) in this tree: full if the tree holds all of it, else the partial one. */
  path(level: number | 'entries', n: number): string {
    const l = level === 'entries' ? 0 : level;
    const full = (n + 1) * 256 ** (l + 1) <= this.size;
    const w = Math.floor(this.size / 256 ** l) % 256;
    assert.ok(full || (n === Math.floor(this.size / 256 ** (l + 1)) && w > 0), `no tile (${level}, ${n}) at size ${this.size}`);
    return `tile/${level}/${SpecClient.index(n)}${full ? '' : `.p/${w}`}`;
  }

  tile(level: number | 'entries', n: number): Promise<Buffer> {
    const p = this.path(level, n);
    let t = this.#tiles.get(p);
    if (!t) {
      this.fetched.add(p);
      t = this.fetch(p).catch(() => this.#fromFull(level, n, p));
      this.#tiles.set(p, t);
    }
    return t;
  }

  /**
   * A log may drop a partial tile once the full tile exists; a client may then read the full
   * one and keep its first W hashes (or entries) (tlog-tiles §"Partial Tiles").
   */
  async #fromFull(level: number | 'entries', n: number, partial: string): Promise<Buffer> {
    const m = /\.p\/([0-9]+)$/.exec(partial);
    if (!m) throw new Error(`${partial} is not available`);
    const w = Number(m[1]);
    this.fallbacks.add(partial);
    const full = await this.fetch(`tile/${level}/${SpecClient.index(n)}`);
    if (level !== 'entries') return full.subarray(0, w * 32);
    let off = 0;
    for (let i = 0; i < w; i++) off += 2 + full.readUInt16BE(off);
    return full.subarray(0, off);
  }

  /** The leaves of entry bundle n: big-endian uint16 length-prefixed entries. */
  async entries(n: number): Promise<Buffer[]> {
    const b = await this.tile('entries', n);
    const out: Buffer[] = [];
    for (let off = 0; off < b.length; off += 2 + b.readUInt16BE(off)) out.push(b.subarray(off + 2, off + 2 + b.readUInt16BE(off)));
    return out;
  }

  /** MTH of the perfect subtree of height h (0–7 within a tile) at index k, from the tile at level L = ⌊height/8⌋. */
  async perfect(height: number, k: number): Promise<Buffer> {
    const L = Math.floor(height / 8);
    const r = height % 8;
    const first = k * 2 ** r; // the first hash of the tile level it spans
    const tile = await this.tile(L, Math.floor(first / 256));
    let hashes: Buffer[] = [];
    for (let i = 0; i < 2 ** r; i++) {
      const at = (first % 256) + i;
      assert.ok((at + 1) * 32 <= tile.length, `tile too short for hash ${at}`);
      hashes.push(tile.subarray(at * 32, (at + 1) * 32));
    }
    while (hashes.length > 1) hashes = Array.from({ length: hashes.length / 2 }, (_, i) => hashChildren(hashes[2 * i], hashes[2 * i + 1]));
    return hashes[0];
  }

  /** MTH(D[a:b]) (RFC 9162 §2.1.1): perfect aligned subtrees from tiles, the rest split at the largest power of two. */
  async mth(a: number, b: number): Promise<Buffer> {
    const n = b - a;
    const h = Math.log2(n);
    if (Number.isInteger(h) && a % n === 0) return this.perfect(h, a / n);
    let k = 1;
    while (k * 2 < n) k *= 2;
    return hashChildren(await this.mth(a, a + k), await this.mth(a + k, b));
  }

  /** PATH(m, D[a:b]) (RFC 9162 §2.1.3.1). */
  async inclusion(m: number, a = 0, b = this.size): Promise<Buffer[]> {
    if (b - a <= 1) return [];
    let k = 1;
    while (k * 2 < b - a) k *= 2;
    return m < k ? [...(await this.inclusion(m, a, a + k)), await this.mth(a + k, b)] : [...(await this.inclusion(m - k, a + k, b)), await this.mth(a, a + k)];
  }

  /** PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true) (RFC 9162 §2.1.4.1). */
  async consistency(m: number, a = 0, b = this.size, complete = true): Promise<Buffer[]> {
    if (m === b - a) return complete ? [] : [await this.mth(a, b)];
    let k = 1;
    while (k * 2 < b - a) k *= 2;
    return m <= k
      ? [...(await this.consistency(m, a, a + k, complete)), await this.mth(a + k, b)]
      : [...(await this.consistency(m - k, a + k, b, false)), await this.mth(a, a + k)];
  }
}

/** The partial tiles of a tree size, from the spec's formula: width ⌊s / 256^l⌋ mod 256 at level l (tlog-tiles §"Partial Tiles"). */
function partials(size: number): { path: string; full: string; level: number; index: number }[] {
  const out: { path: string; full: string; level: number; index: number }[] = [];
  for (let l = 0; 256 ** l <= size; l++) {
    const w = Math.floor(size / 256 ** l) % 256;
    const index = Math.floor(size / 256 ** (l + 1));
    const full = `tile/${l}/${SpecClient.index(index)}`;
    if (w > 0) out.push({ path: `${full}.p/${w}`, full, level: l, index });
  }
  return out;
}

/** Full tiles at level l of a tree size. */
const fullTiles = (size: number, l: number): number => Math.floor(size / 256 ** (l + 1));

/** GET over HTTP with the given headers: status, headers and body (decompressed by fetch). */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const r = await fetch(url, { headers });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

/** Send raw bytes on a TCP connection and read what comes back until the server closes or 2 s pass. */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    let out = '';
    s.setEncoding('latin1').on('data', (d: string) => (out += d));
    const done = (): void => resolve(out);
    s.on('close', done).on('error', done);
    s.setTimeout(2000, () => s.destroy());
  });
}

describe('tlog-tiles: a spec-only client reads `bot-ledger serve` and `export-tiles`', function () {
  this.timeout(60000 + SIZE);
  let t: ReturnType<typeof tmpDir>;
  let dir: string;
  let oldNote: string;
  let child: ChildProcess | undefined;
  let base: string;
  const op = Identity.generate();
  const vkey = NoteVerifier.ed25519(ORIGIN, op.publicKey);

  before(async () => {
    t = tmpDir('bot-tiles-it-');
    dir = path.join(t.dir, 'ledger');
    const devices = [Identity.generate(), Identity.generate()];
    const envs: SignedEnvelope[] = Array.from({ length: SIZE }, (_, i) =>
      signEnvelope(devices[i % 2], {
        kind: 'reading',
        seq: i >> 1,
        ts: 1_700_000_000_000 + i,
        topic: `plant/1/${i % 3}`,
        payload: { v: i, pad: 'x'.repeat(i % 40) },
      }),
    );
    const led = await Ledger.open({ dir, origin: ORIGIN, identity: op });
    await led.appendAll(envs.slice(0, OLD_SIZE));
    oldNote = (await led.checkpoint())?.note ?? assert.fail('no checkpoint at the old size');
    for (let i = OLD_SIZE; i < SIZE; i += 4096) await led.appendAll(envs.slice(i, Math.min(SIZE, i + 4096)));
    await led.checkpoint();
    await led.close();
  });
  after(async () => {
    await stopChild(child);
    t.cleanup();
  });

  /** The checks a client makes: signed checkpoint, entries against tiles, inclusion and consistency proofs. */
  async function checkLog(fetchPath: Fetch): Promise<string[]> {
    const note = (await fetchPath('checkpoint')).toString('utf8');
    const cp = parseCheckpoint(openNote(note, [vkey]).text);
    assert.equal(cp.origin, ORIGIN);
    assert.equal(cp.size, SIZE);
    const c = new SpecClient(fetchPath, cp.size);
    for (const index of [0, 1, 255, 256, 999, 1000, 2559, 2560, Math.floor(SIZE / 2), SIZE - 1]) {
      const leaves = await c.entries(Math.floor(index / 256));
      const leaf = leaves[index % 256];
      assert.ok(JSON.parse(leaf.toString('utf8')).sig, 'an entry is a signed envelope');
      const lh = hashLeaf(leaf);
      assert.ok(lh.equals(await c.perfect(0, index)), `entry ${index} hashes to its level-0 tile hash`);
      const proof = await c.inclusion(index);
      verifyInclusion(index, cp.size, lh, proof, cp.root);
    }
    // The old checkpoint (as a witness kept it): consistent with the new one, from tiles alone.
    const old = parseCheckpoint(openNote(oldNote, [vkey]).text);
    verifyConsistency(old.size, cp.size, await c.consistency(old.size), old.root, cp.root);
    for (const m of [1, 256, 257, 512, 2048, 2700, SIZE - 1]) {
      verifyConsistency(m, cp.size, await c.consistency(m), await c.mth(0, m), cp.root);
    }
    assert.ok((await c.mth(0, cp.size)).equals(cp.root), 'the root from the tiles is the checkpoint root');
    // The old tree's own (partial) tiles give the old root.
    const oldClient = new SpecClient(fetchPath, old.size);
    assert.ok((await oldClient.mth(0, old.size)).equals(old.root), 'the tiles of the old size give the old root');
    assert.ok(oldClient.fetched.has('tile/1/000.p/3'), "the old checkpoint's partial level-1 tile");
    // Every partial tile of the tree is needed for its root; the last entry's bundle is partial too.
    for (const p of partials(SIZE)) assert.ok(c.fetched.has(p.path), `${p.path} fetched`);
    if (SIZE % 256) assert.ok(c.fetched.has(partials(SIZE)[0].path.replace('tile/0/', 'tile/entries/')));
    return [...c.fallbacks, ...oldClient.fallbacks];
  }

  it('serve: the client verifies the checkpoint and proofs computed only from fetched tiles', async () => {
    child = spawn(process.execPath, [CLI, 'serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    const line = await until(
      'serve to listen',
      () => (out.includes('\n') ? out.split('\n')[0] : undefined) || (child?.exitCode !== null ? assert.fail(`serve exited: ${err}`) : undefined),
    );
    const started = JSON.parse(line) as { url: string; origin: string; size: number };
    assert.equal(started.origin, ORIGIN);
    assert.equal(started.size, SIZE);
    base = started.url;
    const fallbacks = await checkLog(async (p) => {
      const r = await get(base + p, { 'Accept-Encoding': 'gzip, identity' });
      assert.equal(r.status, 200, `GET ${p}: ${r.status}`);
      return r.body;
    });
    assert.deepEqual(fallbacks, [], 'serve has every partial tile of every checkpoint');
  });

  it('serve: content types, cache headers, gzip, 404 and 405, and it survives odd requests', async () => {
    const cp = await get(base + 'checkpoint');
    assert.equal(cp.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.doesNotMatch(cp.headers.get('cache-control') ?? '', /immutable|max-age=[0-9]{3,}/);
    const full = await get(base + 'tile/0/000');
    assert.equal(full.headers.get('content-type'), 'application/octet-stream');
    assert.match(full.headers.get('cache-control') ?? '', /\bimmutable\b/);
    assert.equal(full.headers.get('access-control-allow-origin'), '*', 'public tiles: readable from any web page');
    assert.equal(full.body.length, 8192);
    const last = partials(SIZE)[0];
    const partial = await get(base + last.path);
    assert.equal(partial.body.length, (SIZE % 256) * 32);
    assert.doesNotMatch(partial.headers.get('cache-control') ?? '', /immutable/);
    const bundle = await get(base + 'tile/entries/000', { 'Accept-Encoding': 'gzip' });
    assert.equal(bundle.headers.get('content-encoding'), 'gzip');
    const beyond = [
      `tile/0/${SpecClient.index(fullTiles(SIZE, 0) + 1)}`, // after the partial one
      `${last.full}.p/${(SIZE % 256) + 1}`, // wider than the tree
      last.full, // the partial one as if full
      `tile/1/${SpecClient.index(fullTiles(SIZE, 1))}`,
      `tile/${partials(SIZE).length + 1}/000.p/1`, // above the tree's top level
      `tile/entries/${SpecClient.index(fullTiles(SIZE, 0) + 1)}`,
    ];
    for (const p of [...beyond, 'tile/0/x000/000', 'tile/0/000/', 'tile', '', 'index.html']) {
      assert.equal((await get(base + p)).status, 404, p);
    }
    assert.equal((await fetch(base + 'checkpoint', { method: 'POST', body: 'x' })).status, 405);
    const port = Number(new URL(base).port);
    for (const req of [
      'GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET tile/0/000 HTTP/1.1\r\nHost: x\r\n\r\n',
      `GET /${'x'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'GET /tile/0/%30%30%30 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /tile/0/000\0 HTTP/1.1\r\nHost: x\r\n\r\n',
      'BREW /checkpoint HTCPCP/1.0\r\n\r\n',
      '\r\n\r\n\r\n',
      'GET http://evil/checkpoint HTTP/1.1\r\nHost: x\r\n\r\n',
    ]) {
      const answer = await raw(port, req);
      assert.doesNotMatch(answer, /^HTTP\/1\.1 200/, JSON.stringify(req.slice(0, 40)));
    }
    // Still serving, same bytes.
    assert.ok((await get(base + 'tile/0/000')).body.equals(full.body));
    assert.equal(child?.exitCode, null);
    // SIGINT: it stops listening, closes the ledger and exits 0.
    const stopped = child;
    await stopChild(child);
    child = undefined;
    assert.equal(stopped?.exitCode, 0);
    const reopened = await Ledger.open({ dir, create: false });
    await reopened.close();
  });

  it('export-tiles: the same client checks the static files; a re-run writes nothing new', async () => {
    const out = path.join(t.dir, 'out');
    const run = (): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve, reject) => {
        const c = spawn(process.execPath, [CLI, 'export-tiles', dir, out], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '',
          stderr = '';
        c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        c.on('error', reject).on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const first = await run();
    assert.equal(first.status, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as { size: number; tiles: number; bundles: number; written: number };
    assert.equal(summary.size, SIZE);
    // Every full tile, the partial tiles of the latest checkpoint, and those of the old one whose
    // full tile is not there yet (at 2777: 13 tiles — 10 + 010.p/217 + 1/000.p/10 + 1/000.p/3 — and 11 bundles).
    const oldPartials = partials(OLD_SIZE).filter((p) => !partials(SIZE).some((q) => q.path === p.path));
    const superseded = oldPartials.filter((p) => (p.index + 1) * 256 ** (p.level + 1) <= SIZE);
    const kept = oldPartials.filter((p) => !superseded.includes(p));
    let fullCount = 0;
    for (let l = 0; 256 ** l <= SIZE; l++) fullCount += fullTiles(SIZE, l);
    assert.equal(summary.tiles, fullCount + partials(SIZE).length + kept.length);
    assert.equal(summary.bundles, fullTiles(SIZE, 0) + (SIZE % 256 ? 1 : 0) + kept.filter((p) => p.level === 0).length);
    assert.equal(summary.written, summary.tiles + summary.bundles);
    if (SIZE === 2777) assert.deepEqual([summary.tiles, summary.bundles], [13, 11]);
    // The old checkpoint's partial tiles whose full tile exists are not exported: the client reads the full one.
    const fallbacks = await checkLog(async (p) => fs.promises.readFile(path.join(out, ...p.split('/'))));
    assert.deepEqual(fallbacks.sort(), superseded.map((p) => p.path).sort());
    assert.ok(fallbacks.length > 0, 'the fallback to a full tile was exercised');
    const again = await run();
    assert.equal(again.status, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { written: number }).written, 0);
    // Another log's files in OUT are refused, not overwritten.
    fs.writeFileSync(path.join(out, 'tile', '0', '000'), Buffer.alloc(8192));
    const conflict = await run();
    assert.equal(conflict.status, 1);
    assert.match(conflict.stderr, /E_CONFLICT/);
  });
});
