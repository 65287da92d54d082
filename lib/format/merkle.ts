/**
 * RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof verification.
 *
 * Nodes are addressed as (level, index): level 0 holds leaf hashes, and node (l, k) is the
 * root of the perfect subtree over leaves [k·2^l, (k+1)·2^l). Only perfect subtrees are
 * stored; every other hash (roots at past sizes, right edges of proofs) is derived from them.
 */
import * as crypto from 'node:crypto';
import { VerificationError, LedgerError } from '../errors';

/** A 32-byte SHA-256 tree hash. */
export type Hash = Buffer & { readonly __brand: 'Hash' };

export const HASH_SIZE = 32;
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

const sha256: (data: Buffer) => Buffer =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (data) => (crypto as unknown as { hash(a: string, d: Buffer, e: 'buffer'): Buffer }).hash('sha256', data, 'buffer')
    : (data) => crypto.createHash('sha256').update(data).digest();

/** Check and brand 32 bytes as a Hash. */
export function asHash(b: Uint8Array): Hash {
  if (!(b instanceof Uint8Array) || b.length !== HASH_SIZE) throw new VerificationError('E_PROOF', `a tree hash is 32 bytes, got ${b?.length ?? 'none'}`);
  return (Buffer.isBuffer(b) ? b : Buffer.from(b)) as Hash;
}

/** The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Hash = sha256(Buffer.alloc(0)) as Hash;

/** Leaf hash: SHA-256(0x00 ‖ leaf) (RFC 6962 §2.1). */
export function leafHash(leaf: Uint8Array): Hash {
  return sha256(Buffer.concat([LEAF_PREFIX, leaf])) as Hash;
}

/** Interior node hash: SHA-256(0x01 ‖ left ‖ right) (RFC 6962 §2.1). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Hash {
  return sha256(Buffer.concat([NODE_PREFIX, left, right])) as Hash;
}

/** Number of set bits of a non-negative safe integer. */
export function popcount(n: number): number {
  let c = 0;
  let hi = Math.floor(n / 0x100000000);
  let lo = n >>> 0;
  while (lo) {
    lo &= lo - 1;
    c++;
  }
  while (hi) {
    hi &= hi - 1;
    c++;
  }
  return c;
}

/** True when n is an exact power of two (exact in doubles up to 2^53). */
export function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

/** Trailing zero bits of a positive safe integer. */
function ctz(n: number): number {
  let c = 0;
  while (n % 2 === 0) {
    n /= 2;
    c++;
  }
  return c;
}

/**
 * Position of node (level, index) in the append-order stream of perfect-subtree hashes:
 * appending leaf j completes nodes (0, j), (1, ⌊j/2⌋), … (ctz(j+1), ·), and before leaf j
 * the stream holds 2j − popcount(j) hashes.
 */
export function nodePosition(level: number, index: number): number {
  const j = (index + 1) * 2 ** level - 1; // the leaf whose append completes this node
  return 2 * j - popcount(j) + level;
}

/** Number of perfect-subtree hashes stored for a tree of the given size. */
export function nodeCount(size: number): number {
  return 2 * size - popcount(size);
}

/** A completed perfect subtree, as produced by an append. */
export interface NewNode {
  level: number;
  index: number;
  hash: Hash;
}

/**
 * The right edge of a tree (the roots of its perfect subtrees, largest first): enough to
 * append leaves and compute the root without reading anything else.
 */
export class Frontier {
  size: number;
  /** Roots of the perfect subtrees for the set bits of size, from the highest bit down. */
  readonly hashes: Hash[];

  constructor(size = 0, hashes: Hash[] = []) {
    if (hashes.length !== popcount(size)) throw new LedgerError('E_CORRUPT', `frontier of size ${size} needs ${popcount(size)} hashes, got ${hashes.length}`);
    this.size = size;
    this.hashes = hashes;
  }

  clone(): Frontier {
    return new Frontier(this.size, this.hashes.slice());
  }

  /** Append one leaf hash; push each newly completed node (leaf first, then upward) onto out. */
  append(leaf: Hash, out: NewNode[]): void {
    const j = this.size;
    out.push({ level: 0, index: j, hash: leaf });
    let h = leaf;
    const levels = ctz(j + 1);
    for (let l = 1; l <= levels; l++) {
      h = nodeHash(this.hashes.pop() as Hash, h);
      out.push({ level: l, index: (j + 1) / 2 ** l - 1, hash: h });
    }
    this.hashes.push(h);
    this.size = j + 1;
  }

  /** Root hash of the tree (RFC 9162 §2.1.1 MTH). */
  root(): Hash {
    if (this.size === 0) return EMPTY_ROOT;
    let h = this.hashes[this.hashes.length - 1];
    for (let i = this.hashes.length - 2; i >= 0; i--) h = nodeHash(this.hashes[i], h);
    return h;
  }
}

/** Where proof generation reads stored perfect-subtree hashes from. */
export interface NodeReader {
  node(level: number, index: number): Promise<Hash>;
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The right-edge hashes of the trees of recently used sizes: MTH(D[a:n]) (RFC 9162 §2.1.1) for
 * each a where D[a:n] is not a perfect subtree. Every proof at size n whose path leaves the right
 * edge needs one of them, and without this each proof rehashed them from the stored perfect
 * subtrees (one read and one hash per set bit of n). They depend on n alone (the tree is
 * append-only), so they are never invalidated; memory is bounded: the last `max` sizes used
 * (at most 52 hashes each), the least recently used forgotten first.
 */
export class RightEdgeCache {
  readonly #max: number;
  readonly #edges = new Map<number, Map<number, Hash>>();

  constructor(max = 8) {
    if (!(Number.isSafeInteger(max) && max > 0)) throw new LedgerError('E_RANGE', `a right-edge cache holds at least one size, not ${max}`);
    this.#max = max;
  }

  /** Tree sizes whose right edge is held now (for tests: never more than max). */
  get sizes(): number {
    return this.#edges.size;
  }

  /** The memo of size n's right edge (start a → MTH(D[a:n])), now the most recently used. */
  edge(size: number): Map<number, Hash> {
    let e = this.#edges.get(size);
    if (e) this.#edges.delete(size);
    else {
      e = new Map();
      if (this.#edges.size >= this.#max) this.#edges.delete(this.#edges.keys().next().value as number);
    }
    this.#edges.set(size, e);
    return e;
  }

  /** Forget every size (after the store was reopened: the tree is read afresh). */
  clear(): void {
    this.#edges.clear();
  }
}

/**
 * MTH(D[a:b]) from stored perfect subtrees: the left part of every RFC 9162 split is perfect.
 * edge, when given, is the right-edge memo of the tree of size b (RightEdgeCache): the ranges that
 * are not perfect subtrees are looked up there and stored once computed. A hash from the memo is
 * returned as a copy, so a caller that changes a proof cannot change a later one.
 */
async function subtreeHash(r: NodeReader, a: number, b: number, edge?: Map<number, Hash>): Promise<Hash> {
  const n = b - a;
  if (isPowerOfTwo(n) && a % n === 0) return r.node(Math.log2(n), a / n);
  const hit = edge?.get(a);
  if (hit) return Buffer.from(hit) as Hash;
  const k = largestPowerOfTwoBelow(n);
  const [left, right] = await Promise.all([subtreeHash(r, a, a + k), subtreeHash(r, a + k, b, edge)]);
  const h = nodeHash(left, right);
  edge?.set(a, Buffer.from(h) as Hash);
  return h;
}

/** The right-edge memo of size n, or none when n is a power of two (its right edge holds no range that is not perfect). */
function rightEdgeOf(edges: RightEdgeCache | undefined, n: number): Map<number, Hash> | undefined {
  return edges && !isPowerOfTwo(n) ? edges.edge(n) : undefined;
}

/** Root hash of the tree at a past size (RFC 9162 §2.1.1). */
export async function rootAt(r: NodeReader, size: number): Promise<Hash> {
  return size === 0 ? EMPTY_ROOT : subtreeHash(r, 0, size);
}

/**
 * Inclusion proof PATH(m, D[0:n]) (RFC 9162 §2.1.3.1). With edges, the one sibling that may not
 * be a perfect subtree (on the right edge of the tree of this size) comes from that cache.
 */
export async function inclusionProof(r: NodeReader, index: number, size: number, edges?: RightEdgeCache): Promise<Hash[]> {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new LedgerError('E_RANGE', `no leaf ${index} in a tree of size ${size}`);
  }
  const edge = rightEdgeOf(edges, size);
  const path: Promise<Hash>[] = [];
  let a = 0,
    b = size,
    m = index;
  while (b - a > 1) {
    const k = largestPowerOfTwoBelow(b - a);
    if (m < k) {
      path.push(subtreeHash(r, a + k, b, b === size ? edge : undefined));
      b = a + k;
    } else {
      path.push(subtreeHash(r, a, a + k));
      a += k;
      m -= k;
    }
  }
  return (await Promise.all(path)).reverse();
}

/**
 * Consistency proof PROOF(m, D[0:n]) (RFC 9162 §2.1.4.1). With edges, the entries on the right
 * edge of the tree of size n that are not perfect subtrees come from that cache.
 */
export async function consistencyProof(r: NodeReader, m: number, n: number, edges?: RightEdgeCache): Promise<Hash[]> {
  if (!(Number.isSafeInteger(m) && Number.isSafeInteger(n) && m >= 0 && m <= n)) {
    throw new LedgerError('E_RANGE', `no consistency proof from size ${m} to size ${n}`);
  }
  if (m === 0 || m === n) return [];
  const edge = rightEdgeOf(edges, n);
  const out: Promise<Hash>[] = [];
  // SUBPROOF(m, D[a:b], complete), unrolled; entries are collected leaf-side first.
  let a = 0,
    b = n,
    mm = m,
    complete = true;
  while (mm !== b - a) {
    const k = largestPowerOfTwoBelow(b - a);
    if (mm <= k) {
      out.push(subtreeHash(r, a + k, b, b === n ? edge : undefined));
      b = a + k;
    } else {
      out.push(subtreeHash(r, a, a + k));
      a += k;
      mm -= k;
      complete = false;
    }
  }
  if (!complete) out.push(subtreeHash(r, a, b, b === n ? edge : undefined));
  return (await Promise.all(out)).reverse();
}

/** Root implied by an inclusion proof of a leaf hash (RFC 9162 §2.1.3.2), or undefined if it is malformed. */
export function rootFromInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Hash | undefined {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return undefined;
  if (leafHash.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return undefined;
  let fn = index,
    sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0)
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? (r as Hash) : undefined;
}

/**
 * Verify an inclusion proof of the leaf with hash leafHash (RFC 9162 §2.1.3.2); throws
 * VerificationError E_PROOF if it fails.
 */
export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const r = rootFromInclusionProof(index, size, leafHash, proof);
  if (!r || !r.equals(root)) throw new VerificationError('E_PROOF', `inclusion proof for leaf ${index} in tree size ${size} does not verify`);
}

/**
 * The old and new roots a consistency proof implies (RFC 9162 §2.1.4.2, steps 2–7), or
 * undefined if it is malformed for these sizes (0 < size1 < size2). For a power-of-two size1
 * the old root is not in the proof: root1 is prepended (step 2) and comes back as oldRoot.
 */
export function rootsFromConsistencyProof(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
): { oldRoot: Buffer; newRoot: Buffer } | undefined {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 > 0 && size1 < size2)) return undefined;
  if (proof.length === 0 || proof.some((p) => p.length !== HASH_SIZE)) return undefined;
  const p = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1,
    sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(p[0]);
  let sr: Buffer = Buffer.from(p[0]);
  for (const c of p.slice(1)) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0)
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? { oldRoot: fr, newRoot: sr } : undefined;
}

/** Verify a consistency proof (RFC 9162 §2.1.4.2); throws VerificationError E_PROOF if it fails. */
export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  const bad = (why: string): never => {
    throw new VerificationError('E_PROOF', `consistency proof from size ${size1} to ${size2} does not verify: ${why}`);
  };
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0 && size1 <= size2)) bad('sizes out of order');
  if (proof.some((p) => p.length !== HASH_SIZE)) bad('a proof hash is not 32 bytes');
  if (size1 === size2) {
    if (proof.length !== 0) bad('proof must be empty for equal sizes');
    if (!Buffer.from(root1).equals(root2)) bad('roots differ at equal sizes');
    return;
  }
  if (size1 === 0) {
    if (proof.length !== 0) bad('proof must be empty from size 0');
    return;
  }
  if (proof.length === 0) bad('empty proof');
  const roots = rootsFromConsistencyProof(size1, size2, proof, root1);
  if (!roots) bad('malformed for these sizes');
  const { oldRoot: fr, newRoot: sr } = roots as { oldRoot: Buffer; newRoot: Buffer };
  if (!fr.equals(root1)) bad('old root does not match');
  if (!sr.equals(root2)) bad('new root does not match');
}
