/**
 * The LevelDB layout of a ledger. Entries and tree hashes are append-only arrays stored in
 * chunks of CHUNK leaves, so that one group commit writes a handful of keys however many
 * entries it holds (the layout, not LevelDB, decides the throughput):
 *
 *   meta                        JSON {format, origin, operator}
 *   head                        JSON {size, frontier: [base64 …]}  — the only state read at open
 *   E<chunk>                    the chunk's leaves: (u32 BE length ‖ leaf bytes)*
 *   H<chunk>                    the perfect-subtree hashes completed by the chunk's leaves,
 *                               in append order (merkle.nodePosition)
 *   C<size>                     signed checkpoint note at that tree size (the history)
 *   S<signer id>                JSON {did, seq}: last seq of a signer (replay protection)
 *   s<signer id>!<chunk>        postings: offsets in the chunk of that signer's entries
 *   t<topic>\0<chunk>           postings by exact topic
 *   m<minute>!<chunk>           postings by entry time (ts / 60000)
 *   X<key>                      auxiliary records (Ledger.aux): witness state, cosignatures
 *
 * Numbers in keys are fixed-width lower-case hex so that key order is numeric order.
 */
import * as crypto from 'node:crypto';
import { StoreError } from './errors';
import { HASH_SIZE, nodeCount } from './merkle';

/** Leaves per chunk. */
export const CHUNK = 64;
/** Format version written in meta. */
export const FORMAT = 1;

export const KEY_META = 'meta';
export const KEY_HEAD = 'head';

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

export const entryKey = (chunk: number): string => 'E' + hex(chunk, 12);
export const hashKey = (chunk: number): string => 'H' + hex(chunk, 12);
export const checkpointKey = (size: number): string => 'C' + hex(size, 14);
export const signerKey = (sid: string): string => 'S' + sid;
export const signerPostingKey = (sid: string, chunk: number): string => `s${sid}!${hex(chunk, 12)}`;
export const topicPostingKey = (topic: string, chunk: number): string => `t${topic}\u0000${hex(chunk, 12)}`;
export const timePostingKey = (minute: number, chunk: number): string => `m${hex(minute, 10)}!${hex(chunk, 12)}`;

/** Parse the chunk number at the end of a posting or chunk key. */
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
  if (out.length > CHUNK) throw new StoreError('E_CORRUPT', `entry chunk ${chunk} holds more than ${CHUNK} entries`, { cause: { index: chunk * CHUNK + CHUNK } });
  return out;
}

/** Postings: offsets within a chunk, one byte each (CHUNK ≤ 256). */
export function encodePostings(offsets: readonly number[]): Buffer {
  return Buffer.from(offsets);
}

/** Decode postings into absolute entry indices. */
export function decodePostings(buf: Buffer, chunk: number): number[] {
  const out: number[] = [];
  for (const b of buf) out.push(chunk * CHUNK + b);
  return out;
}

/** The hash at a stream position inside a chunk's hash value. */
export function hashAt(buf: Buffer, chunk: number, position: number): Buffer | undefined {
  const off = (position - chunkNodeStart(chunk)) * HASH_SIZE;
  if (off < 0 || off + HASH_SIZE > buf.length) return undefined;
  return buf.subarray(off, off + HASH_SIZE);
}
