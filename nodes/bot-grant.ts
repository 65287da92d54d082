/**
 * bot-grant: the owner issues, revokes and lists grants to partners
 * (docs/design.md "Partner access"). Grants and revocations are envelopes signed with the ledger's operator key and
 * appended to the ledger, so they replicate to mirrors and are audited like every entry.
 *
 * msg.payload (each field overrides the node's setting):
 *   {op:"grant", subject, actions, scope:{signers, topics, from, until}, notBefore, expires, id}
 *       → msg.payload = the grant envelope (what the partner keeps), msg.grant = its terms,
 *         msg.ledger = its receipt
 *   {op:"revoke", grant:<id>} → msg.payload = the revoke envelope, msg.ledger = its receipt
 *   {op:"list"}               → msg.payload = [{id, subject, actions, scope, expires, status…}]
 *   {op:"requests"}           → msg.payload = the pending access requests (lib/access/access-requests.ts), newest first
 *   {op:"approve", request:<id>, actions?, scope?, days?} → issues the request's grant (narrowed,
 *         never widened): msg.payload = the grant envelope, msg.grant, msg.ledger as for "grant"
 *   {op:"decline", request:<id>} → msg.payload = the declined request
 * With "Send access requests" ticked, each access request the ledger receives (and those pending
 * at deploy) is sent on its own as msg.topic "access-request", msg.payload = the request
 * {id, requester, actions, scope, days, note, ts, received}: a flow can approve by rule.
 * Anything else (e.g. an inject timestamp) issues a grant with the node's settings.
 *
 * Confidential scopes (docs/design.md "Confidential entries"), on a ledger that has some:
 *   approve: the request's `enckey` gets the keys the grant covers (ConfidentialOwner.addReader);
 *         msg.keys = how many were wrapped
 *   grant with msg.payload.enckey (the partner's encryption-key envelope): the same
 *   revoke: rotates every scope whose current key the subject holds (unless another read
 *         grant of it stays active); msg.rotated = the scopes rotated
 *   {op:"rotate", scope} → a new epoch of the scope for its current holders: msg.payload = {scope, epoch}
 *   {op:"scopes"}        → msg.payload = each scope's topics and epochs with their holders
 */
import { AccessRequests } from '../lib/access/access-requests';
import { BotError, FormatError } from '../lib/errors';
import { GrantIndex, type GrantTerms, grantTermsFrom, issueGrant, revokeGrant } from '../lib/access/grants';
import { type Ledger } from '../lib/store/ledger';
import { type LedgerLease } from '../lib/store/registry';
import type { NodeAPI, NodeDef, NodeMessage, RedNode } from './red-api';
import { type BotLedgerNode, ledgerNodeOf, operatorSigner } from './config-nodes';
import { setupFailed, StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';
import { onLedgerMessages, showStoreHealth } from './jobs';
import { scopeSummaries, wrapKeysForGrant } from '../lib/confidential/owner';
import { isPlainObject, type JsonValue } from '../lib/format/jcs';

interface BotGrantDef extends NodeDef {
  name?: string;
  ledger?: string;
  subject?: string;
  actions?: string;
  signers?: string;
  topics?: string;
  validDays?: number | string;
  /** Send each pending access request as a msg (topic "access-request"). */
  announce?: boolean;
}

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotGrant(this: RedNode, def: BotGrantDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let ledgerNode: BotLedgerNode | undefined;
    let lease: LedgerLease | undefined;
    let setupError: Error | undefined;
    let validDays = 30;
    try {
      validDays = def.validDays === undefined || def.validDays === '' ? 30 : Number(def.validDays);
      if (!(validDays > 0 && validDays <= 36500)) throw new FormatError('E_RANGE', 'valid for must be 1 to 36500 days');
      ledgerNode = ledgerNodeOf(RED, def.ledger);
      if (!ledgerNode.canSign) throw new BotError('E_KEY', "grants are signed with the ledger's operator key: give the ledger its operator identity");
      lease = ledgerNode.acquire();
    } catch (err) {
      setupError = setupFailed(node, status, err);
    }
    const signer = operatorSigner(RED, ledgerNode, 'the ledger has no operator identity');

    const show = (l: Ledger): void => {
      GrantIndex.of(l)
        .list()
        .then(
          (list) => {
            const active = list.filter((g) => g.status === 'active').length;
            status.now({ fill: 'green', shape: 'dot', text: active === 1 ? tr('bot-grant.status.activeOne') : tr('bot-grant.status.active', { n: active }) });
          },
          () => undefined,
        );
    };
    let stopAnnounce = (): void => undefined;
    let closing = false;
    if (lease && def.announce) {
      // Access requests as messages, for flows that approve by rule: those pending now, then each new one.
      lease.ledger
        .then(async (l) => {
          if (closing) return;
          const store = AccessRequests.of(l);
          const announce = (r: unknown): void => {
            node.send({ topic: 'access-request', payload: r });
          };
          stopAnnounce = store.onChange((c) => {
            if (c.type === 'added') announce(c.request);
          });
          for (const r of (await store.list()).reverse()) announce(r);
        })
        .catch(() => undefined);
    }
    if (lease) {
      lease.ledger.then(show, (err: unknown) => status.fail(err));
      showStoreHealth(lease, status, (l) => {
        if (l) show(l);
      });
    }

    /** Wrap the confidential scopes' keys the grant covers to the partner's encryption key (msg.keys: how many). */
    async function wrapKeys(terms: GrantTerms, enckey: JsonValue | undefined, msg: NodeMessage): Promise<void> {
      const keys = await wrapKeysForGrant(() => (ledgerNode as BotLedgerNode).confidential(), terms, enckey);
      if (keys !== undefined) msg.keys = keys;
    }

    async function handle(l: Ledger, msg: NodeMessage): Promise<void> {
      const p = isPlainObject(msg.payload) ? msg.payload : {};
      const op = p.op ?? 'grant';
      const now = Date.now();
      if (op === 'list') {
        msg.payload = await GrantIndex.of(l).list(now);
        return;
      }
      if (op === 'requests') {
        msg.payload = await AccessRequests.of(l).list();
        return;
      }
      if (op === 'decline') {
        msg.payload = { ...(await AccessRequests.of(l).decline(String(p.request ?? p.id))), status: 'declined' };
        status.now({ fill: 'yellow', shape: 'dot', text: tr('bot-grant.status.declined') });
        return;
      }
      const { identity, counter } = signer();
      const nextSeq = (): number => counter.next();
      if (op === 'approve') {
        const { envelope, receipt, terms, enckey } = await AccessRequests.of(l).approve(
          String(p.request ?? p.id),
          identity,
          nextSeq,
          { actions: p.actions, scope: p.scope, days: p.days },
          now,
        );
        msg.payload = envelope.toJSON();
        msg.grant = terms;
        msg.ledger = receipt;
        await wrapKeys(terms, enckey, msg);
        status.now({ fill: 'green', shape: 'dot', text: tr('bot-grant.status.approved', { actions: terms.actions.join('+'), index: receipt.index }) });
        return;
      }
      if (op === 'grant') {
        const terms = grantTermsFrom({ subject: def.subject, actions: def.actions, signers: def.signers, topics: def.topics, validDays }, p, l.origin, now);
        const { envelope, receipt } = await issueGrant(l, identity, nextSeq, terms, now);
        msg.payload = envelope.toJSON();
        msg.grant = terms;
        msg.ledger = receipt;
        await wrapKeys(terms, p.enckey as JsonValue | undefined, msg);
        status.now({ fill: 'green', shape: 'dot', text: tr('bot-grant.status.granted', { actions: terms.actions.join('+'), index: receipt.index }) });
        return;
      }
      if (op === 'revoke') {
        const id = p.grant ?? p.id;
        // Revocation rotates the confidential scopes the subject held (its later entries stay closed to it).
        const owner = await (ledgerNode as BotLedgerNode).confidential();
        const { envelope, receipt, ...rest } = owner ? await owner.revokeGrant(id as string) : await revokeGrant(l, identity, nextSeq, id as string, now);
        msg.payload = envelope.toJSON();
        msg.ledger = receipt;
        if ('rotated' in rest) msg.rotated = rest.rotated;
        status.now({ fill: 'yellow', shape: 'dot', text: tr('bot-grant.status.revoked', { id: String(id).slice(0, 12), index: receipt.index }) });
        return;
      }
      if (op === 'rotate') {
        const owner = await (ledgerNode as BotLedgerNode).confidential();
        if (!owner) throw new BotError('E_SCOPE', 'this ledger has no confidential scopes');
        const scope = String(p.scope ?? '');
        const epoch = await owner.rotate(scope);
        msg.payload = { scope, epoch };
        status.now({ fill: 'green', shape: 'dot', text: tr('bot-grant.status.rotated', { scope: scope.slice(0, 24), epoch }) });
        return;
      }
      if (op === 'scopes') {
        msg.payload = await scopeSummaries(l);
        return;
      }
      throw new FormatError(
        'E_QUERY',
        `unknown op ${JSON.stringify(String(op)).slice(0, 40)} (use "grant", "revoke", "list", "requests", "approve", "decline", "rotate" or "scopes")`,
      );
    }

    onLedgerMessages(node, status, lease, setupError, handle, () => {
      closing = true;
      stopAnnounce();
    });
  }

  RED.nodes.registerType('bot-grant', BotGrant);
};
