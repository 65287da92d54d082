/**
 * A ledger as a C2SP `tlog-tiles` log, read-only (docs/design.md "The tiles view"): the
 * checkpoint, any hash tile and any entry bundle, computed on demand from an open ledger's
 * public read API (stored perfect-subtree hashes and leaves), and the HTTP answers for them.
 *
 * - What is published is what the latest signed checkpoint covers: a tile or bundle is
 *   served only if every hash or entry in it lies below that checkpoint's size, so a client
 *   never sees data no signed root commits to. Full tiles up to that size, and partial tiles
 *   of any width up to it (so those of every earlier checkpoint, tlog-tiles §"Partial Tiles").
 * - A hash tile at level l holds nodes (8·l, n·256 + i) of the ledger's tree; the level-0
 *   tile holds the leaf hashes SHA-256(0x00 ‖ leaf), and the entry bundle holds those leaves:
 *   each entry's canonical signed envelope bytes (docs/design.md "Leaf").
 * - tileResponse never throws: a path that is not a resource is a 404, whatever it holds.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { BotError, FormatError } from '../errors';
import { type Hash } from '../format/merkle';
import type { StoredCheckpoint } from './ledger';
import {
  CHECKPOINT_CONTENT_TYPE,
  CHECKPOINT_PATH,
  encodeEntryBundle,
  leavesPerHash,
  parseTilePath,
  partialTiles,
  refPath,
  TILE_CONTENT_TYPE,
  TILE_HEIGHT,
  TILE_WIDTH,
  type TileRef,
  tilesAtLevel,
  tileWithin,
} from '../format/tlog-tiles';

/** The part of a Ledger the tiles view reads (its public read API). */
export interface TileSource {
  node(level: number, index: number): Promise<Hash>;
  entries(from?: number, to?: number): AsyncIterable<{ leaf: Buffer }>;
  latestCheckpoint(): StoredCheckpoint | undefined;
  checkpoints(): AsyncIterable<StoredCheckpoint>;
}

/** Computes tlog-tiles resources from a ledger (C2SP tlog-tiles §"APIs"). */
export class TileReader {
  readonly #source: TileSource;

  constructor(source: TileSource) {
    this.#source = source;
  }

  /** The published tree size: the latest signed checkpoint's (0 without one). */
  get size(): number {
    return this.#source.latestCheckpoint()?.size ?? 0;
  }

  /** The `checkpoint` resource: the latest signed note, bytes exactly as stored (tlog-tiles §"Checkpoints"). */
  checkpoint(): Buffer | undefined {
    const cp = this.#source.latestCheckpoint();
    return cp ? Buffer.from(cp.note, 'utf8') : undefined;
  }

  /**
   * A hash tile or entry bundle, or undefined when the published tree does not hold all of
   * it. An entry bundle holding an entry above 65,535 bytes throws FormatError E_TOO_LARGE.
   */
  async tile(ref: TileRef): Promise<Buffer | undefined> {
    if (!tileWithin(ref, this.size)) return undefined;
    const first = ref.index * TILE_WIDTH;
    if (ref.entries) {
      const leaves: Buffer[] = [];
      for await (const e of this.#source.entries(first, first + ref.width)) leaves.push(e.leaf);
      if (leaves.length !== ref.width) return undefined;
      try {
        return encodeEntryBundle(leaves);
      } catch (err) {
        if (err instanceof FormatError)
          throw new FormatError('E_TOO_LARGE', `${refPath(ref)}: ${err.message.replace(/^entry (\d+)/, (_, i: string) => `entry ${first + Number(i)}`)}`);
        throw err;
      }
    }
    const level = ref.level * TILE_HEIGHT;
    // One after another: the first read of a stored chunk caches it for the hashes after it
    // (concurrent reads would each miss the cache and read the same chunk again).
    const hashes: Buffer[] = [];
    for (let i = 0; i < ref.width; i++) hashes.push(await this.#source.node(level, first + i));
    return Buffer.concat(hashes);
  }

  /**
   * Every tile and bundle a static copy of the published tree needs (tlog-tiles §"Partial
   * Tiles"): all full ones, the partial ones of the latest checkpoint, and those of earlier
   * checkpoints whose full tile is not published yet. Hash tiles and bundles, lowest level first.
   */
  async *refs(): AsyncGenerator<TileRef> {
    const size = this.size;
    const partial = new Map<string, TileRef>();
    const add = (r: TileRef): void => {
      for (const ref of r.level === 0 ? [r, { ...r, entries: true }] : [r]) partial.set(refPath(ref), ref);
    };
    for await (const cp of this.#source.checkpoints()) {
      if (cp.size > size) continue;
      for (const r of partialTiles(cp.size)) if (!tileWithin({ ...r, width: TILE_WIDTH }, size)) add(r);
    }
    for (const r of partialTiles(size)) add(r);
    for (let level = 0; leavesPerHash(level) <= size; level++) {
      const { full } = tilesAtLevel(size, level);
      for (let index = 0; index < full; index++) {
        yield { entries: false, level, index, width: TILE_WIDTH };
        if (level === 0) yield { entries: true, level, index, width: TILE_WIDTH };
      }
      yield* [...partial.values()]
        .filter((r) => r.level === level)
        .sort((a, b) => a.index - b.index || a.width - b.width || Number(a.entries) - Number(b.entries));
    }
  }
}

const gzipAsync = promisify(zlib.gzip);

/** One HTTP answer of the tiles view. */
export interface TileResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Caching of the mutable checkpoint: a few seconds at most (tlog-tiles §"Checkpoints"). */
export const CHECKPOINT_CACHE = 'no-cache';
/** Caching of full tiles and bundles: immutable (tlog-tiles §"Merkle Tree", §"Log entries"). */
export const FULL_TILE_CACHE = 'public, max-age=31536000, immutable';
/** Caching of partial tiles: their bytes never change, but a log may drop them once the full tile exists. */
export const PARTIAL_TILE_CACHE = 'public, max-age=86400';

/** Whether an Accept-Encoding header allows gzip (RFC 9110 §12.5.3; `q=0` refuses it). */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding.trim() !== 'gzip' && coding.trim() !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function text(status: number, message: string, extra: Record<string, string> = {}): TileResponse {
  const body = Buffer.from(message + '\n', 'utf8');
  return {
    status,
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length), 'Cache-Control': 'no-store', ...extra },
    body,
  };
}

/** Where and how tileResponse answers. */
export interface TileResponseOptions {
  /** The log's path prefix on the server (default `/`). */
  prefix?: string;
  /**
   * Send `Access-Control-Allow-Origin: *` so web pages anywhere can read the tiles (default
   * false). Only for a server of public tiles: never on an admin API, where it would let any
   * page a Node-RED user visits read the ledger if adminAuth is off.
   */
  cors?: boolean;
}

/**
 * The HTTP answer to a request for a tlog-tiles resource under the prefix (C2SP tlog-tiles
 * §"APIs"): GET and HEAD only (405 otherwise), 404 for any path that is not a published
 * resource, entry bundles gzipped when the client accepts it (§"Log entries"). Never throws.
 */
export async function tileResponse(
  reader: TileReader,
  req: { method?: string; url?: string; acceptEncoding?: string },
  opts: TileResponseOptions = {},
): Promise<TileResponse> {
  const prefix = opts.prefix ?? '/';
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed: the tiles are read-only (GET, HEAD)', { Allow: 'GET, HEAD' });
  const url = typeof req.url === 'string' ? req.url : '';
  const pathname = url.split(/[?#]/, 1)[0];
  let res: TileResponse;
  if (!pathname.startsWith(prefix)) {
    res = text(404, 'not found');
  } else {
    res = await resource(reader, pathname.slice(prefix.length), acceptsGzip(req.acceptEncoding), opts.cors === true);
  }
  if (method === 'HEAD') res = { ...res, body: Buffer.alloc(0) };
  return res;
}

async function resource(reader: TileReader, path: string, gzip: boolean, cors: boolean): Promise<TileResponse> {
  const common: Record<string, string> = { 'X-Content-Type-Options': 'nosniff', ...(cors ? { 'Access-Control-Allow-Origin': '*' } : {}) };
  try {
    if (path === CHECKPOINT_PATH) {
      const cp = reader.checkpoint();
      if (!cp) return text(404, 'no signed checkpoint yet');
      return {
        status: 200,
        headers: { ...common, 'Content-Type': CHECKPOINT_CONTENT_TYPE, 'Content-Length': String(cp.length), 'Cache-Control': CHECKPOINT_CACHE },
        body: cp,
      };
    }
    const ref = parseTilePath(path);
    const body = ref ? await reader.tile(ref) : undefined;
    if (!ref || !body) return text(404, 'not found');
    const headers: Record<string, string> = {
      ...common,
      'Content-Type': TILE_CONTENT_TYPE,
      'Cache-Control': ref.width === TILE_WIDTH ? FULL_TILE_CACHE : PARTIAL_TILE_CACHE,
    };
    let out = body;
    if (ref.entries) {
      headers.Vary = 'Accept-Encoding';
      if (gzip) {
        out = await gzipAsync(body); // on libuv's thread pool, not the event loop
        headers['Content-Encoding'] = 'gzip';
      }
    }
    headers['Content-Length'] = String(out.length);
    return { status: 200, headers, body: out };
  } catch (err) {
    if (err instanceof BotError && err.code === 'E_TOO_LARGE') return text(500, err.message);
    if (err instanceof BotError && (err.code === 'E_CLOSED' || err.code === 'E_STORE')) return text(503, 'the ledger is not available', { 'Retry-After': '5' });
    return text(500, `internal error${err instanceof BotError ? ` (${err.code})` : ''}`);
  }
}
