/**
 * bot-append: appends msg.payload (an envelope object, JSON text or bytes; verified by the
 * kernel) to a ledger. Messages are not serialized: the next one is accepted while earlier
 * appends are still being written, so the ledger groups them into one synced batch (group
 * commit). Once the entry is durable, msg.ledger = {origin, index, leafHash, treeSize}.
 *
 * Mode "partner" (supply data to an owner's ledger under an append grant, through a
 * bot-partner config node): msg.payload is a signed envelope or a list of them; they are sent
 * in one signed request (appended all or none) and msg.ledger = the owner's receipt (a list
 * for a list): {origin, index, leafHash, treeSize, proof, checkpoint: {origin, size, root,
 * note}}, output only once the checkpoint's signature by the owner's operator and the entry's
 * inclusion proof in it verified (lib/access/access.ts verifyAppendAnswer) — evidence to keep. A
 * refusal is an error naming its code.
 *
 * On a ledger with confidential scopes (docs/design.md "Confidential entries"), an entry on a
 * scope's topics is sealed by the ledger's operator before it is appended (msg.ledger is the
 * sealed leaf's receipt): it is never stored in plaintext.
 */
import { types } from 'node:util';
import { BotError } from '../lib/errors';
import { type Receipt } from '../lib/store/ledger';
import { type LedgerLease } from '../lib/store/registry';
import type { DoneFn, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn } from './red-api';
import { type BotPartnerNode, partnerNodeOf, type BotLedgerNode, ledgerNodeOf } from './config-nodes';
import { setupFailed, StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';
import { closeAfterJobs, runJob, showOwnerLink, showStoreHealth } from './jobs';
import { RateMeter } from '../lib/view/rate';

interface BotAppendDef extends NodeDef {
  name?: string;
  ledger?: string;
  mode?: 'local' | 'partner';
  partner?: string;
}

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotAppend(this: RedNode, def: BotAppendDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    const meter = new RateMeter(2000);
    let ledgerNode: BotLedgerNode | undefined;
    let lease: LedgerLease | undefined;
    let setupError: Error | undefined;
    let partner: BotPartnerNode | undefined;
    let unsubscribe: (() => void) | undefined;
    try {
      if (def.mode === 'partner') {
        partner = partnerNodeOf(RED, def.partner);
        unsubscribe = showOwnerLink(partner, status);
      } else {
        ledgerNode = ledgerNodeOf(RED, def.ledger);
        lease = ledgerNode.acquire();
        unsubscribe = showStoreHealth(lease, status, (l) =>
          status.now({ fill: 'grey', shape: 'dot', text: tr('bot-append.status.size', { size: l?.size ?? 0 }) }),
        );
      }
    } catch (err) {
      setupError = setupFailed(node, status, err);
    }
    let lastIndex = -1;
    const inflight = new Set<Promise<void>>();
    const show = (): void =>
      status.update(() => ({
        fill: 'green',
        shape: 'dot',
        text: tr('bot-append.status.appended', { index: lastIndex, rate: meter.rate() }),
      }));
    // Refresh once traffic stops, so the rate falls back to 0 (a fired timer re-arms on refresh()).
    let idle: NodeJS.Timeout | undefined;
    let closing = false;
    const touch = (): void => {
      if (closing) return;
      if (idle) {
        idle.refresh();
        return;
      }
      idle = setTimeout(show, 2500);
      idle.unref();
    };

    if (lease) {
      lease.ledger.then(
        (l) => {
          if (lastIndex < 0) status.now({ fill: 'grey', shape: 'dot', text: tr('bot-append.status.size', { size: l.size }) });
        },
        (err: unknown) => status.fail(err),
      );
    }

    node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
      if (setupError) {
        done(setupError);
        return;
      }
      if (partner) {
        const list = Array.isArray(msg.payload);
        runJob(
          inflight,
          partner.client().then((c) => c.append(list ? (msg.payload as unknown[]) : [msg.payload])),
          status,
          done,
          (receipts) => {
            msg.ledger = list ? receipts : receipts[0];
            meter.tick(receipts.length);
            lastIndex = Math.max(lastIndex, ...receipts.map((r) => r.index));
            status.now({ fill: 'green', shape: 'dot', text: tr('bot-append.status.supplied', { index: lastIndex }) });
            send(msg);
            done();
          },
        );
        return;
      }
      if (!lease) {
        done(new BotError('E_NOT_FOUND', 'no ledger configured'));
        return;
      }
      const p = msg.payload;
      // A shallow copy: appending freezes the envelope object, which must not be the msg's. Bytes
      // are checked with util.types, not instanceof: a Uint8Array made in a function node is of another realm.
      const input = p !== null && typeof p === 'object' && !Array.isArray(p) && !types.isUint8Array(p) ? { ...p } : p;
      runJob(
        inflight,
        // Sealed first when its topic is in a confidential scope (never stored in plaintext).
        (ledgerNode as BotLedgerNode).append(input),
        status,
        done,
        (receipt: Receipt) => {
          msg.ledger = receipt;
          lastIndex = Math.max(lastIndex, receipt.index);
          meter.tick();
          show();
          touch();
          send(msg);
          done();
        },
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      unsubscribe?.();
      if (idle) clearTimeout(idle);
      // Let accepted appends finish (they are durable or failed), then give the ledger back.
      closeAfterJobs(node, status, inflight, lease, done);
    });
  }

  RED.nodes.registerType('bot-append', BotAppend);
};
