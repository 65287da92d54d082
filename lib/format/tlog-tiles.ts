/**
 * C2SP `tlog-tiles` (https://c2sp.org/tlog-tiles): the static-resource view of a Merkle log —
 * the checkpoint, hash tiles and entry bundles — as paths and bytes. The one module that
 * computes and parses every tile path (docs/design.md "The tiles view"); lib/store/tile-reader.ts
 * fills them from a ledger.
 *
 * - Paths (§"Merkle Tree", §"Log entries"): `tile/<L>/<N>[.p/<W>]` and
 *   `tile/entries/<N>[.p/<W>]`; `<L>` is 0–63 without leading zeroes, `<N>` is split into
 *   zero-padded 3-digit elements, all but the last prefixed with `x` (1234067 →
 *   `x001/x234/067`), `<W>` is 1–255 without leading zeroes and marks a partial tile.
 * - Tiles (§"Merkle Tree"): the n-th tile at level l is the concatenation of
 *   MTH(D[(n·256 + i)·256^l : (n·256 + i + 1)·256^l]) for i in 0…255 — in this kernel's
 *   (level, index) node addressing (lib/format/merkle.ts), node (8·l, n·256 + i). A full tile
 *   is 256 hashes (8,192 bytes); a partial one (§"Partial Tiles") 1–255.
 * - Entry bundles (§"Log entries"): the entries of a level-0 tile, each a big-endian uint16
 *   length followed by that many bytes, so no entry may exceed 65,535 bytes.
 *
 * Parsing is strict: a path is accepted only in its one canonical spelling, so every resource
 * has exactly one name (a static export and the HTTP view agree byte for byte).
 */
import { FormatError } from '../errors';
import { HASH_SIZE } from './merkle';

/** Tree levels per tile: a tile is a subtree of height 8 (tlog-tiles §"Merkle Tree"). */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile, entries in a full entry bundle (tlog-tiles §"Merkle Tree"). */
export const TILE_WIDTH = 256;
/** Highest tile level a path may name (tlog-tiles §"Merkle Tree": `<L>` is 0–63). */
export const MAX_TILE_LEVEL = 63;
/** Largest entry an entry bundle can carry: its length is a big-endian uint16 (tlog-tiles §"Log entries"). */
export const MAX_BUNDLE_ENTRY_BYTES = 0xffff;
/** The checkpoint's path under the log prefix (tlog-tiles §"Checkpoints"). */
export const CHECKPOINT_PATH = 'checkpoint';

/** Media type of the checkpoint (tlog-tiles §"Checkpoints"). */
export const CHECKPOINT_CONTENT_TYPE = 'text/plain; charset=utf-8';
/** Media type of tiles and entry bundles (tlog-tiles §"Merkle Tree", §"Log entries"). */
export const TILE_CONTENT_TYPE = 'application/octet-stream';

/** A hash tile (`entries` false, level ≥ 0) or an entry bundle (`entries` true, level 0). */
export interface TileRef {
  entries: boolean;
  level: number;
  /** The tile's index `<N>` within its level. */
  index: number;
  /** 256 for a full tile, 1–255 for a partial one. */
  width: number;
}

/** Longest `<N>` accepted: 6 elements of 3 digits (10^18 > any safe integer index). */
const MAX_INDEX_ELEMENTS = 6;

/** `<N>` as path elements: zero-padded 3-digit groups, all but the last `x`-prefixed (tlog-tiles §"Merkle Tree"). */
export function encodeTileIndex(n: number): string {
  checkIndex(n);
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? 'x' + g : g)).join('/');
}

function checkIndex(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new FormatError('E_RANGE', `a tile index is a non-negative safe integer, got ${String(n).slice(0, 40)}`);
}

function checkWidth(w: number): void {
  if (!Number.isInteger(w) || w < 1 || w > TILE_WIDTH) throw new FormatError('E_RANGE', `a tile width is 1 to ${TILE_WIDTH}, got ${String(w).slice(0, 40)}`);
}

/** The path of a hash tile, `tile/<L>/<N>[.p/<W>]` (tlog-tiles §"Merkle Tree"). */
export function tilePath(level: number, index: number, width = TILE_WIDTH): string {
  if (!Number.isInteger(level) || level < 0 || level > MAX_TILE_LEVEL)
    throw new FormatError('E_RANGE', `a tile level is 0 to ${MAX_TILE_LEVEL}, got ${String(level).slice(0, 40)}`);
  checkWidth(width);
  return `tile/${level}/${encodeTileIndex(index)}${width < TILE_WIDTH ? `.p/${width}` : ''}`;
}

/** The path of an entry bundle, `tile/entries/<N>[.p/<W>]` (tlog-tiles §"Log entries"). */
export function entriesPath(index: number, width = TILE_WIDTH): string {
  checkWidth(width);
  return `tile/entries/${encodeTileIndex(index)}${width < TILE_WIDTH ? `.p/${width}` : ''}`;
}

/** The path of a tile or bundle reference. */
export function refPath(ref: TileRef): string {
  return ref.entries ? entriesPath(ref.index, ref.width) : tilePath(ref.level, ref.index, ref.width);
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Parse a tile or entry-bundle path (relative to the log prefix, no leading slash); undefined
 * for anything but the one canonical spelling of a tlog-tiles resource. Never throws.
 */
export function parseTilePath(path: string): TileRef | undefined {
  if (typeof path !== 'string' || path.length > 80 || !path.startsWith('tile/')) return undefined;
  const parts = path.split('/');
  const kind = parts[1];
  let entries: boolean;
  let level: number;
  if (kind === 'entries') {
    entries = true;
    level = 0;
  } else if (kind !== undefined && DECIMAL.test(kind) && Number(kind) <= MAX_TILE_LEVEL) {
    entries = false;
    level = Number(kind);
  } else {
    return undefined;
  }
  let elems = parts.slice(2);
  let width = TILE_WIDTH;
  const last = elems[elems.length - 1] ?? '';
  const beforeLast = elems[elems.length - 2] ?? '';
  if (beforeLast.endsWith('.p')) {
    if (!DECIMAL.test(last) || Number(last) < 1 || Number(last) >= TILE_WIDTH) return undefined;
    width = Number(last);
    elems = [...elems.slice(0, -2), beforeLast.slice(0, -2)];
  }
  if (elems.length < 1 || elems.length > MAX_INDEX_ELEMENTS) return undefined;
  let index = 0;
  for (let i = 0; i < elems.length; i++) {
    const m = /^(x?)([0-9]{3})$/.exec(elems[i]);
    if (!m || (m[1] === 'x') !== i < elems.length - 1) return undefined;
    index = index * 1000 + Number(m[2]);
  }
  if (!Number.isSafeInteger(index)) return undefined;
  const ref: TileRef = { entries, level, index, width };
  // Canonical only: no leading `x000/` elements (the encoder never writes them).
  return refPath(ref) === path ? ref : undefined;
}

/** How many leaves a tile at this level spans per hash: 256^level (tlog-tiles §"Merkle Tree"). */
export function leavesPerHash(level: number): number {
  return TILE_WIDTH ** level;
}

/**
 * The hash tiles (and, at level 0, the entry bundle) a tree of this size has, for one level:
 * `full` full tiles (indices 0…full−1) and, when `partial` > 0, one partial tile of that width
 * at index `full` (tlog-tiles §"Partial Tiles": width ⌊s / 256^l⌋ mod 256).
 */
export function tilesAtLevel(size: number, level: number): { full: number; partial: number } {
  const hashes = Math.floor(size / leavesPerHash(level));
  return { full: Math.floor(hashes / TILE_WIDTH), partial: hashes % TILE_WIDTH };
}

/** Whether a tree of this size holds every hash of the tile (or every entry of the bundle). */
export function tileWithin(ref: TileRef, size: number): boolean {
  return (ref.index * TILE_WIDTH + ref.width) * leavesPerHash(ref.level) <= size;
}

/**
 * The partial tiles a checkpoint at this size needs, lowest level first (tlog-tiles
 * §"Partial Tiles"), as hash-tile refs; the level-0 one also names the partial entry bundle.
 */
export function partialTiles(size: number): TileRef[] {
  const out: TileRef[] = [];
  for (let level = 0; leavesPerHash(level) <= size; level++) {
    const { full, partial } = tilesAtLevel(size, level);
    if (partial > 0) out.push({ entries: false, level, index: full, width: partial });
  }
  return out;
}

/** Split a tile into its hashes; throws FormatError E_RANGE unless it is 1–256 whole hashes. */
export function tileHashes(tile: Uint8Array): Buffer[] {
  if (tile.length === 0 || tile.length % HASH_SIZE !== 0 || tile.length > TILE_WIDTH * HASH_SIZE) {
    throw new FormatError('E_RANGE', `a tile is 1 to ${TILE_WIDTH} hashes of ${HASH_SIZE} bytes, got ${tile.length} bytes`);
  }
  const b = Buffer.from(tile.buffer, tile.byteOffset, tile.length);
  return Array.from({ length: tile.length / HASH_SIZE }, (_, i) => b.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
}

/**
 * An entry bundle: each entry as a big-endian uint16 length and its bytes (tlog-tiles
 * §"Log entries"). Throws FormatError E_TOO_LARGE for an entry above 65,535 bytes, which the
 * format cannot carry.
 */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const [i, e] of entries.entries()) {
    if (e.length > MAX_BUNDLE_ENTRY_BYTES) {
      throw new FormatError(
        'E_TOO_LARGE',
        `entry ${i} of the bundle is ${e.length} bytes: a tlog-tiles entry bundle carries at most ${MAX_BUNDLE_ENTRY_BYTES}`,
      );
    }
    total += 2 + e.length;
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, off);
    out.set(e, off + 2);
    off += 2 + e.length;
  }
  return out;
}

/** Decode an entry bundle (tlog-tiles §"Log entries"); throws FormatError E_RANGE if it is truncated. */
export function decodeEntryBundle(bundle: Uint8Array): Buffer[] {
  const b = Buffer.from(bundle.buffer, bundle.byteOffset, bundle.length);
  const out: Buffer[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 2 > b.length) throw new FormatError('E_RANGE', `entry bundle truncated in the length of entry ${out.length}`);
    const n = b.readUInt16BE(off);
    if (off + 2 + n > b.length) throw new FormatError('E_RANGE', `entry bundle truncated in entry ${out.length}`);
    out.push(b.subarray(off + 2, off + 2 + n));
    off += 2 + n;
  }
  return out;
}
