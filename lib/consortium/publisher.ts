/**
 * A ledger's side of the partner exchange over MQTT (docs/design.md "Sync over MQTT"), under
 * `<prefix>/<ledgerId>/…`:
 *
 *   checkpoint             retained: the latest signed checkpoint note (republished on every
 *                          connect, since a broker restart without persistence loses it)
 *   entries                each durable group commit, `{"from", "size", "leaves": [envelope…]}`, split into
 *                          messages of at most MAX_ENTRIES_PER_MESSAGE entries and MAX_ANSWER_BYTES
 *   rpc                    request/response (lib/consortium/mqtt-link.ts): partners' signed requests, checkpoint, entries,
 *                          inclusion, consistency
 *   add-checkpoint         retained (with `witnessRequests`): the C2SP tlog-witness add-checkpoint request
 *                          body from the previous checkpoint to the latest, published just before it, so
 *                          that every witness holding the previous one cosigns without a consistency RPC
 *   cosignature/<witness>  retained: a witness's latest cosigned checkpoint (lib/consortium/consortium.ts)
 *   conflict               retained: equivocation evidence (lib/consortium/consortium.ts)
 */
import { toBase64 } from '../format/bytes';
import { FormatError, LedgerError } from '../errors';
import { type Ledger, type StoredCheckpoint } from '../store/ledger';
import { MAX_ANSWER_BYTES, type MqttLink } from './mqtt-link';
import { formatAddCheckpointRequest } from './witness';

/** Most entries answered by one `entries` RPC call or carried by one `entries` message (fewer when MAX_ANSWER_BYTES is reached first). */
export const MAX_ENTRIES_PER_MESSAGE = 1000;

/** Bytes of an `entries` body besides its leaves: `{"from":…,"size":…,"leaves":[…]}` with 16-digit numbers. */
const ENTRIES_OVERHEAD = 64;

/**
 * Split leaves into consecutive pages of at most MAX_ENTRIES_PER_MESSAGE leaves whose bodies
 * stay within MAX_ANSWER_BYTES (one leaf and a comma each); a page holds at least one leaf,
 * so a single leaf above the budget is a page of its own. Returns the page lengths.
 */
export function pageBySize(sizes: readonly number[]): number[] {
  const pages: number[] = [];
  let n = 0;
  let bytes = ENTRIES_OVERHEAD;
  for (const size of sizes) {
    if (n > 0 && (n >= MAX_ENTRIES_PER_MESSAGE || bytes + size + 1 > MAX_ANSWER_BYTES)) {
      pages.push(n);
      n = 0;
      bytes = ENTRIES_OVERHEAD;
    }
    n++;
    bytes += size + 1;
  }
  if (n > 0) pages.push(n);
  return pages;
}

/** The MQTT topics of a ledger. */
export interface LedgerTopics {
  checkpoint: string;
  entries: string;
  rpc: string;
  /** Retained tlog-witness add-checkpoint request bodies (docs/design.md "Witness exchange"). */
  addCheckpoint: string;
  cosignature: (witnessId: string) => string;
  cosignatures: string;
  conflict: string;
}

/** Topics of the ledger with this id under a prefix (default `bot/v1`). */
export function ledgerTopics(ledgerId: string, prefix = 'bot/v1'): LedgerTopics {
  if (!/^[0-9a-f]{16}$/.test(ledgerId)) throw new FormatError('E_QUERY', `not a ledger id: ${JSON.stringify(ledgerId)}`);
  const base = `${prefix}/${ledgerId}`;
  return {
    checkpoint: `${base}/checkpoint`,
    entries: `${base}/entries`,
    rpc: `${base}/rpc`,
    addCheckpoint: `${base}/add-checkpoint`,
    cosignature: (w) => `${base}/cosignature/${w}`,
    cosignatures: `${base}/cosignature/+`,
    conflict: `${base}/conflict`,
  };
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new FormatError('E_QUERY', `${what} must be a non-negative integer`);
  return v;
}

function params(p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new FormatError('E_QUERY', 'params must be an object');
  return p as Record<string, unknown>;
}

/**
 * Answer one RPC call about a ledger: what any partner may read of it. `entries` answers at
 * most MAX_ENTRIES_PER_MESSAGE entries within MAX_ANSWER_BYTES, at least one: a page may end
 * before `to`, and E_TOO_LARGE when the entry at `from` alone is above MAX_ANSWER_BYTES.
 */
export async function answerLedgerRpc(ledger: Ledger, method: string, p: unknown): Promise<unknown> {
  switch (method) {
    case 'checkpoint':
      return { note: ledger.latestCheckpoint()?.note ?? null, treeSize: ledger.size };
    case 'entries': {
      const q = params(p);
      const from = int(q.from, 'from');
      const to = Math.min(int(q.to, 'to'), from + MAX_ENTRIES_PER_MESSAGE, ledger.size);
      const entries: unknown[] = [];
      let bytes = ENTRIES_OVERHEAD;
      for await (const e of ledger.entries(from, to)) {
        // JSON.stringify of the parsed leaf is as long as its JCS bytes (RFC 8785 §3.2 serializes as ECMAScript does).
        if (bytes + e.leaf.length + 1 > MAX_ANSWER_BYTES) {
          if (entries.length > 0) break;
          throw new LedgerError(
            'E_TOO_LARGE',
            `entry ${e.index} is ${e.leaf.length} bytes, above the ${MAX_ANSWER_BYTES}-byte budget of an MQTT answer: it cannot be sent over MQTT`,
          );
        }
        bytes += e.leaf.length + 1;
        entries.push(JSON.parse(e.leaf.toString('utf8')));
      }
      return { from, entries };
    }
    case 'inclusion': {
      const q = params(p);
      const proof = await ledger.inclusionProof(int(q.index, 'index'), int(q.size, 'size'));
      return { proof: proof.map(toBase64) };
    }
    case 'consistency': {
      const q = params(p);
      const proof = await ledger.consistencyProof(int(q.from, 'from'), int(q.to, 'to'));
      return { proof: proof.map(toBase64) };
    }
    default:
      throw new FormatError('E_QUERY', `unknown method ${JSON.stringify(method).slice(0, 40)}`);
  }
}

/** What a LedgerPublisher offers besides checkpoints and proofs. */
export interface PublisherOptions {
  /** Answers the `request` RPC method: partners' signed requests (lib/access/access.ts); without it the method is refused. */
  requests?: (params: unknown) => Promise<unknown>;
  /**
   * Publish every entry on the `entries` topic and answer the `entries` RPC, for mirrors
   * (default true). false: entries leave the ledger only through granted requests; witnesses
   * still get checkpoints and consistency proofs, which reveal hashes, not entries.
   */
  shareEntries?: boolean;
  /**
   * Before each new checkpoint, publish retained on `add-checkpoint` the C2SP tlog-witness
   * add-checkpoint request body (`old <previous size>`, the consistency proof, the checkpoint):
   * one proof shared by every witness that holds the previous checkpoint, instead of one
   * consistency RPC (request and answer) per witness (default false; the Consortium sets it
   * when the ledger has witnesses).
   */
  witnessRequests?: boolean;
}

/**
 * Publishes a ledger to its partners: the retained checkpoint, new entries, and RPC answers.
 * Stop it before closing the ledger.
 *
 * Size limits (lib/consortium/mqtt-link.ts): a partner's link drops messages above MAX_MESSAGE_BYTES
 * (1 MiB), so what is built from entries — an `entries` RPC answer, an `entries` message —
 * is paged by size (MAX_ANSWER_BYTES, the rest is room for the RPC wrapper) as well as by
 * count: a page holds at least one entry, and a partner asks again from where a short page
 * ended (lib/consortium/mirror.ts). One entry larger than MAX_ANSWER_BYTES (possible when the ledger's
 * largest entry is set above about 960 KiB) cannot cross MQTT: the `entries` RPC answers
 * E_TOO_LARGE for it, and an `entries` message holding it alone is refused by the link
 * (with a 'drop' event) when it is above MAX_MESSAGE_BYTES.
 */
export class LedgerPublisher {
  readonly topics: LedgerTopics;
  #stops: (() => void)[] = [];

  #opts: PublisherOptions;

  constructor(
    readonly ledger: Ledger,
    readonly link: MqttLink,
    readonly ledgerId: string,
    opts: PublisherOptions = {},
  ) {
    this.topics = ledgerTopics(ledgerId, link.prefix);
    this.#opts = opts;
  }

  /** Start publishing (idempotent). */
  start(): void {
    if (this.#stops.length > 0) return;
    // The add-checkpoint body of the latest checkpoint (witnessRequests), and the checkpoint its proof starts from.
    let offer: { note: string; body: string } | undefined;
    let from: StoredCheckpoint | undefined = this.ledger.latestCheckpoint();
    let chain: Promise<void> = Promise.resolve();
    const publishCheckpoint = (): void => {
      const cp = this.ledger.latestCheckpoint();
      if (!cp) return;
      // The body first: a witness that gets it before the checkpoint needs no RPC for it.
      if (offer && offer.note === cp.note) this.link.publish(this.topics.addCheckpoint, offer.body, { retain: true }).catch(() => undefined);
      this.link.publish(this.topics.checkpoint, cp.note, { retain: true }).catch(() => undefined);
    };
    const onCheckpoint = (c: StoredCheckpoint): void => {
      if (this.#opts.witnessRequests !== true) {
        publishCheckpoint();
        return;
      }
      // In checkpoint order: each body proves the step from the checkpoint before it.
      chain = chain.then(async () => {
        const prev = from;
        from = c;
        if (prev && prev.size < c.size && !this.ledger.closed) {
          try {
            const proof = prev.size === 0 ? [] : await this.ledger.consistencyProof(prev.size, c.size);
            offer = { note: c.note, body: formatAddCheckpointRequest(prev.size, proof, c.note) };
          } catch {
            offer = undefined; // closed meanwhile, or a proof above 63 lines: witnesses ask over RPC
          }
        }
        if (this.#stops.length > 0) publishCheckpoint();
      });
    };
    this.#stops.push(
      this.link.onConnect(publishCheckpoint),
      this.ledger.onCheckpoint(onCheckpoint),
      this.ledger.onCommit((c) => {
        if (this.#opts.shareEntries === false) return;
        if (this.link.state !== 'connected') return; // mirrors catch up through the entries RPC
        // Paged by count and size; a single leaf above the budget is refused by the link with a 'drop' event.
        let i = 0;
        for (const n of pageBySize(c.leaves.map((l) => l.length))) {
          const leaves = c.leaves.slice(i, i + n);
          const body = `{"from":${c.from + i},"size":${c.size},"leaves":[${leaves.map((l) => l.toString('utf8')).join(',')}]}`;
          this.link.publish(this.topics.entries, body).catch(() => undefined);
          i += n;
        }
      }),
      this.link.serve(this.topics.rpc, (method, p) => {
        if (method === 'request' && this.#opts.requests) return this.#opts.requests(p);
        if (method === 'entries' && this.#opts.shareEntries === false) {
          return Promise.reject(new LedgerError('E_SCOPE', 'this ledger shares its entries only under grants (send a signed request)'));
        }
        return answerLedgerRpc(this.ledger, method, p);
      }),
    );
  }

  /** Stop publishing and answering. */
  stop(): void {
    for (const s of this.#stops.splice(0)) s();
  }
}
