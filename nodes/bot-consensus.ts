/**
 * bot-consensus: the consensus status of a ledger entry (docs/design.md "Nodes"): `pending`
 * (appended, not in a checkpoint), `sealed` (in a signed checkpoint), `confirmed` (a
 * checkpoint covering it reached the quorum of cosignatures) or `conflict` (the operator was
 * proven to have signed conflicting checkpoints).
 *
 * - mode `status`: msg.consensus = the status now; one output.
 * - mode `wait`: output 1 once confirmed, output 2 on timeout, conflict or close (msg.error =
 *   {code, message}); any number of waits in flight.
 *
 * The index comes from msg.ledger.index (a bot-append receipt) or msg.payload.index, or from
 * the editor's typed input `index`/`indexType` (msg, flow, global, env, a number); the wait
 * timeout from `timeoutMs`/`timeoutType` (a number of ms, or msg, flow, global, env). Flows
 * saved before those options have no type fields and keep the defaults. With a
 * synced bot-ledger the Consortium answers; a standalone ledger has only the operator's
 * signature: an entry is `pending` until a checkpoint covers it, then `sealed` with 1
 * confirmation, never `confirmed`: that needs at least one witness's cosignature
 * (lib/consortium/quorum.ts isConfirmed). With no witnesses, the status says so and a wait ends at once
 * on output 2 with E_NO_WITNESS, rather than acting on the operator's word alone.
 */
import { ConsensusError, type Consortium, type EntryStatus } from '../lib/consortium/consortium';
import { entryState } from '../lib/consortium/entry-state';
import { BotError } from '../lib/errors';
import { type Ledger } from '../lib/store/ledger';
import { type LedgerLease } from '../lib/store/registry';
import type { DoneFn, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn } from './red-api';
import { type BotLedgerNode, ledgerNodeOf } from './config-nodes';
import { failMessage, setupFailed, StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';
import { openOrThrow, showStoreHealth } from './jobs';
import { describeSetting, evaluate, typedSetting } from './typed-input';

interface BotConsensusDef extends NodeDef {
  name?: string;
  ledger?: string;
  mode?: string;
  timeoutMs?: number | string;
  /** Where the entry index comes from; missing or 'receipt' = msg.ledger.index or msg.payload.index. */
  index?: string;
  indexType?: string;
  /** 'num' (missing = 'num'): timeoutMs is the number of ms; else a typed input evaluated per message. */
  timeoutType?: string;
}

const MAX_TIMEOUT = 24 * 3600 * 1000;

/** The entry index of a message: msg.ledger.index (bot-append receipt) or msg.payload.index. */
function indexOf(msg: NodeMessage, origin: string | undefined): number {
  const r = msg.ledger as { index?: unknown; origin?: unknown } | undefined;
  let v: unknown;
  if (r !== null && typeof r === 'object' && r.index !== undefined) {
    if (origin !== undefined && typeof r.origin === 'string' && r.origin !== origin) {
      throw new BotError('E_NOT_FOUND', `msg.ledger is a receipt of ${r.origin}, not of ${origin}`);
    }
    v = r.index;
  } else {
    const p = msg.payload as { index?: unknown } | undefined;
    if (p !== null && typeof p === 'object') v = p.index;
  }
  if (v === undefined) throw new BotError('E_RANGE', 'no entry index: expected msg.ledger.index (from bot-append) or msg.payload.index');
  return indexValue(v);
}

/** An entry index: a non-negative safe integer, or its decimal text. */
function indexValue(v: unknown, from?: string): number {
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new BotError('E_RANGE', `the entry index${from ? ` (${from})` : ''} must be a non-negative integer`);
  }
  return n;
}

/** A wait timeout: whole milliseconds from 1 to MAX_TIMEOUT, or its decimal text. */
function timeoutValue(v: unknown, from?: string): number {
  const n = typeof v === 'string' && /^\s*\d{1,15}\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_TIMEOUT) {
    throw new BotError('E_RANGE', `timeout${from ? ` (${from})` : ''} must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT}`);
  }
  return n;
}

/** A value or a promise of it, as a promise only when needed. */
function then<T, U>(v: T | Promise<T>, f: (x: T) => U): U | Promise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** Standalone status: only the operator signs, so an entry is at most sealed (entryState with nothing confirmed). */
function standaloneStatus(l: Ledger, index: number, quorum: number): EntryStatus {
  openOrThrow(l);
  if (index >= l.size) throw new BotError('E_RANGE', `no entry ${index} (size ${l.size})`);
  const latest = l.latestCheckpoint();
  const { status, treeSize } = entryState({ index, size: l.size, sealedSize: latest?.size, confirmedSize: 0, conflict: false });
  if (status === 'pending') return { status, index, treeSize, confirmations: 0, quorum, witnesses: [], checkpoint: null };
  return { status, index, treeSize, confirmations: 1, quorum, witnesses: [], checkpoint: latest?.note ?? null };
}

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotConsensus(this: RedNode, def: BotConsensusDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    const mode = def.mode === 'wait' ? 'wait' : 'status';
    const timeoutSetting = typedSetting(def.timeoutMs, def.timeoutType, { value: String(def.timeoutMs ?? ''), type: 'num' });
    const fixedTimeout = timeoutSetting.type === 'num';
    const rawTimeout = !fixedTimeout || timeoutSetting.value.trim() === '' ? 30000 : Number(timeoutSetting.value);
    const indexSetting = typedSetting(def.index, def.indexType, { value: '', type: 'receipt' });
    let ledgerNode: BotLedgerNode | undefined;
    let lease: LedgerLease | undefined;
    let setupError: Error | undefined;
    try {
      if (def.mode !== undefined && def.mode !== '' && def.mode !== 'status' && def.mode !== 'wait') {
        throw new BotError('E_QUERY', `mode must be "status" or "wait", not ${JSON.stringify(def.mode)}`);
      }
      if (!['receipt', 'msg', 'flow', 'global', 'env', 'num', 'jsonata'].includes(indexSetting.type)) {
        throw new BotError('E_QUERY', `index type must be receipt, msg, flow, global, env, num or jsonata, not ${JSON.stringify(indexSetting.type)}`);
      }
      if (!['num', 'msg', 'flow', 'global', 'env', 'jsonata'].includes(timeoutSetting.type)) {
        throw new BotError('E_QUERY', `timeout type must be num, msg, flow, global, env or jsonata, not ${JSON.stringify(timeoutSetting.type)}`);
      }
      if (!Number.isSafeInteger(rawTimeout) || rawTimeout < 1 || rawTimeout > MAX_TIMEOUT) {
        throw new BotError('E_RANGE', `timeout must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT}`);
      }
      ledgerNode = ledgerNodeOf(RED, def.ledger);
      lease = ledgerNode.acquire();
      showStoreHealth(lease, status, () => status.now({}));
    } catch (err) {
      setupError = setupFailed(node, status, err);
    }
    const timeoutMs = rawTimeout;
    /** The entry index of a message, from the receipt or the configured typed input. */
    const entryIndex = (msg: NodeMessage): number | Promise<number> => {
      if (indexSetting.type === 'receipt') return indexOf(msg, lease!.current?.origin);
      return then(evaluate(RED, node, indexSetting, msg), (v) => indexValue(v, describeSetting(indexSetting)));
    };
    /** The wait timeout of a message. */
    const waitTimeout = (msg: NodeMessage): number | Promise<number> => {
      if (fixedTimeout) return timeoutMs;
      return then(evaluate(RED, node, timeoutSetting, msg), (v) => timeoutValue(v, describeSetting(timeoutSetting)));
    };
    let closing = false;
    // The partner connection, shown while it is not up (a config node has no status of its own).
    const offLink = ledgerNode?.onLinkState((st) => {
      if (closing) return;
      status.now(
        st === 'connected'
          ? { fill: 'green', shape: 'ring', text: tr('bot-consensus.status.partnersConnected') }
          : { fill: 'yellow', shape: 'ring', text: tr('bot-consensus.status.partners', { state: st }) },
      );
    });
    /** Waits in flight: each ends exactly once (confirmed, failed or closed). */
    const waits = new Set<(err: BotError) => void>();

    const total = (c: Consortium | undefined, s: EntryStatus): number => c?.policy.total ?? s.quorum;
    const show = (s: EntryStatus, c: Consortium | undefined): void => {
      const fill = s.status === 'confirmed' ? 'green' : s.status === 'conflict' ? 'red' : s.status === 'sealed' ? 'blue' : 'yellow';
      const quorum =
        s.witnesses.length === 0 && !(c && c.policy.witnesses.length > 0) ? tr('bot-consensus.status.noWitnesses') : `${s.confirmations}/${total(c, s)}`;
      const word =
        s.status === 'confirmed'
          ? tr('bot-consensus.status.confirmed')
          : s.status === 'sealed'
            ? tr('bot-consensus.status.sealed')
            : s.status === 'conflict'
              ? tr('bot-consensus.status.conflictWord')
              : s.status === 'pending'
                ? tr('bot-consensus.status.pending')
                : String(s.status);
      status.update(() => ({ fill, shape: 'dot', text: tr('bot-consensus.status.entry', { status: word, quorum, index: s.index }) }));
    };

    /** The status now, from the Consortium when synced, else from the ledger alone. */
    const current = async (index: number): Promise<{ s: EntryStatus; c: Consortium | undefined }> => {
      const ln = ledgerNode!;
      const l = openOrThrow(await lease!.ledger);
      const c = await ln.consensus;
      if (c) return { s: await c.status(index), c };
      const policy = await ln.policy();
      return { s: standaloneStatus(l, index, policy.quorum), c };
    };

    /** Resolves when the entry is confirmed; rejects with ConsensusError E_TIMEOUT / E_CONFLICT / E_CLOSED. */
    const waitFor = (index: number, timeoutMs: number): Promise<EntryStatus> =>
      new Promise<EntryStatus>((resolve, reject) => {
        let ended = false;
        const stops: (() => void)[] = [];
        const end = (err: Error | undefined, s?: EntryStatus): void => {
          if (ended) return;
          ended = true;
          waits.delete(cancel);
          for (const f of stops.splice(0)) f();
          if (err) reject(err);
          else resolve(s!);
        };
        const cancel = (err: BotError): void => end(err);
        waits.add(cancel);
        (async () => {
          const ln = ledgerNode!;
          const l = openOrThrow(await lease!.ledger);
          const c = await ln.consensus;
          if (ended) return;
          if (index >= l.size) throw new BotError('E_RANGE', `no entry ${index} (size ${l.size})`);
          if ((c?.policy ?? (await ln.policy())).witnesses.length === 0) {
            throw new ConsensusError(
              'E_NO_WITNESS',
              `ledger ${l.origin} has no witnesses: its entries are sealed by the operator alone and never confirmed (list the partners under Witnesses)`,
            );
          }
          if (c) {
            // The kernel wait has its own timer; it also ends with E_CLOSED when the consortium stops.
            c.waitConfirmed(index, timeoutMs).then(
              (s) => end(undefined, s),
              (err: Error) => end(err),
            );
            return;
          }
          const { quorum } = await ln.policy();
          const timer = setTimeout(() => end(new ConsensusError('E_TIMEOUT', `entry ${index} was not confirmed within ${timeoutMs} ms`)), timeoutMs);
          stops.push(() => clearTimeout(timer));
          const check = (): void => {
            try {
              const s = standaloneStatus(l, index, quorum);
              if (s.status === 'confirmed') end(undefined, s);
            } catch (err) {
              end(err as Error);
            }
          };
          stops.push(l.onCheckpoint(check));
          check();
        })().catch((err: Error) => end(err));
      });

    node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
      if (setupError || !lease || !ledgerNode) {
        done(setupError ?? new BotError('E_NOT_FOUND', 'no ledger configured'));
        return;
      }
      let index: number | Promise<number>;
      let timeout: number | Promise<number>;
      try {
        index = entryIndex(msg);
        timeout = mode === 'wait' ? waitTimeout(msg) : timeoutMs;
      } catch (err) {
        failMessage(status, done, err);
        return;
      }
      if (index instanceof Promise || timeout instanceof Promise) {
        Promise.all([index, timeout]).then(
          ([i, t]) => handle(msg, send, done, i, t),
          (err: unknown) => failMessage(status, done, err instanceof Error ? err : new BotError('E_RANGE', String(err))),
        );
        return;
      }
      handle(msg, send, done, index, timeout);
    });

    function handle(msg: NodeMessage, send: SendFn, done: DoneFn, index: number, timeout: number): void {
      if (mode === 'status') {
        current(index).then(
          ({ s, c }) => {
            msg.consensus = s;
            show(s, c);
            send(msg);
            done();
          },
          (err: unknown) => failMessage(status, done, err),
        );
        return;
      }
      status.update(() => ({ fill: 'yellow', shape: 'ring', text: tr('bot-consensus.status.waiting', { index, n: waits.size }) }));
      waitFor(index, timeout).then(
        (s) => {
          msg.consensus = s;
          show(s, ledgerNode?.consortium);
          send([msg, null]);
          done();
        },
        async (err: unknown) => {
          const e = err instanceof Error ? err : new BotError('E_STORE', String(err));
          const code = (e as BotError).code;
          // Timeout, conflict and close go to output 2; anything else (E_RANGE, closed ledger) to Catch.
          if (!(e instanceof ConsensusError) && !(e instanceof BotError && e.code === 'E_CLOSED' && closing)) {
            failMessage(status, done, e);
            return;
          }
          delete msg.consensus;
          if (!closing) {
            try {
              const { s, c } = await current(index);
              msg.consensus = s;
              show(s, c);
            } catch {
              /* the status could not be read: output 2 without it */
            }
          }
          if (msg.consensus === undefined) msg.consensus = { status: null, index };
          msg.error = { code, message: e.message };
          if (!closing && code !== 'E_CLOSED')
            status.now({
              fill: code === 'E_CONFLICT' ? 'red' : 'yellow',
              shape: 'ring',
              text: code === 'E_CONFLICT' ? tr('bot-consensus.status.conflict', { index }) : tr('bot-consensus.status.timeout', { index }),
            });
          send([null, msg]);
          done();
        },
      );
    }

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      for (const cancel of [...waits]) cancel(new ConsensusError('E_CLOSED', 'the flow was stopped before the entry was confirmed'));
      offLink?.();
      status.stop();
      Promise.resolve(lease?.release())
        .catch((err: unknown) => node.error(err))
        .finally(() => done());
    });
  }

  RED.nodes.registerType('bot-consensus', BotConsensus);
};
