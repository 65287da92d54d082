/**
 * The device registry of a ledger (docs/design.md "Devices"): which keys were enrolled for
 * which topics at which ledger index, rebuilt from the ledger's own entries (enrolments,
 * retirements and revocations signed by the operator, rotations signed by the devices), so a
 * mirror, a partner or an auditor with a copy of the ledger reaches the same answers.
 *
 * DeviceState is the state machine (entries applied in index order, no I/O); DeviceRegistry
 * keeps one per open ledger, catches up from the ledger's postings and follows its commits
 * (Ledger.onCommit), so a revocation applies to the next check without a redeploy.
 */
import { BotError } from '../errors';
import { type Envelope, fromTrustedLeaf, SignedEnvelope, signEnvelope, verifyEnvelope } from '../format/envelope';
import type { DidKey, Identity } from '../format/identity';
import type { JsonValue } from '../format/jcs';
import type { Ledger, Receipt } from '../store/ledger';
import { serialized } from '../store/mutex';
import { printable, topicMatches } from '../format/topic';
import {
  DEVICE_KINDS,
  DeviceError,
  type EndTerms,
  endInput,
  enrolInput,
  type EnrolTerms,
  parseEndTerms,
  parseEnrolTerms,
  parseRotateTerms,
  ROTATE_TOPIC,
} from './device-terms';

/** Why a key may not sign a reading (bot-verify's msg.error.code). */
export type DeviceRejection = 'unknown-signer' | 'revoked' | 'retired' | 'expired' | 'topic-not-allowed' | 'rotated';

/** The state of a device. */
export type DeviceStatus = 'active' | 'expired' | 'retired' | 'revoked';

/** How a key's enrolment span ended. */
type SpanEnd = 'retired' | 'revoked' | 'rotated' | 'amended';

/** One key's enrolment for one stretch of the ledger: valid for entries with from < index < to. */
interface Span {
  device: DidKey;
  key: DidKey;
  /** Index of the entry that started it (enrolment, amendment or rotation). */
  from: number;
  /** Index of the entry that ended it. */
  to?: number;
  end?: SpanEnd;
  topics: string[];
  expires?: number;
}

/** A device as the registry holds it. */
export interface DeviceRecord {
  /** The device's id: the did:key it was first enrolled with. */
  id: DidKey;
  name: string;
  /** The key it signs with now (the last rotation's, or its id). */
  key: DidKey;
  topics: string[];
  expires?: number;
  meta?: Record<string, JsonValue>;
  /** Index of its enrolment. */
  enrolled: number;
  /** Every key it has had, oldest first. */
  keys: DidKey[];
  /** Set once retired or revoked: how, where and why. */
  ended?: { how: 'retired' | 'revoked'; index: number; reason?: string };
}

/** A device with its state at a time, as a list shows it. */
export interface DeviceView extends DeviceRecord {
  status: DeviceStatus;
}

/** The answer to "may key K sign topic T at index X, time ts?". */
export type DeviceCheck = { ok: true; device: DeviceRecord } | { ok: false; code: DeviceRejection; message: string; device?: DeviceRecord };

/** Where and when a reading is checked. */
export interface DeviceAt {
  /** The reading's ledger index (for a message not yet appended: the ledger's size). */
  index: number;
  /** Its time (ms), compared with the enrolment's expiry. */
  ts: number;
}

/** The registry state machine: device entries applied in index order; answers from memory. */
export class DeviceState {
  readonly origin: string;
  readonly operator: string;
  #devices = new Map<DidKey, DeviceRecord>();
  #spans = new Map<string, Span[]>();

  constructor(origin: string, operator: string) {
    this.origin = origin;
    this.operator = operator;
  }

  /** Number of devices ever enrolled. */
  get size(): number {
    return this.#devices.size;
  }

  /** Whether the key was ever a device key here (such keys are judged by the registry alone). */
  knows(key: string): boolean {
    return this.#spans.has(key);
  }

  /** The device with this id or any of its keys. */
  device(idOrKey: string): DeviceRecord | undefined {
    const d = this.#devices.get(idOrKey as DidKey);
    if (d) return d;
    const spans = this.#spans.get(idOrKey);
    return spans ? this.#devices.get(spans[0].device) : undefined;
  }

  /**
   * Apply the entry at `index` (entries must come in index order). Entries that are not device
   * entries, not signed by the right key, for another ledger or malformed change nothing (they
   * stay in the ledger as evidence). Returns whether the state changed.
   */
  apply(index: number, e: Envelope): boolean {
    try {
      if (e.kind === DEVICE_KINDS.enrol && e.signer === this.operator) return this.#enrol(index, parseEnrolTerms(e.payload));
      if ((e.kind === DEVICE_KINDS.retire || e.kind === DEVICE_KINDS.revoke) && e.signer === this.operator)
        return this.#end(index, e.kind === DEVICE_KINDS.retire ? 'retired' : 'revoked', parseEndTerms(e.payload));
      if (e.kind === DEVICE_KINDS.rotate && e.topic === ROTATE_TOPIC) return this.#rotate(index, e);
    } catch (err) {
      if (!(err instanceof BotError)) throw err;
    }
    return false;
  }

  #current(key: string, index: number): Span | undefined {
    const spans = this.#spans.get(key);
    const last = spans?.[spans.length - 1];
    return last && last.to === undefined && last.from < index ? last : undefined;
  }

  #enrol(index: number, t: EnrolTerms): boolean {
    if (t.ledger !== this.origin || t.device === this.operator) return false;
    const known = this.#spans.get(t.device);
    const d = this.#devices.get(t.device);
    if (known) {
      // Re-enrolling the current key of an active device amends its topics, expiry, name and meta; keys are never reused.
      const cur = this.#current(t.device, index);
      if (!cur || !d || d.ended || d.key !== t.device) return false;
      cur.to = index;
      cur.end = 'amended';
    }
    const span: Span = { device: t.device, key: t.device, from: index, topics: t.topics };
    if (t.expires !== undefined) span.expires = t.expires;
    this.#spans.set(t.device, [...(known ?? []), span]);
    const rec: DeviceRecord = { id: t.device, name: t.name, key: t.device, topics: t.topics, enrolled: d?.enrolled ?? index, keys: d?.keys ?? [t.device] };
    if (t.expires !== undefined) rec.expires = t.expires;
    if (t.meta !== undefined) rec.meta = t.meta;
    this.#devices.set(t.device, rec);
    return true;
  }

  #end(index: number, how: 'retired' | 'revoked', t: EndTerms): boolean {
    if (t.ledger !== this.origin) return false;
    const d = this.#devices.get(t.device);
    if (!d || d.ended) return false;
    const cur = this.#current(d.key, index);
    if (cur) {
      cur.to = index;
      cur.end = how;
    }
    d.ended = { how, index };
    if (t.reason !== undefined) d.ended.reason = t.reason;
    return true;
  }

  #rotate(index: number, e: Envelope): boolean {
    const t = parseRotateTerms(e.payload);
    if (t.ledger !== this.origin || t.key === this.operator || this.#spans.has(t.key)) return false;
    const cur = this.#current(e.signer, index);
    if (!cur || (cur.expires !== undefined && e.ts > cur.expires)) return false;
    const d = this.#devices.get(cur.device);
    if (!d || d.ended || d.key !== e.signer) return false;
    cur.to = index;
    cur.end = 'rotated';
    const span: Span = { device: cur.device, key: t.key, from: index, topics: cur.topics };
    if (cur.expires !== undefined) span.expires = cur.expires;
    this.#spans.set(t.key, [span]);
    d.key = t.key;
    d.keys = [...d.keys, t.key];
    return true;
  }

  /**
   * Whether `key` was enrolled for `topic` at `at` (docs/design.md "Devices"): an open or later
   * closed enrolment span holding at.index, not expired at at.ts, with a filter matching the
   * topic (MQTT 3.1.1 §4.7). Otherwise the typed reason.
   */
  check(key: string, topic: string | undefined, at: DeviceAt): DeviceCheck {
    const spans = this.#spans.get(key);
    if (!spans) return { ok: false, code: 'unknown-signer', message: `${key} is not an enrolled device` };
    const span = spans.find((s) => s.from < at.index && (s.to === undefined || at.index < s.to));
    const device = this.#devices.get(spans[0].device) as DeviceRecord;
    if (!span) {
      const ended = [...spans].reverse().find((s) => s.to !== undefined && s.to <= at.index);
      if (!ended) return { ok: false, code: 'unknown-signer', message: `${key} was not enrolled yet at index ${at.index}`, device };
      const code = ended.end === 'rotated' ? 'rotated' : ended.end === 'retired' ? 'retired' : 'revoked';
      return { ok: false, code, message: `device ${printable(device.name, 40)}: key ${key} was ${code} at index ${ended.to as number}`, device };
    }
    if (span.expires !== undefined && at.ts > span.expires) {
      return {
        ok: false,
        code: 'expired',
        message: `device ${printable(device.name, 40)}: its enrolment expired at ${new Date(span.expires).toISOString()}`,
        device,
      };
    }
    if (topic === undefined || !span.topics.some((f) => topicMatches(f, topic))) {
      return {
        ok: false,
        code: 'topic-not-allowed',
        message: `device ${printable(device.name, 40)} is not enrolled for ${topic === undefined ? 'readings without a topic' : `topic ${printable(topic, 80)}`}`,
        device,
      };
    }
    return { ok: true, device };
  }

  /** Every device with its status at `now`, newest enrolment first. */
  list(now = Date.now()): DeviceView[] {
    return [...this.#devices.values()]
      .map((d): DeviceView => ({ ...d, status: d.ended ? d.ended.how : d.expires !== undefined && now > d.expires ? 'expired' : 'active' }))
      .sort((a, b) => b.enrolled - a.enrolled);
  }
}

const SCAN_PAGE = 10000;
const DEVICE_KIND = Buffer.from('"kind":"device-');
const registries = new WeakMap<Ledger, DeviceRegistry>();

/**
 * The device registry of one open ledger. It reads the operator's postings and the rotation
 * topic's postings (never a full scan), then applies each durable commit as it happens, so
 * checks see every enrolment, retirement, revocation and rotation appended before them.
 */
export class DeviceRegistry {
  readonly ledger: Ledger;
  readonly state: DeviceState;
  #scanned = 0;
  #syncing = false;
  #listeners = new Set<() => void>();

  private constructor(ledger: Ledger) {
    this.ledger = ledger;
    this.state = new DeviceState(ledger.origin, ledger.operator.did);
    ledger.onCommit((c) => {
      if (this.#syncing || c.from !== this.#scanned) return; // the running catch-up reads it
      let changed = false;
      c.leaves.forEach((leaf, i) => {
        if (leaf.includes(DEVICE_KIND) && this.state.apply(c.from + i, fromTrustedLeaf(leaf).envelope)) changed = true;
      });
      this.#scanned = c.size;
      if (changed) this.#emit();
    });
  }

  /** The registry of a ledger (one per open Ledger, following its commits). */
  static of(ledger: Ledger): DeviceRegistry {
    let r = registries.get(ledger);
    if (!r) {
      r = new DeviceRegistry(ledger);
      registries.set(ledger, r);
    }
    return r;
  }

  /** Whether the registry has applied every entry of the ledger. */
  get current(): boolean {
    return this.#scanned >= this.ledger.size;
  }

  /** Call fn after the registry changed (an enrolment, retirement, revocation or rotation); returns an unsubscribe. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  #emit(): void {
    for (const fn of this.#listeners) {
      try {
        fn();
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  /** Catch up with the entries appended since the last call (cheap when current). */
  async sync(): Promise<void> {
    if (this.current) return;
    await serialized(this, 'sync', async () => {
      this.#syncing = true;
      let changed = false;
      try {
        while (this.#scanned < this.ledger.size) {
          const size = this.ledger.size;
          const rows = [...(await this.#rows({ signer: this.ledger.operator.did }, size)), ...(await this.#rows({ topic: ROTATE_TOPIC }, size))].sort(
            (a, b) => a.index - b.index,
          );
          let last = -1;
          for (const r of rows) {
            if (r.index === last) continue; // an operator-signed entry on the rotation topic comes twice
            last = r.index;
            if (this.state.apply(r.index, r.envelope.envelope)) changed = true;
          }
          this.#scanned = size;
        }
      } finally {
        this.#syncing = false;
      }
      if (changed) this.#emit();
    });
  }

  async #rows(q: { signer?: string; topic?: string }, size: number): Promise<{ index: number; envelope: SignedEnvelope }[]> {
    const out: { index: number; envelope: SignedEnvelope }[] = [];
    let from = this.#scanned;
    for (;;) {
      const rows = await this.ledger.query({ ...q, from, to: size, limit: SCAN_PAGE });
      for (const r of rows) if (r.leaf.includes(DEVICE_KIND)) out.push({ index: r.index, envelope: r.envelope });
      if (rows.length < SCAN_PAGE) return out;
      from = rows[rows.length - 1].index + 1;
    }
  }

  /** Check a message about to be appended now: at the ledger's size, after catching up. */
  async checkNow(key: string, topic: string | undefined, ts: number): Promise<DeviceCheck> {
    await this.sync();
    return this.state.check(key, topic, { index: this.ledger.size, ts });
  }

  /** Every device with its status at `now`, newest enrolment first. */
  async list(now = Date.now()): Promise<DeviceView[]> {
    await this.sync();
    return this.state.list(now);
  }
}

/** A device entry once appended: its envelope and receipt. */
export interface DeviceIssued {
  envelope: SignedEnvelope;
  receipt: Receipt;
  device: DeviceRecord;
}

/**
 * Enrol a device (or amend the enrolment of an active device's current key): an envelope
 * signed by the operator, appended. Refuses a key the ledger already knows in any other way
 * (E_DEVICE): keys are never reused. `nextSeq` is the operator's persistent seq counter.
 */
export async function enrolDevice(ledger: Ledger, operator: Identity, nextSeq: () => number, terms: EnrolTerms, ts = Date.now()): Promise<DeviceIssued> {
  const t = parseEnrolTerms(terms);
  if (t.ledger !== ledger.origin) throw new DeviceError('E_DEVICE', `the enrolment is for ${t.ledger}, not ${ledger.origin}`);
  if (t.device === ledger.operator.did) throw new DeviceError('E_DEVICE', "the operator's key cannot be enrolled as a device");
  const reg = DeviceRegistry.of(ledger);
  return serialized(reg, 'issue', async () => {
    await reg.sync();
    const d = reg.state.device(t.device);
    if (d && (d.ended || d.key !== t.device))
      throw new DeviceError('E_DEVICE', `key ${t.device} was already used by device ${printable(d.name, 40)}: keys are not reused`);
    const envelope = signEnvelope(operator, enrolInput(t, nextSeq(), ts), { maxBytes: ledger.maxEntryBytes });
    const receipt = await ledger.append(envelope);
    await reg.sync();
    return { envelope, receipt, device: reg.state.device(t.device) as DeviceRecord };
  });
}

/** Retire (decommissioned) or revoke (key not to be trusted) a device the ledger holds, by its id or any of its keys: effective from its append. */
export async function endDevice(
  ledger: Ledger,
  operator: Identity,
  nextSeq: () => number,
  how: 'retire' | 'revoke',
  device: string,
  reason?: string,
  ts = Date.now(),
): Promise<DeviceIssued> {
  const reg = DeviceRegistry.of(ledger);
  return serialized(reg, 'issue', async () => {
    await reg.sync();
    const d = typeof device === 'string' ? reg.state.device(device) : undefined;
    if (!d) throw new DeviceError('E_DEVICE', `the ledger holds no device ${printable(String(device), 64)}`);
    if (d.ended) throw new DeviceError('E_DEVICE', `device ${printable(d.name, 40)} was already ${d.ended.how} at index ${d.ended.index}`);
    const terms: EndTerms = { ledger: ledger.origin, device: d.id };
    if (reason !== undefined && reason !== '') terms.reason = reason;
    const envelope = signEnvelope(operator, endInput(how, terms, nextSeq(), ts), { maxBytes: ledger.maxEntryBytes });
    const receipt = await ledger.append(envelope);
    await reg.sync();
    return { envelope, receipt, device: reg.state.device(d.id) as DeviceRecord };
  });
}

/**
 * Record a device's key rotation: the envelope (kind device-rotate, topic ROTATE_TOPIC)
 * signed by the device's current key naming its new key. Checked before it is appended
 * (E_SIGNATURE, E_DEVICE: not a rotation, not for this ledger, the signer is not an active
 * device's current key, the new key is already known); a replay is refused by the ledger's
 * seq rule (E_REPLAY).
 */
export async function rotateDevice(ledger: Ledger, rotation: unknown): Promise<DeviceIssued> {
  const env = rotation instanceof SignedEnvelope ? rotation : verifyEnvelope(rotation, { maxBytes: ledger.maxEntryBytes });
  const e = env.envelope;
  if (e.kind !== DEVICE_KINDS.rotate || e.topic !== ROTATE_TOPIC)
    throw new DeviceError('E_DEVICE', `a rotation is an envelope of kind ${DEVICE_KINDS.rotate} on topic ${ROTATE_TOPIC}`);
  const t = parseRotateTerms(e.payload);
  if (t.ledger !== ledger.origin) throw new DeviceError('E_DEVICE', `the rotation is for ${t.ledger}, not ${ledger.origin}`);
  const reg = DeviceRegistry.of(ledger);
  return serialized(reg, 'issue', async () => {
    await reg.sync();
    const at = { index: ledger.size, ts: e.ts };
    const d = reg.state.device(e.signer);
    if (!d || d.ended || d.key !== e.signer) {
      const why = reg.state.check(e.signer, undefined, at);
      throw new DeviceError('E_DEVICE', `a rotation must be signed by an active device's current key: ${why.ok ? 'not its current key' : why.message}`);
    }
    if (d.expires !== undefined && e.ts > d.expires) throw new DeviceError('E_DEVICE', `device ${printable(d.name, 40)}: its enrolment expired`);
    if (reg.state.knows(t.key) || t.key === ledger.operator.did)
      throw new DeviceError('E_DEVICE', `key ${t.key} is already known to this ledger: keys are not reused`);
    const receipt = await ledger.append(env);
    await reg.sync();
    return { envelope: env, receipt, device: reg.state.device(d.id) as DeviceRecord };
  });
}

/** One reading `checkDeviceReadings` refused. */
export interface DeviceReadingFailure {
  index: number;
  signer: string;
  topic?: string;
  code: DeviceRejection;
  message: string;
}

/** The result of `checkDeviceReadings`. */
export interface DeviceReadingsResult {
  ok: boolean;
  /** Readings checked (kind `reading`, not signed by the operator). */
  readings: number;
  /** Devices the ledger has enrolled. */
  devices: number;
  failed: number;
  /** The first MAX_REPORTED failures, in index order. */
  failures: DeviceReadingFailure[];
}

/** Most failures `checkDeviceReadings` lists (it counts them all). */
export const MAX_REPORTED = 100;

/**
 * A partner's or auditor's check, from the ledger alone (docs/design.md "Devices"): each entry
 * of kind `reading` not signed by the operator was signed by a key enrolled, at its index and
 * its `ts`, for its topic. Reads every entry once.
 */
export async function checkDeviceReadings(ledger: Ledger): Promise<DeviceReadingsResult> {
  const reg = DeviceRegistry.of(ledger);
  await reg.sync();
  const out: DeviceReadingsResult = { ok: true, readings: 0, devices: reg.state.size, failed: 0, failures: [] };
  const size = ledger.size;
  for await (const entry of ledger.entries(0, size)) {
    const e = fromTrustedLeaf(entry.leaf).envelope;
    if (e.kind !== 'reading' || e.signer === reg.state.operator) continue;
    out.readings++;
    const c = reg.state.check(e.signer, e.topic, { index: entry.index, ts: e.ts });
    if (c.ok) continue;
    out.ok = false;
    out.failed++;
    if (out.failures.length < MAX_REPORTED) {
      const f: DeviceReadingFailure = { index: entry.index, signer: e.signer, code: c.code, message: c.message };
      if (e.topic !== undefined) f.topic = e.topic;
      out.failures.push(f);
    }
  }
  return out;
}
