/**
 * A node's work on shared things: one message's job tracked until it settles, a close that
 * lets the jobs in flight finish before giving the ledger back, the open-ledger check, and
 * following a shared ledger's store health or a partner's way to its owner on the status.
 */
import { BotError } from '../lib/errors';
import type { Ledger } from '../lib/store/ledger';
import type { LedgerLease, StoreHealth } from '../lib/store/registry';
import type { BotPartnerNode } from './config-nodes';
import { failMessage, type StatusThrottle, storeFailedText } from './node-status';
import { tr } from './i18n';
import type { DoneFn, NodeMessage, RedNode, SendFn } from './red-api';

/**
 * A close handler's work for nodes that use a ledger: let the jobs in flight finish (accepted
 * appends are durable or failed), stop the status, then give the ledger back.
 */
export function closeAfterJobs(node: RedNode, status: StatusThrottle, inflight: Set<Promise<void>>, lease: LedgerLease | undefined, done: () => void): void {
  Promise.allSettled([...inflight])
    .then(() => {
      status.stop();
      return lease?.release();
    })
    .catch((err: unknown) => node.error(err))
    .finally(() => done());
}

/**
 * Run one message's work: `ok` with its result (it sends and calls done), or failMessage;
 * tracked in `inflight` until settled, so closeAfterJobs lets it finish.
 */
export function runJob<T>(inflight: Set<Promise<void>>, work: Promise<T>, status: StatusThrottle, done: DoneFn, ok: (v: T) => void): void {
  const job: Promise<void> = work
    .then(ok, (err: unknown) => failMessage(status, done, err))
    .finally(() => {
      inflight.delete(job);
    });
  inflight.add(job);
}

/** A message's job (runJob) that sends the msg on and calls done() once `work` has settled well. */
export function runMessageJob(
  inflight: Set<Promise<void>>,
  work: Promise<unknown>,
  status: StatusThrottle,
  msg: NodeMessage,
  send: SendFn,
  done: DoneFn,
): void {
  runJob(inflight, work, status, done, () => {
    send(msg);
    done();
  });
}

/**
 * The input and close handlers of a node whose messages work on its leased ledger: each message
 * runs `handle` on the open ledger as a job (runJob: sent and done when it settles, a red status
 * and done(err) when it fails); a setup error or a missing ledger fails the message; close runs
 * `closing` (if given), then closeAfterJobs.
 */
export function onLedgerMessages(
  node: RedNode,
  status: StatusThrottle,
  lease: LedgerLease | undefined,
  setupError: Error | undefined,
  handle: (l: Ledger, msg: NodeMessage) => Promise<void>,
  closing?: () => void,
): void {
  const inflight = new Set<Promise<void>>();
  node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
    if (setupError || !lease) {
      done(setupError ?? new BotError('E_NOT_FOUND', 'no ledger configured'));
      return;
    }
    runMessageJob(
      inflight,
      lease.ledger.then((l) => handle(openOrThrow(l), msg)),
      status,
      msg,
      send,
      done,
    );
  });
  node.on('close', (_removed: boolean, done: () => void) => {
    closing?.();
    closeAfterJobs(node, status, inflight, lease, done);
  });
}

/** Show the MQTT state of the way to a partner's owner on a node's status; returns the unsubscribe. */
export function showOwnerLink(partner: BotPartnerNode, status: StatusThrottle): () => void {
  return partner.onLinkState((st, problem) =>
    status.now(
      problem !== undefined
        ? { fill: 'red', shape: 'ring', text: problem }
        : st === 'connected'
          ? { fill: 'green', shape: 'ring', text: tr('bot-partner.status.reachable') }
          : { fill: 'yellow', shape: 'ring', text: tr('bot-partner.status.mqtt', { state: st }) },
    ),
  );
}

/**
 * Show a shared ledger's store failure on a node's status (a red ring, storeFailedText) while
 * the registry reopens it, and call `recovered` (to show the normal status) once it works
 * again; returns the unsubscribe. A node whose messages fail meanwhile shows their error.
 */
export function showStoreHealth(lease: LedgerLease, status: StatusThrottle, recovered: (l: Ledger | undefined) => void): () => void {
  const show = (h: StoreHealth): void => {
    if (h.failure) status.now({ fill: 'red', shape: 'ring', text: storeFailedText(h) });
    else recovered(lease.current);
  };
  if (lease.health.failure) show(lease.health);
  return lease.onHealth(show);
}

/** The ledger, or E_CLOSED when it has been closed (some kernel reads do not check that themselves). */
export function openOrThrow<L extends { closed: boolean }>(l: L): L {
  if (l.closed) throw new BotError('E_CLOSED', 'the ledger is closed');
  return l;
}
