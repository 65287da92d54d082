/**
 * bot-device: the operator enrols, retires and revokes devices, and records their key
 * rotations, as entries of the ledger (docs/design.md "Devices"); `bot-verify` with "Devices
 * of" that ledger then trusts each enrolled device for its topics only.
 *
 * msg.payload (each field overrides the node's setting):
 *   {op:"enrol", device:<did:key>, name, topics:[filters], expires?, meta?}
 *       → msg.payload = the enrolment envelope, msg.device = the device, msg.ledger = its receipt
 *   {op:"retire" | "revoke", device:<id or key>, reason?} → the retirement or revocation, the same way
 *   {op:"rotate", envelope:<device-rotate envelope>}, or the rotation envelope itself (kind
 *       "device-rotate", signed by the device's current key) → recorded, the same way
 *   {op:"list"} → msg.payload = the devices with their status, newest enrolment first
 * Enrolments, retirements and revocations are signed with the ledger's operator key.
 */
import { types } from 'node:util';
import { DEVICE_KINDS, DeviceError, enrolRequestTerms } from '../lib/devices/device-terms';
import { type DeviceIssued, DeviceRegistry, endDevice, enrolDevice, rotateDevice } from '../lib/devices/device-registry';
import { isPlainObject } from '../lib/format/jcs';
import { type Ledger } from '../lib/store/ledger';
import { type LedgerLease } from '../lib/store/registry';
import type { NodeAPI, NodeDef, NodeMessage, RedNode } from './red-api';
import { type BotLedgerNode, ledgerNodeOf, operatorSigner } from './config-nodes';
import { setupFailed, StatusThrottle } from './node-status';
import { tr, useI18n } from './i18n';
import { onLedgerMessages, showStoreHealth } from './jobs';
import { lines } from './setting-lines';

interface BotDeviceDef extends NodeDef {
  name?: string;
  ledger?: string;
  /** Default topic filters of an enrolment, one per line. */
  topics?: string;
  /** Default validity of an enrolment in days; empty or 0 = no expiry. */
  validDays?: number | string;
}

/** A rotation envelope as a flow may carry it: an object, JSON text or bytes. */
function envelopeOf(v: unknown): unknown {
  try {
    if (typeof v === 'string') return JSON.parse(v) as unknown;
    if (types.isUint8Array(v)) return JSON.parse(Buffer.from(v).toString('utf8')) as unknown;
  } catch {
    throw new DeviceError('E_JSON', 'the rotation envelope is not JSON');
  }
  return isPlainObject(v) ? { ...v } : v;
}

export = function (RED: NodeAPI): void {
  useI18n(RED);
  function BotDevice(this: RedNode, def: BotDeviceDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusThrottle(node, 500);
    let ledgerNode: BotLedgerNode | undefined;
    let lease: LedgerLease | undefined;
    let setupError: Error | undefined;
    let validDays = 0;
    const topics = lines(def.topics ?? '', true);
    try {
      validDays = def.validDays === undefined || def.validDays === '' ? 0 : Number(def.validDays);
      if (!(validDays >= 0 && validDays <= 36500)) throw new DeviceError('E_RANGE', 'valid for must be 0 (no expiry) to 36500 days');
      ledgerNode = ledgerNodeOf(RED, def.ledger);
      lease = ledgerNode.acquire();
    } catch (err) {
      setupError = setupFailed(node, status, err);
    }
    const signer = operatorSigner(RED, ledgerNode, "enrolments are signed with the ledger's operator key: give the ledger its operator identity");

    const show = (l: Ledger): void => {
      DeviceRegistry.of(l)
        .list()
        .then(
          (list) => {
            const active = list.filter((d) => d.status === 'active').length;
            status.now({ fill: 'green', shape: 'dot', text: active === 1 ? tr('bot-device.status.activeOne') : tr('bot-device.status.active', { n: active }) });
          },
          () => undefined,
        );
    };
    if (lease) {
      lease.ledger.then(show, (err: unknown) => status.fail(err));
      showStoreHealth(lease, status, (l) => {
        if (l) show(l);
      });
    }

    const issued = (msg: NodeMessage, r: DeviceIssued, text: string): void => {
      msg.payload = r.envelope.toJSON();
      msg.device = r.device;
      msg.ledger = r.receipt;
      status.now({
        fill: text === 'enrolled' || text === 'rotated' ? 'green' : 'yellow',
        shape: 'dot',
        text: tr('bot-device.status.issued', {
          what:
            text === 'enrolled'
              ? tr('bot-device.status.enrolled')
              : text === 'rotated'
                ? tr('bot-device.status.rotated')
                : text === 'retired'
                  ? tr('bot-device.status.retired')
                  : tr('bot-device.status.revoked'),
          name: r.device.name.slice(0, 20),
          index: r.receipt.index,
        }),
      });
    };

    async function handle(l: Ledger, msg: NodeMessage): Promise<void> {
      const p = isPlainObject(msg.payload) ? msg.payload : {};
      if (p.kind === DEVICE_KINDS.rotate) {
        issued(msg, await rotateDevice(l, envelopeOf(msg.payload)), 'rotated');
        return;
      }
      const op = p.op ?? 'list';
      const now = Date.now();
      if (op === 'list') {
        msg.payload = await DeviceRegistry.of(l).list(now);
        return;
      }
      if (op === 'rotate') {
        issued(msg, await rotateDevice(l, envelopeOf(p.envelope)), 'rotated');
        return;
      }
      const { identity, counter } = signer();
      const nextSeq = (): number => counter.next();
      if (op === 'enrol' || op === 'enroll') {
        const terms = enrolRequestTerms(p, l.origin, { topics, validDays }, now);
        issued(msg, await enrolDevice(l, identity, nextSeq, terms, now), 'enrolled');
        show(l);
        return;
      }
      if (op === 'retire' || op === 'revoke') {
        const reason = typeof p.reason === 'string' ? p.reason : undefined;
        issued(msg, await endDevice(l, identity, nextSeq, op, String(p.device ?? p.key ?? ''), reason, now), op === 'retire' ? 'retired' : 'revoked');
        show(l);
        return;
      }
      throw new DeviceError('E_QUERY', `unknown op ${JSON.stringify(String(op)).slice(0, 40)} (use "enrol", "retire", "revoke", "rotate" or "list")`);
    }

    onLedgerMessages(node, status, lease, setupError, handle);
  }

  RED.nodes.registerType('bot-device', BotDevice);
};
