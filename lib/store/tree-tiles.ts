/**
 * The upper levels of a ledger's Merkle tree stored as tiles, so that an inclusion or
 * consistency proof reads a few records however large the tree: the leaf's hash chunk, one
 * tile per 8 levels above it (docs/design.md "Storage and durability").
 *
 * - Shape: C2SP tlog-tiles (https://c2sp.org/tlog-tiles §"Merkle Tree"): tiles of height 8
 *   (TILE_HEIGHT) and width 256 (TILE_WIDTH); tile (t, n) spans leaves [n·256^(t+1),
 *   (n+1)·256^(t+1)), and its tlog-tiles hashes are nodes (8t, n·256 + i). A stored tile is
 *   those hashes (row 0) followed by the tile's inner rows 1…7 (nodes (8t + k, ·), 2^(8−k)
 *   per full tile), so no proof hashes anything to read a node. Tile level 0 stores only
 *   rows 6 and 7 (levels 6 and 7): the hash chunks (layout.ts `H`) hold levels 0–5.
 * - Full and partial: the tile being filled at each level (the "tail") is rewritten, in the
 *   same atomic batch as the leaves, whenever a commit adds a node to it; a partial tile's
 *   rows are the nodes completed so far (row k holds ⌊c / 2^(k − first)⌋ when its first row
 *   holds c). A full tile is written once and never changes.
 * - Derived data: every node in a tile is also in the hash chunks (which the audit checks),
 *   so tiles missing from a ledger written before they existed, or cut short by a crash of
 *   that build, are (re)built at open from the chunks and the tiles below (buildTiles):
 *   idempotent, resumable, bounded memory.
 */
import { type Level } from 'level';
import { StoreError } from '../errors';
import { TILE_HEIGHT, TILE_WIDTH } from '../format/tlog-tiles';
import { HASH_SIZE, type NewNode, nodeHash, nodePosition } from '../format/merkle';
import * as L from './layout';
import { type PutOp } from './query-index';

/** A tile being filled: its rows (index k = in-tile level 0…7; rows below firstRow are empty). */
export interface Tile {
  level: number;
  index: number;
  rows: readonly Buffer[];
}

const EMPTY = Buffer.alloc(0);

/** The first stored row of a tile at this tile level (tile level 0: the chunks hold levels 0–5). */
export function firstRow(t: number): number {
  return t === 0 ? L.CHUNK_LEVELS : 0;
}

/** Hashes in the first row of a full tile at tile level t. */
function capacity(t: number): number {
  return 2 ** (TILE_HEIGHT - firstRow(t));
}

/** Leaves a tile at tile level t spans: 256^(t+1). */
function span(t: number): number {
  return TILE_WIDTH ** (t + 1);
}

/** Tree level of a tile level's first stored row. */
function baseLevel(t: number): number {
  return TILE_HEIGHT * t + firstRow(t);
}

/** The tile levels a tree of this size has (those with at least one first-row node). */
export function tileLevels(size: number): number {
  let t = 0;
  while (2 ** baseLevel(t) <= size) t++;
  return t;
}

/** Where node (level, index) lies: tile level t, tile n, row k, position j (level ≥ CHUNK_LEVELS). */
export function locate(level: number, index: number): { t: number; n: number; k: number; j: number } {
  const t = Math.floor(level / TILE_HEIGHT);
  const k = level - TILE_HEIGHT * t;
  const per = 2 ** (TILE_HEIGHT - k);
  const n = Math.floor(index / per);
  return { t, n, k, j: index - n * per };
}

/** The empty tile n of tile level t. */
export function emptyTile(t: number, n: number): Tile {
  return { level: t, index: n, rows: Array.from({ length: TILE_HEIGHT }, () => EMPTY) };
}

/** A tile as stored: its rows, first to last. */
export function encodeTile(tile: Tile): Buffer {
  return Buffer.concat(tile.rows as Buffer[]);
}

/** Hashes in row k of a tile of level t whose first row holds c. */
function rowCount(t: number, c: number, k: number): number {
  return k < firstRow(t) ? 0 : Math.floor(c / 2 ** (k - firstRow(t)));
}

/** The first-row count of a stored tile of level t, from its length; undefined if no count fits. */
function firstRowCount(t: number, bytes: number): number | undefined {
  if (bytes % HASH_SIZE !== 0) return undefined;
  const total = bytes / HASH_SIZE;
  for (let c = 1; c <= capacity(t); c++) {
    let sum = 0;
    for (let k = firstRow(t); k < TILE_HEIGHT; k++) sum += rowCount(t, c, k);
    if (sum === total) return c;
    if (sum > total) return undefined;
  }
  return undefined;
}

/** Decode a stored tile; throws E_CORRUPT when its length fits no tile. */
export function decodeTile(t: number, n: number, buf: Buffer): Tile {
  const c = firstRowCount(t, buf.length);
  if (c === undefined) throw new StoreError('E_CORRUPT', `tree tile ${t}/${n} has a malformed length (${buf.length} bytes)`, { cause: { index: n * span(t) } });
  const rows: Buffer[] = [];
  let o = 0;
  for (let k = 0; k < TILE_HEIGHT; k++) {
    const len = rowCount(t, c, k) * HASH_SIZE;
    rows.push(buf.subarray(o, o + len));
    o += len;
  }
  return { level: t, index: n, rows };
}

/** The hash at row k, position j of a full stored tile of level t (offset arithmetic, no decoding). */
export function fullTileHash(t: number, buf: Buffer, k: number, j: number): Buffer | undefined {
  let off = 0;
  for (let r = firstRow(t); r < k; r++) off += 2 ** (TILE_HEIGHT - r);
  off = (off + j) * HASH_SIZE;
  return off + HASH_SIZE <= buf.length ? buf.subarray(off, off + HASH_SIZE) : undefined;
}

/** The hash at row k, position j of a tile, if present. */
export function tileHash(tile: Tile, k: number, j: number): Buffer | undefined {
  const row = tile.rows[k];
  const off = j * HASH_SIZE;
  return row && off + HASH_SIZE <= row.length ? row.subarray(off, off + HASH_SIZE) : undefined;
}

/** Whether a tile is full (its last row, two nodes, is complete). */
function isFull(tile: Tile): boolean {
  return tile.rows[TILE_HEIGHT - 1].length === 2 * HASH_SIZE;
}

/**
 * The tiles a group commit changes: fed every node the commit completes (in append order),
 * it puts each tile that becomes full and, at finish(), every partial tile it changed, and
 * returns the new tails (the committed ones are never changed in place).
 */
export class TileBatch {
  readonly #tails: Tile[];
  readonly #dirty = new Set<number>();
  readonly #owned = new Set<number>();

  constructor(tails: readonly Tile[]) {
    this.#tails = tails.slice();
  }

  /** Record a completed node; full tiles are put on ops at once. */
  add(node: NewNode, ops: PutOp[]): void {
    if (node.level < L.CHUNK_LEVELS) return;
    const { t, n, k, j } = locate(node.level, node.index);
    let tile = this.#tails[t];
    if (!tile || tile.index !== n) {
      tile = emptyTile(t, n);
      this.#owned.add(t);
    } else if (!this.#owned.has(t)) {
      tile = { level: t, index: n, rows: tile.rows.slice() };
      this.#owned.add(t);
    }
    const rows = tile.rows as Buffer[];
    if (rows[k].length !== j * HASH_SIZE) throw new StoreError('E_CORRUPT', `tree tile ${t}/${n}: node (${node.level}, ${node.index}) out of order`);
    rows[k] = Buffer.concat([rows[k], node.hash]);
    this.#tails[t] = tile;
    if (isFull(tile)) {
      ops.push({ type: 'put', key: L.tileKey(t, n), value: encodeTile(tile) });
      this.#tails[t] = emptyTile(t, n + 1);
      this.#dirty.delete(t);
    } else {
      this.#dirty.add(t);
    }
  }

  /** Put the partial tiles changed; the tails after this commit. */
  finish(ops: PutOp[]): Tile[] {
    for (const t of this.#dirty) ops.push({ type: 'put', key: L.tileKey(t, this.#tails[t].index), value: encodeTile(this.#tails[t]) });
    return this.#tails;
  }
}

/** The tiles being filled at each level of a tree of this size, read from the store (E_CORRUPT if one is not as the size implies). */
export async function readTails(db: Level<string, Buffer>, size: number): Promise<Tile[]> {
  const tails: Tile[] = [];
  const levels = tileLevels(size);
  for (let t = 0; t < levels; t++) {
    const n = Math.floor(size / span(t));
    const c = Math.floor((size - n * span(t)) / 2 ** baseLevel(t));
    if (c === 0) {
      tails.push(emptyTile(t, n));
      continue;
    }
    const buf = await db.get(L.tileKey(t, n));
    const tile = buf ? decodeTile(t, n, buf) : undefined;
    if (!tile || tile.rows[firstRow(t)].length !== c * HASH_SIZE)
      throw new StoreError('E_CORRUPT', `tree tile ${t}/${n} does not match the tree size ${size}`, { cause: { index: n * span(t) } });
    tails.push(tile);
  }
  return tails;
}

/** A write of the tile build: its failure is the store's (E_STORE, like a failed commit), not corruption. */
async function write(op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (err) {
    throw new StoreError('E_STORE', `store failed writing the tree tiles: ${(err as Error).message}; reopen the ledger once the store can be written`, {
      cause: err,
    });
  }
}

/** Puts per intermediate batch of a tile build (written without sync; the last one is synced). */
const BUILD_BATCH = 512;

/**
 * Build the tiles a tree of this size should have and lacks (a ledger written before tiles
 * existed, or a build a crash cut short), level by level from the lowest: tile level 0 from
 * the hash chunks (the root of each chunk), level t from level t − 1's full tiles. Each
 * level restarts at its last stored tile, so a rerun is idempotent and a crash loses only
 * work. Returns the number of tiles written. Throws E_CORRUPT when the store holds tiles
 * beyond the size, or a chunk or tile it needs is missing; E_STORE when a write fails.
 */
export async function buildTiles(db: Level<string, Buffer>, size: number): Promise<number> {
  let written = 0;
  let ops: PutOp[] = [];
  const levels = tileLevels(size);
  for (let t = 0; t < levels; t++) {
    const want = Math.floor(size / 2 ** baseLevel(t));
    let have = 0;
    for await (const [k, v] of db.iterator({ ...L.tileLevelRange(t), reverse: true, limit: 1 })) {
      const n = L.indexOfTileKey(k);
      have = n * capacity(t) + decodeTile(t, n, v).rows[firstRow(t)].length / HASH_SIZE;
    }
    if (have > want) throw new StoreError('E_CORRUPT', `the store holds tree tiles beyond the tree size ${size}`, { cause: { index: size } });
    if (have === want) continue;
    const from = Math.floor(have / capacity(t)) * capacity(t);
    let tile = emptyTile(t, from / capacity(t));
    let q = from;
    const push = (h: Buffer): void => {
      const rows = tile.rows as Buffer[];
      let k = firstRow(t);
      rows[k] = Buffer.concat([rows[k], h]);
      // Each completed pair of a row makes a node of the row above.
      while (k < TILE_HEIGHT - 1 && rows[k].length % (2 * HASH_SIZE) === 0) {
        const r = rows[k];
        rows[k + 1] = Buffer.concat([rows[k + 1], nodeHash(r.subarray(r.length - 2 * HASH_SIZE, r.length - HASH_SIZE), r.subarray(r.length - HASH_SIZE))]);
        k++;
      }
      q++;
      if (q % capacity(t) === 0) {
        ops.push({ type: 'put', key: L.tileKey(t, tile.index), value: encodeTile(tile) });
        tile = emptyTile(t, tile.index + 1);
      }
    };
    const flush = async (): Promise<void> => {
      if (ops.length === 0) return;
      written += ops.length;
      const batch = ops;
      await write(() => db.batch(batch, { sync: false }));
      ops = [];
    };
    if (t === 0) {
      // Node (6, c) is the root of chunk c, stored in chunk c's hashes.
      for await (const [k, buf] of db.iterator({ gte: L.hashKey(from), lt: L.hashKey(want) })) {
        const c = L.chunkOfKey(k);
        const h = c === q ? L.hashAt(buf, c, nodePosition(L.CHUNK_LEVELS, c)) : undefined;
        if (!h) throw new StoreError('E_CORRUPT', `tree hashes of chunk ${q} are missing`, { cause: { index: q * L.CHUNK } });
        push(h);
        if (ops.length >= BUILD_BATCH) await flush();
      }
    } else {
      // Node (8t, q) is the hash of the two nodes of tile (t − 1, q)'s last row.
      for await (const [k, buf] of db.iterator({ gte: L.tileKey(t - 1, from), lt: L.tileKey(t - 1, want) })) {
        const below = decodeTile(t - 1, L.indexOfTileKey(k), buf);
        if (below.index !== q || !isFull(below)) throw new StoreError('E_CORRUPT', `tree tile ${t - 1}/${q} is missing`, { cause: { index: q * span(t - 1) } });
        const top = below.rows[TILE_HEIGHT - 1];
        push(nodeHash(top.subarray(0, HASH_SIZE), top.subarray(HASH_SIZE)));
        if (ops.length >= BUILD_BATCH) await flush();
      }
    }
    if (q !== want) throw new StoreError('E_CORRUPT', `tree level ${baseLevel(t)} node ${q} is missing`, { cause: { index: q * 2 ** baseLevel(t) } });
    if (q % capacity(t) !== 0) ops.push({ type: 'put', key: L.tileKey(t, tile.index), value: encodeTile(tile) });
    await flush();
  }
  // The intermediate batches were not synced: one synced write makes them all durable.
  if (written > 0) {
    const head = (await db.get(L.KEY_HEAD)) as Buffer;
    await write(() => db.put(L.KEY_HEAD, head, { sync: true }));
  }
  return written;
}
