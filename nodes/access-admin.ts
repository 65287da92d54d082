/**
 * Admin endpoints of the partner side of "one paste to connect a partner" (README "Partner
 * access › One paste to connect a partner"), used by the bot-partner dialog: ask an owner for
 * access, and ask how that request stands, signed with a deployed bot-identity and sent the
 * way the dialog says (the owner's MQTT rpc topic through a deployed bot-ledger's broker, or
 * its HTTP endpoint).
 *
 *   POST /bot-ledger/partner/access        {origin, operator, identity, via, ledger|url, timeoutMs?,
 *                                           actions, scope?, days?, note?} → {access: <pending request>}
 *   POST /bot-ledger/partner/access-status {origin, operator, identity, via, ledger|url, timeoutMs?, id}
 *                                         → {access: {id, status, grant?: <verified grant terms>}}
 *
 * Both need `bot-ledger.write` (they sign with this runtime's key and reach out). Refusals are
 * {error: {code, message}} with the status of lib/access/access.ts refusalStatus (else 400, 504 for
 * E_TIMEOUT, 502 for an answer that did not verify).
 */
import { refusal, refusalStatus } from '../lib/access/access';
import { accessStatus, type AccessClientOptions, requestAccess } from '../lib/access/access-client';
import { BotError, FormatError } from '../lib/errors';
import { PublicKey } from '../lib/format/identity';
import type { JsonValue } from '../lib/format/jcs';
import { checkOrigin } from '../lib/store/ledger';
import { httpTransport, mqttTransport, OwnerCheck, type PartnerTransport } from '../lib/access/partner';
import { sharedSequence } from '../lib/store/sequence';
import { type AdminHandler, type AdminRequest, type AdminResponse, configError, identityOf, ledgerNodeOf, type NodeAPI, userPath } from './red';

const registered = new WeakSet<object>();

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

/** The partner's key, counter and transport from a dialog's settings (deployed identity and ledger nodes). */
async function clientOf(RED: NodeAPI, b: Record<string, unknown>): Promise<AccessClientOptions & { dispose(): void }> {
  const origin = str(b.origin);
  checkOrigin(origin);
  const operator = PublicKey.fromDid(str(b.operator)).did;
  let identity;
  try {
    identity = identityOf(RED, b.identity, 'partner identity');
  } catch (err) {
    if (err instanceof BotError && /missing/.test(err.message))
      throw configError('E_KEY', 'My identity is not deployed yet: deploy it (with this node), then ask again');
    throw err;
  }
  const timeoutMs = typeof b.timeoutMs === 'number' && b.timeoutMs >= 100 ? Math.min(b.timeoutMs, 60000) : 10000;
  let transport: PartnerTransport;
  let dispose = (): void => undefined;
  if (b.via === 'http') {
    transport = httpTransport(str(b.url), timeoutMs);
  } else {
    let ledgerNode;
    try {
      ledgerNode = ledgerNodeOf(RED, b.ledger);
    } catch {
      throw configError('E_NOT_FOUND', 'My ledger is not deployed yet: deploy it, then ask again (or choose HTTP)');
    }
    if (!ledgerNode.synced) throw configError('E_CLOSED', 'reaching the owner over MQTT needs a ledger with a broker (or choose HTTP)');
    const cons = await ledgerNode.consensus;
    if (!cons) throw new BotError('E_CLOSED', "the ledger's MQTT connection is not running");
    // Is the owner's ledger on this broker at all? Said at once (lib/access/partner.ts OwnerCheck) rather than after the timeout.
    const check = new OwnerCheck(cons.link, { origin, operator });
    dispose = () => check.stop();
    transport = mqttTransport(cons.link, { origin, operator }, timeoutMs, check);
  }
  const counter = sharedSequence(userPath(RED, 'bot-seq'), identity.did);
  return { owner: { origin, operator }, identity, nextSeq: () => counter.next(), transport, dispose };
}

function fail(res: AdminResponse, err: unknown): void {
  const body = refusal(err);
  const code = body.error.code;
  const status = code === 'E_TIMEOUT' ? 504 : code === 'E_GRANT' || code === 'E_SIGNATURE' ? 502 : refusalStatus(code);
  res.status(status).json(body);
}

/** Register the partner-side access endpoints on this runtime's admin app (once). */
export function registerAccessAdmin(RED: NodeAPI): void {
  const http = RED.httpAdmin as unknown as { post(route: string, guard: AdminHandler, h: (req: AdminRequest, res: AdminResponse) => void): void } | undefined;
  if (!http || registered.has(http)) return;
  registered.add(http);
  const write = RED.auth?.needsPermission('bot-ledger.write') ?? ((_q, _s, next) => next());
  http.post('/bot-ledger/partner/access', write, (req, res) => {
    const b = isObject(req.body) ? req.body : {};
    (async () => {
      const ask = {
        actions: Array.isArray(b.actions) ? b.actions.map(String) : [],
        scope: b.scope as JsonValue | undefined,
        days: b.days as number | undefined,
        note: typeof b.note === 'string' ? b.note : undefined,
      };
      if (ask.days !== undefined && typeof ask.days !== 'number') throw new FormatError('E_QUERY', 'days must be a number');
      const c = await clientOf(RED, b);
      try {
        return await requestAccess(c, ask);
      } finally {
        c.dispose();
      }
    })().then(
      (access) => res.json({ access }),
      (err: unknown) => fail(res, err),
    );
  });
  http.post('/bot-ledger/partner/access-status', write, (req, res) => {
    const b = isObject(req.body) ? req.body : {};
    (async () => {
      const c = await clientOf(RED, b);
      try {
        return await accessStatus(c, str(b.id));
      } finally {
        c.dispose();
      }
    })().then(
      (access) => res.json({ access }),
      (err: unknown) => fail(res, err),
    );
  });
}
