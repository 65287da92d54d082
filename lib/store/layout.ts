/**
 * The LevelDB layout of a ledger: the one module that spells its keys and prefixes (the
 * ledger, its query index and the audit use only what is exported here). Entries and tree
 * hashes are append-only arrays stored in chunks of CHUNK leaves, so that one group commit
 * writes a handful of keys however many entries it holds (the layout, not LevelDB, decides
 * the throughput):
 *
 *   meta                        JSON {format, origin, operator}
 *   head                        JSON {size, frontier: [base64 …]}  — the only state read at open
 *   E<chunk>                    the chunk's leaves: (u32 BE length ‖ leaf bytes)*
 *   H<chunk>                    the perfect-subtree hashes completed by the chunk's leaves,
 *                               in append order (merkle.nodePosition)
 *   T<tile level><tile index>   an upper-tree tile (tree-tiles.ts): the hashes of one C2SP
 *                               tlog-tiles tile of height 8 (tile level t, index n: nodes
 *                               (8t, n·256 + i)) followed by the tile's inner rows (levels
 *                               8t+1 … 8t+7), full or partial; at tile level 0 only the rows
 *                               above a chunk (levels 6 and 7: the chunks hold the rest).
 *                               Written in the same batch as the leaves; a proof reads a few.
 *   C<size>                     signed checkpoint note at that tree size (the history)
 *   s<signer id>!<segment>      postings of a segment: the signer's last seq (u64 BE, replay
 *                               protection) then the offsets of its entries (u16 BE each)
 *   t<topic>\0<segment>         postings by exact topic
 *   m<minute>!<segment>         postings by entry time (ts / 60000)
 *   X<key>                      auxiliary records (Ledger.aux): witness state, cosignatures
 *
 * Index postings (the query index, query-index.ts) are written once per SEGMENT of entries,
 * when the segment is complete, so that an index key costs one write per signer, topic or
 * minute per segment rather than per commit; the open segment's postings live in memory and
 * are rebuilt at open from its at most SEGMENT − 1 entries. Numbers in keys are fixed-width lower-case hex so that key order is
 * numeric order.
 */
import * as crypto from 'node:crypto';
import { StoreError } from '../errors';
import { HASH_SIZE, nodeCount } from '../format/merkle';

/** Leaves per chunk. */
export const CHUNK = 64;
/** Tree levels whose nodes lie within one chunk (2^6 = CHUNK). */
export const CHUNK_LEVELS = 6;
/** Entries per index segment (a multiple of CHUNK; offsets fit in a u16). */
export const SEGMENT = 4096;
/** Format version written in meta. */
export const FORMAT = 1;

export const KEY_META = 'meta';
export const KEY_HEAD = 'head';

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** Prefixes of the entry chunks and of the tree-hash chunks. */
export const ENTRY_PREFIX = 'E';
export const HASH_PREFIX = 'H';
export const entryKey = (chunk: number): string => ENTRY_PREFIX + hex(chunk, 12);
export const hashKey = (chunk: number): string => HASH_PREFIX + hex(chunk, 12);
export const checkpointKey = (size: number): string => 'C' + hex(size, 14);
/** Prefix of the upper-tree tiles (tree-tiles.ts). */
export const TILE_PREFIX = 'T';
/** The key of upper-tree tile (level, index): key order is (level, index) order. */
export const tileKey = (level: number, index: number): string => TILE_PREFIX + hex(level, 2) + hex(index, 12);
/** The key range holding exactly the tiles of one tile level. */
export const tileLevelRange = (level: number): { gte: string; lt: string } => ({ gte: TILE_PREFIX + hex(level, 2), lt: TILE_PREFIX + hex(level + 1, 2) });
/** The tile index of a tile key. */
export const indexOfTileKey = (key: string): number => parseInt(key.slice(3), 16);
export const signerPostingKey = (sid: string, segment: number): string => `s${sid}!${hex(segment, 12)}`;
export const topicPostingKey = (topic: string, segment: number): string => `t${topic}\u0000${hex(segment, 12)}`;
export const timePostingKey = (minute: number, segment: number): string => `m${hex(minute, 10)}!${hex(segment, 12)}`;
/** Prefix of every checkpoint key, and the key range holding exactly them (`C…` below `D`). */
export const CHECKPOINT_PREFIX = 'C';
export const CHECKPOINT_RANGE: Readonly<{ gte: string; lt: string }> = Object.freeze({ gte: 'C', lt: 'D' });
/** Prefix of a signer's postings (all segments); `signerPostingEnd` is the first key after them. */
export const signerPostingPrefix = (sid: string): string => `s${sid}!`;
export const signerPostingEnd = (sid: string): string => `s${sid}"`;
/** Prefix of an exact topic's postings (all segments). */
export const topicPostingPrefix = (topic: string): string => `t${topic}\u0000`;
/** The range of minute-posting keys for minutes lo..hi (all segments). */
export const timePostingRange = (lo: number, hi: number): [string, string] => ['m' + hex(lo, 10) + '!', 'm' + hex(hi, 10) + '!\uffff'];
/** Whether a posting key is a signer's (its postings start with the signer's last seq). */
export const isSignerPostingKey = (key: string): boolean => key[0] === 's';
/** The signer id of a signer posting key. */
export const signerIdOfPostingKey = (key: string): string => key.slice(1, 17);
/** Prefix of the auxiliary records (Ledger.aux), and the LevelDB key of one. */
export const AUX_PREFIX = 'X';
export const auxKey = (key: string): string => AUX_PREFIX + key;
/** The fixed-width hex of a segment number, as it ends posting keys. */
export const segmentHex = (segment: number): string => hex(segment, 12);

/** Parse the chunk or segment number at the end of a chunk or posting key. */
export function chunkOfKey(key: string): number {
  return parseInt(key.slice(-12), 16);
}

/** Parse the size of a checkpoint key. */
export function sizeOfCheckpointKey(key: string): number {
  return parseInt(key.slice(1), 16);
}

/** Short stable id of a signer for index keys: 16 hex of SHA-256(did). */
export function signerId(did: string): string {
  return crypto.createHash('sha256').update(did).digest('hex').slice(0, 16);
}

/** Index in the hash stream of the first node completed by the chunk's first leaf. */
export function chunkNodeStart(chunk: number): number {
  return nodeCount(chunk * CHUNK);
}

/** Encode leaves as (u32 BE length ‖ bytes)*. */
export function encodeLeaves(leaves: readonly Buffer[]): Buffer {
  let n = 0;
  for (const l of leaves) n += 4 + l.length;
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (const l of leaves) {
    out.writeUInt32BE(l.length, o);
    l.copy(out, o + 4);
    o += 4 + l.length;
  }
  return out;
}

/** Decode a chunk of leaves; throws E_CORRUPT when the framing is broken. */
export function decodeLeaves(buf: Buffer, chunk: number): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + 4 > buf.length) throw new StoreError('E_CORRUPT', `entry chunk ${chunk} is truncated`, { cause: { index: chunk * CHUNK + out.length } });
    const len = buf.readUInt32BE(o);
    if (o + 4 + len > buf.length) throw new StoreError('E_CORRUPT', `entry chunk ${chunk} is truncated`, { cause: { index: chunk * CHUNK + out.length } });
    out.push(buf.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (out.length > CHUNK)
    throw new StoreError('E_CORRUPT', `entry chunk ${chunk} holds more than ${CHUNK} entries`, { cause: { index: chunk * CHUNK + CHUNK } });
  return out;
}

/** Posting values: an optional u64 BE last seq, then u16 BE offsets within the segment. */
export function encodePostings(offsets: readonly number[], lastSeq?: number): Buffer {
  const head = lastSeq === undefined ? 0 : 8;
  const out = Buffer.allocUnsafe(head + 2 * offsets.length);
  if (lastSeq !== undefined) {
    out.writeUInt32BE(Math.floor(lastSeq / 0x100000000), 0);
    out.writeUInt32BE(lastSeq >>> 0, 4);
  }
  offsets.forEach((o, i) => out.writeUInt16BE(o, head + 2 * i));
  return out;
}

/** Decode posting offsets into absolute entry indices (skip the 8-byte seq of signer postings). */
export function decodePostings(buf: Buffer, segment: number, withSeq: boolean): number[] {
  const out: number[] = [];
  for (let o = withSeq ? 8 : 0; o + 2 <= buf.length; o += 2) out.push(segment * SEGMENT + buf.readUInt16BE(o));
  return out;
}

/** The last seq stored at the head of a signer posting value. */
export function postingSeq(buf: Buffer): number {
  return buf.readUInt32BE(0) * 0x100000000 + buf.readUInt32BE(4);
}

/** The hash at a stream position inside a chunk's hash value. */
export function hashAt(buf: Buffer, chunk: number, position: number): Buffer | undefined {
  const off = (position - chunkNodeStart(chunk)) * HASH_SIZE;
  if (off < 0 || off + HASH_SIZE > buf.length) return undefined;
  return buf.subarray(off, off + HASH_SIZE);
}
