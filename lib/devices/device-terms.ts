/**
 * The device entries of a ledger, as bytes and rules (docs/design.md "Devices"):
 *
 *   device-enrol   signed by the operator, payload
 *                  {"ledger":<origin>,"device":<did:key>,"name","topics":[MQTT filters],"expires"?,"meta"?}
 *   device-retire  signed by the operator, payload {"ledger","device":<device id>,"reason"?}
 *   device-revoke  the same, for a device whose key must no longer be trusted
 *   device-rotate  signed by the device's current key, topic ROTATE_TOPIC, payload {"ledger","key":<new did:key>}
 *
 * A device's id is the did:key it was first enrolled with; it stays its id after rotations.
 * Parsing is strict (unknown fields, wrong types, malformed filters are refused with E_DEVICE).
 */
import { BotError } from '../errors';
import type { EnvelopeInput } from '../format/envelope';
import { type DidKey, PublicKey } from '../format/identity';
import { canonicalize, isPlainObject, type JsonValue } from '../format/jcs';
import { lines, timeValue } from '../format/lines';
import { checkTopicFilter, printable } from '../format/topic';

/** Envelope kinds of the device registry. */
export const DEVICE_KINDS = { enrol: 'device-enrol', retire: 'device-retire', revoke: 'device-revoke', rotate: 'device-rotate' } as const;
/** The topic every rotation envelope carries, so the ledger's topic postings find rotations without a scan. */
export const ROTATE_TOPIC = 'bot/device/rotate';
/** Most topic filters of one device. */
export const MAX_DEVICE_TOPICS = 64;
/** Largest `meta` object, in canonical JSON bytes. */
export const MAX_META_BYTES = 2048;

/** A device entry that is not valid (E_DEVICE). */
export class DeviceError extends BotError {}

/** What the operator enrols: the device's key, a name, the topics it may sign for. */
export interface EnrolTerms {
  /** The ledger's origin. */
  ledger: string;
  /** The device's did:key (its id when first enrolled). */
  device: DidKey;
  name: string;
  /** MQTT topic filters (MQTT 3.1.1 §4.7) the device may sign readings for. */
  topics: string[];
  /** Not valid after (ms since the epoch). */
  expires?: number;
  /** Free description: model, location, … (a JSON object). */
  meta?: Record<string, JsonValue>;
}

/** What a retirement or revocation names. */
export interface EndTerms {
  ledger: string;
  /** The device's id (its first did:key). */
  device: DidKey;
  reason?: string;
}

/** What a rotation names: the device's new key. */
export interface RotateTerms {
  ledger: string;
  key: DidKey;
}

function bad(msg: string): DeviceError {
  return new DeviceError('E_DEVICE', msg);
}

function only(o: Record<string, unknown>, keys: string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${what} has an unknown field ${printable(k, 40)}`);
}

function did(v: unknown, what: string): DidKey {
  if (typeof v !== 'string') throw bad(`${what} must be a did:key`);
  return PublicKey.fromDid(v).did;
}

function ledgerOf(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw bad('ledger must be the origin of the ledger');
  return v;
}

function text(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > max) throw bad(`${what} must be text of 1 to ${max} characters`);
  return v;
}

/** Check a list of MQTT topic filters (MQTT 3.1.1 §4.7.1): 1 to MAX_DEVICE_TOPICS, each well-formed. */
export function parseDeviceTopics(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_DEVICE_TOPICS) throw bad(`topics must be a list of 1 to ${MAX_DEVICE_TOPICS} MQTT topic filters`);
  return v.map((t) => {
    if (typeof t !== 'string') throw bad('topics must be MQTT topic filters');
    try {
      checkTopicFilter(t);
    } catch {
      throw bad(`topics: ${printable(t, 60)} is not an MQTT topic filter (MQTT 3.1.1 §4.7.1)`);
    }
    return t;
  });
}

/** Parse an enrol payload strictly; throws DeviceError E_DEVICE naming the field. */
export function parseEnrolTerms(v: unknown): EnrolTerms {
  if (!isPlainObject(v)) throw bad('an enrolment payload must be an object');
  only(v, ['ledger', 'device', 'name', 'topics', 'expires', 'meta'], 'enrolment');
  const t: EnrolTerms = {
    ledger: ledgerOf(v.ledger),
    device: did(v.device, 'device'),
    name: text(v.name, 'name', 128),
    topics: parseDeviceTopics(v.topics),
  };
  if (v.expires !== undefined) {
    if (typeof v.expires !== 'number' || !Number.isSafeInteger(v.expires) || v.expires < 0) throw bad('expires must be a time in ms since the epoch');
    t.expires = v.expires;
  }
  if (v.meta !== undefined) {
    if (!isPlainObject(v.meta)) throw bad('meta must be a JSON object');
    let bytes: number;
    try {
      bytes = Buffer.byteLength(canonicalize(v.meta as JsonValue));
    } catch {
      throw bad('meta must be plain JSON');
    }
    if (bytes > MAX_META_BYTES) throw bad(`meta must be at most ${MAX_META_BYTES} bytes of JSON`);
    t.meta = v.meta as Record<string, JsonValue>;
  }
  return t;
}

/** Parse a retire or revoke payload strictly. */
export function parseEndTerms(v: unknown): EndTerms {
  if (!isPlainObject(v)) throw bad('a retirement or revocation payload must be an object');
  only(v, ['ledger', 'device', 'reason'], 'retirement');
  const t: EndTerms = { ledger: ledgerOf(v.ledger), device: did(v.device, 'device') };
  if (v.reason !== undefined) t.reason = text(v.reason, 'reason', 256);
  return t;
}

/** Parse a rotate payload strictly. */
export function parseRotateTerms(v: unknown): RotateTerms {
  if (!isPlainObject(v)) throw bad('a rotation payload must be an object');
  only(v, ['ledger', 'key'], 'rotation');
  return { ledger: ledgerOf(v.ledger), key: did(v.key, 'key') };
}

/** The envelope fields of an enrolment (sign it with the operator's key). */
export function enrolInput(terms: EnrolTerms, seq: number, ts: number): EnvelopeInput {
  return { kind: DEVICE_KINDS.enrol, seq, ts, payload: parseEnrolTerms(terms) as unknown as JsonValue };
}

/** The envelope fields of a retirement or revocation (sign it with the operator's key). */
export function endInput(kind: 'retire' | 'revoke', terms: EndTerms, seq: number, ts: number): EnvelopeInput {
  return { kind: DEVICE_KINDS[kind], seq, ts, payload: parseEndTerms(terms) as unknown as JsonValue };
}

/**
 * The envelope fields of a key rotation: the device signs them with its CURRENT key (its
 * `seq` counter continues), naming its new key; the ledger records it (docs/design.md "Devices").
 */
export function rotateInput(ledger: string, newKey: string, seq: number, ts: number): EnvelopeInput {
  return { kind: DEVICE_KINDS.rotate, seq, ts, topic: ROTATE_TOPIC, payload: parseRotateTerms({ ledger, key: newKey }) as unknown as JsonValue };
}

/** What an operator's enrol request falls back to: the node's topic filters and validity. */
export interface EnrolDefaults {
  topics: string[];
  /** Days an enrolment is valid for; 0 = no expiry. */
  validDays: number;
}

const DAY_MS = 86_400_000;

/** A time in a request: ms, numeric text or a date (Date.parse); absent when empty. */
function requestTime(v: unknown, what: string): number | undefined {
  const t = timeValue(v);
  if (t === null) throw bad(`${what} must be ms since the epoch or a date`);
  return t;
}

/**
 * The enrolment terms of an operator's request (bot-device's msg.payload), each field over the
 * defaults: `device` (or `key`), `name` (else "device <part of its key>"), `topics` (a list, or
 * filters one a line or comma-separated), `expires` (else now + validDays), `meta`; parsed strictly.
 */
export function enrolRequestTerms(p: Record<string, unknown>, ledger: string, defaults: EnrolDefaults, now: number): EnrolTerms {
  const t: Record<string, unknown> = {
    ledger,
    device: p.device ?? p.key,
    name: p.name ?? (typeof p.device === 'string' ? `device ${p.device.slice(8, 16)}` : undefined),
    topics: p.topics === undefined ? defaults.topics : Array.isArray(p.topics) ? p.topics : lines(String(p.topics), true),
  };
  const expires = requestTime(p.expires, 'expires') ?? (defaults.validDays > 0 ? now + defaults.validDays * DAY_MS : undefined);
  if (expires !== undefined) t.expires = expires;
  if (p.meta !== undefined) t.meta = p.meta;
  return parseEnrolTerms(t);
}
