/**
 * A ledger's side of the partner exchange over MQTT (DESIGN.md "Sync over MQTT"), under
 * `<prefix>/<ledgerId>/…`:
 *
 *   checkpoint             retained: the latest signed checkpoint note (republished on every
 *                          connect, since a broker restart without persistence loses it)
 *   entries                each durable group commit, `{"from", "size", "leaves": [envelope…]}`
 *   rpc                    request/response (lib/mqtt-link.ts): partners' signed requests, checkpoint, entries,
 *                          inclusion, consistency
 *   cosignature/<witness>  retained: a witness's latest cosigned checkpoint (lib/consensus.ts)
 *   conflict               retained: equivocation evidence (lib/consensus.ts)
 */
import { toBase64 } from './bytes';
import { FormatError, LedgerError } from './errors';
import { Ledger } from './ledger';
import { MqttLink } from './mqtt-link';

/** Most entries answered by one `entries` RPC call or carried by one `entries` message. */
export const MAX_ENTRIES_PER_MESSAGE = 1000;

/** The MQTT topics of a ledger. */
export interface LedgerTopics {
  checkpoint: string;
  entries: string;
  rpc: string;
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

/** Answer one RPC call about a ledger: what any partner may read of it. */
export async function answerLedgerRpc(ledger: Ledger, method: string, p: unknown): Promise<unknown> {
  switch (method) {
    case 'checkpoint':
      return { note: ledger.latestCheckpoint()?.note ?? null, treeSize: ledger.size };
    case 'entries': {
      const q = params(p);
      const from = int(q.from, 'from');
      const to = Math.min(int(q.to, 'to'), from + MAX_ENTRIES_PER_MESSAGE, ledger.size);
      const entries: unknown[] = [];
      for await (const e of ledger.entries(from, to)) entries.push(JSON.parse(e.leaf.toString('utf8')));
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
  /** Answers the `request` RPC method: partners' signed requests (lib/access.ts); without it the method is refused. */
  requests?: (params: unknown) => Promise<unknown>;
  /**
   * Publish every entry on the `entries` topic and answer the `entries` RPC, for mirrors
   * (default true). false: entries leave the ledger only through granted requests; witnesses
   * still get checkpoints and consistency proofs, which reveal hashes, not entries.
   */
  shareEntries?: boolean;
}

/**
 * Publishes a ledger to its partners: the retained checkpoint, new entries, and RPC answers.
 * Stop it before closing the ledger.
 */
export class LedgerPublisher {
  readonly topics: LedgerTopics;
  #stops: (() => void)[] = [];

  #opts: PublisherOptions;

  constructor(readonly ledger: Ledger, readonly link: MqttLink, readonly ledgerId: string, opts: PublisherOptions = {}) {
    this.topics = ledgerTopics(ledgerId, link.prefix);
    this.#opts = opts;
  }

  /** Start publishing (idempotent). */
  start(): void {
    if (this.#stops.length > 0) return;
    const publishCheckpoint = (): void => {
      const cp = this.ledger.latestCheckpoint();
      if (cp) this.link.publish(this.topics.checkpoint, cp.note, { retain: true }).catch(() => undefined);
    };
    this.#stops.push(
      this.link.onConnect(publishCheckpoint),
      this.ledger.onCheckpoint(publishCheckpoint),
      this.ledger.onCommit((c) => {
        if (this.#opts.shareEntries === false) return;
        if (this.link.state !== 'connected') return; // mirrors catch up through the entries RPC
        for (let i = 0; i < c.leaves.length; i += MAX_ENTRIES_PER_MESSAGE) {
          const leaves = c.leaves.slice(i, i + MAX_ENTRIES_PER_MESSAGE);
          const body = `{"from":${c.from + i},"size":${c.size},"leaves":[${leaves.map((l) => l.toString('utf8')).join(',')}]}`;
          this.link.publish(this.topics.entries, body).catch(() => undefined);
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
