/**
 * bot-verify: checks an envelope's signature, its signer (trusted list, or a signer the
 * configured ledger has accepted before, or a device enrolled in the `devices` ledger for the
 * envelope's topic: docs/design.md "Devices"), freshness (`ts` within maxSkewMs of now) and
 * replay (`seq` above the last one seen from that signer here and in the ledgers).
 *
 * Output 1: valid — msg.payload = the envelope object, msg.signer = its did:key.
 * Output 2: rejected — msg.error = {code, message}, code one of malformed | bad-signature |
 * unknown-signer | replay | stale, and with a device registry revoked | retired | rotated |
 * expired | topic-not-allowed. A rejection is a routed outcome, not a node error. A key the
 * registry knows (enrolled once) is judged by the registry alone, whatever the trusted list says;
 * the registry follows its ledger's commits, so a revocation applies to the next message.
 *
 * `property` (editor typed input, msg only; absent in older flows = payload) names the msg
 * property holding the envelope; on output 1 it holds the envelope object.
 */
import { DEFAULT_MAX_ENTRY_BYTES, type SignedEnvelope, verifyEnvelope } from '../lib/format/envelope';
import { BotError, isBotError } from '../lib/errors';
import { isPlainObject, jsonProblem } from '../lib/format/jcs';
import { PublicKey } from '../lib/format/identity';
import { type LedgerLease } from '../lib/store/registry';
import { type DeviceRejection, DeviceRegistry } from '../lib/devices/device-registry';
import type { DoneFn, NodeAPI, NodeDef, NodeMessage, RedNode, SendFn } from './red-api';
import { configError, identityOf, intSetting, ledgerNodeOf } from './config-nodes';
import { failMessage, StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';
import { openOrThrow, showStoreHealth } from './jobs';
import { messageProperty, setMessageProperty } from './typed-input';

interface BotVerifyDef extends NodeDef {
  name?: string;
  trusted?: string;
  trustIdentity?: string;
  ledger?: string;
  /** A bot-ledger whose enrolled devices are trusted, each for its topics (docs/design.md "Devices"). */
  devices?: string;
  maxSkewMs?: number | string;
  /** The msg property holding the envelope (default payload). */
  property?: string;
}

/** Why an envelope was rejected. */
type RejectCode = 'malformed' | 'bad-signature' | 'unknown-signer' | 'replay' | 'stale' | DeviceRejection;

const MAX_SIGNERS = 10000;

/** Parse the trusted list: did:keys separated by newlines, spaces or commas; '#' starts a comment. */
function parseTrusted(text: string | undefined): Set<string> {
  const out = new Set<string>();
  (text ?? '').split(/\r?\n/).forEach((line, i) => {
    for (const did of line
      .replace(/#.*$/, '')
      .split(/[\s,]+/)
      .filter((s) => s !== '')) {
      try {
        out.add(PublicKey.fromDid(did).did);
      } catch (err) {
        throw configError('E_DID', `trusted signers, line ${i + 1}: ${(err as Error).message}`);
      }
    }
  });
  return out;
}

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotVerify(this: RedNode, def: BotVerifyDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let trusted = new Set<string>();
    let lease: LedgerLease | undefined;
    let devices: LedgerLease | undefined;
    let maxSkewMs = 300000;
    let setupError: Error | undefined;
    const property = typeof def.property === 'string' && def.property.trim() !== '' ? def.property.trim() : 'payload';
    try {
      trusted = parseTrusted(def.trusted);
      if (def.trustIdentity) trusted.add(identityOf(RED, def.trustIdentity, 'trusted identity').did);
      maxSkewMs = intSetting(def.maxSkewMs, 300000);
      if (Number.isNaN(maxSkewMs)) throw configError('E_RANGE', 'max clock skew must be a whole number of milliseconds (0 = no check)');
      if (def.ledger) {
        lease = ledgerNodeOf(RED, def.ledger).acquire();
        showStoreHealth(lease, status, () => status.now({}));
      }
      if (def.devices) {
        devices = ledgerNodeOf(RED, def.devices).acquire();
        // Build the registry as soon as the ledger is open, so the first message does not wait for it.
        devices.ledger.then((l) => DeviceRegistry.of(l).sync()).catch(() => undefined);
      }
    } catch (err) {
      setupError = err as Error;
      node.error(err);
    }
    /** Last accepted seq per signer (insertion order = least recently accepted first). */
    const lastSeen = new Map<string, number>();
    let accepted = 0;
    let rejected = 0;
    let lastReason = '';
    const show = (): void =>
      status.update(() => ({
        fill: rejected > 0 && lastReason !== '' ? 'yellow' : 'green',
        shape: 'dot',
        text: lastReason
          ? tr('bot-verify.status.countsReason', { accepted, rejected, reason: lastReason })
          : tr('bot-verify.status.counts', { accepted, rejected }),
      }));
    if (setupError) status.fail(setupError);
    else
      status.now({
        fill: 'grey',
        shape: 'ring',
        text:
          tr('bot-verify.status.trusted', { n: trusted.size }) +
          (lease ? tr('bot-verify.status.plusLedger') : '') +
          (devices ? tr('bot-verify.status.plusDevices') : ''),
      });
    lease?.ledger.catch((err: unknown) => status.fail(err));
    devices?.ledger.catch((err: unknown) => status.fail(err));

    const reject = (msg: NodeMessage, send: SendFn, done: DoneFn, code: RejectCode, message: string, signer?: string): void => {
      rejected++;
      lastReason = code;
      if (signer !== undefined) msg.signer = signer;
      msg.error = { code, message };
      show();
      send([null, msg]);
      done();
    };

    async function handle(msg: NodeMessage, send: SendFn, done: DoneFn): Promise<void> {
      let env: SignedEnvelope;
      let p: unknown;
      try {
        p = messageProperty(RED, msg, property);
        if (p === undefined) throw new BotError('E_ENVELOPE', `msg.${property} is missing: there is no envelope to verify`);
        // A shallow copy: verifying freezes the object it is given, which must not be the msg's.
        // isPlainObject, not a prototype test: an envelope parsed in a function node (another
        // realm) is a plain object too.
        const input = isPlainObject(p) ? { ...p } : p;
        env = verifyEnvelope(input, { maxBytes: lease?.current?.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES });
      } catch (err) {
        // A value inside that is not JSON: name it where the flow has it (msg.payload.payload.a is a Map).
        const e = isBotError(err, 'E_JSON') ? (jsonProblem(p, `msg.${property}`) ?? err) : err;
        reject(msg, send, done, isBotError(e, 'E_SIGNATURE') ? 'bad-signature' : 'malformed', (e as Error).message);
        return;
      }
      const { signer, seq, ts, topic } = env.envelope;
      let ledgerSeq = -1;
      if (lease) {
        const l = openOrThrow(await lease.ledger);
        ledgerSeq = await l.lastSeq(signer);
      }
      let registry: DeviceRegistry | undefined;
      if (devices) {
        const l = openOrThrow(await devices.ledger);
        registry = DeviceRegistry.of(l);
        if (!registry.current) await registry.sync(); // current whenever its commits were applied as they came
        if (devices !== lease && registry.state.knows(signer)) ledgerSeq = Math.max(ledgerSeq, await l.lastSeq(signer));
      }
      // From here on, everything is synchronous: concurrent messages cannot interleave.
      if (registry?.state.knows(signer)) {
        const c = registry.state.check(signer, topic, { index: registry.ledger.size, ts: Math.max(ts, Date.now()) });
        if (!c.ok) {
          reject(msg, send, done, c.code, c.message, signer);
          return;
        }
      } else if (!trusted.has(signer) && ledgerSeq < 0) {
        reject(msg, send, done, 'unknown-signer', `signer ${signer} is not ${registry ? 'an enrolled device nor ' : ''}trusted`, signer);
        return;
      }
      if (maxSkewMs > 0 && Math.abs(Date.now() - ts) > maxSkewMs) {
        reject(msg, send, done, 'stale', `ts ${ts} is more than ${maxSkewMs} ms from now`, signer);
        return;
      }
      const last = Math.max(lastSeen.get(signer) ?? -1, ledgerSeq);
      if (seq <= last) {
        reject(msg, send, done, 'replay', `seq ${seq} of ${signer} is not above its last seq ${last}`, signer);
        return;
      }
      lastSeen.delete(signer);
      lastSeen.set(signer, seq);
      if (lastSeen.size > MAX_SIGNERS) lastSeen.delete(lastSeen.keys().next().value as string);
      setMessageProperty(RED, msg, property, JSON.parse(env.bytes.toString('utf8')) as unknown);
      msg.signer = signer;
      accepted++;
      lastReason = '';
      show();
      send([msg, null]);
      done();
    }

    node.on('input', (msg: NodeMessage, send: SendFn, done: DoneFn) => {
      if (setupError) {
        done(setupError);
        return;
      }
      handle(msg, send, done).catch((err: unknown) => failMessage(status, done, err));
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      status.stop();
      Promise.all([lease?.release(), devices?.release()])
        .catch((err: unknown) => node.error(err))
        .finally(() => done());
    });
  }

  RED.nodes.registerType('bot-verify', BotVerify);
};
