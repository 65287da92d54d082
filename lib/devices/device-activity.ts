/**
 * What each enrolled device has been doing, for monitoring views (docs/design.md "Devices"):
 * its last `seq`, when it was last seen (the `ts` of its latest entry), its message rate, and
 * whether it went silent. Followed live from the ledger's commits; a device not seen since the
 * view started is looked up once in the ledger's signer postings (a few bounded queries).
 */
import type { Ledger } from '../store/ledger';
import { RateMeter } from '../view/rate';
import { DeviceRegistry, type DeviceView } from './device-registry';

/** Window of a device's message rate (ms). */
export const DEVICE_RATE_WINDOW_MS = 300_000;
/** A device with no entry for this long (ms) is flagged silent, by default. */
export const DEFAULT_SILENT_MS = 15 * 60_000;

/** A device as the Ledger sidebar lists it. */
export interface DeviceRow extends DeviceView {
  /** Its current key's last seq in the ledger, null if none. */
  lastSeq: number | null;
  /** Ledger index of its current key's latest entry, null if none. */
  lastIndex: number | null;
  /** `ts` of that entry (ms), null if none. */
  lastSeen: number | null;
  /** Entries per minute over the last five minutes (seen live by this runtime). */
  perMinute: number;
  /** Active, and nothing from it for longer than the silence threshold (or never). */
  silent: boolean;
}

interface Seen {
  index: number;
  ts: number;
  seq: number;
}

const SIGNER = Buffer.from('"signer":"');
const activities = new WeakMap<Ledger, DeviceActivity>();

/** The signer of a leaf without parsing it: JCS orders `payload` before `signer`, and no later field can hold the text. */
function signerOf(leaf: Buffer): string | undefined {
  const at = leaf.lastIndexOf(SIGNER);
  if (at < 0) return undefined;
  const start = at + SIGNER.length;
  const end = leaf.indexOf(0x22, start);
  return end < 0 ? undefined : leaf.toString('latin1', start, end);
}

/** The latest entry a signer appended, found in growing windows from the end (each a postings read). */
export async function lastEntryBy(ledger: Ledger, signer: string): Promise<Seen | undefined> {
  const size = ledger.size;
  for (let window = 1024; ; window *= 8) {
    const from = Math.max(0, size - window);
    let last: Seen | undefined;
    for (let start = from; ;) {
      const rows = await ledger.query({ signer, from: start, to: size, limit: 10000 });
      if (rows.length > 0) {
        const e = rows[rows.length - 1];
        last = { index: e.index, ts: e.envelope.envelope.ts, seq: e.envelope.envelope.seq };
      }
      if (rows.length < 10000) break;
      start = rows[rows.length - 1].index + 1;
    }
    if (last || from === 0) return last;
  }
}

/** Live activity of the devices of one open ledger. */
export class DeviceActivity {
  readonly ledger: Ledger;
  readonly registry: DeviceRegistry;
  #seen = new Map<string, Seen>();
  #rates = new Map<string, RateMeter>();
  #looked = new Set<string>();
  #stop: () => void;

  private constructor(ledger: Ledger) {
    this.ledger = ledger;
    this.registry = DeviceRegistry.of(ledger);
    this.#stop = ledger.onCommit((c) => {
      const now = Date.now();
      c.leaves.forEach((leaf, i) => {
        const signer = signerOf(leaf);
        if (signer === undefined || !this.registry.state.knows(signer)) return;
        const e = JSON.parse(leaf.toString('utf8')) as { ts: number; seq: number };
        this.#seen.set(signer, { index: c.from + i, ts: e.ts, seq: e.seq });
        let r = this.#rates.get(signer);
        if (!r) {
          r = new RateMeter(DEVICE_RATE_WINDOW_MS, 10);
          this.#rates.set(signer, r);
        }
        r.tick(1, now);
      });
    });
  }

  /** The activity tracker of a ledger (one per open Ledger). */
  static of(ledger: Ledger): DeviceActivity {
    let a = activities.get(ledger);
    if (!a) {
      a = new DeviceActivity(ledger);
      activities.set(ledger, a);
    }
    return a;
  }

  /** Every device with its state and activity at `now`, newest enrolment first; `silentMs` is the silence threshold. */
  async rows(now = Date.now(), silentMs = DEFAULT_SILENT_MS): Promise<DeviceRow[]> {
    const devices = await this.registry.list(now);
    const out: DeviceRow[] = [];
    for (const d of devices) {
      let seen = this.#seen.get(d.key);
      if (!seen && !this.#looked.has(d.key)) {
        this.#looked.add(d.key);
        seen = await lastEntryBy(this.ledger, d.key);
        const later = this.#seen.get(d.key);
        if (seen && (!later || later.index < seen.index)) this.#seen.set(d.key, seen);
        seen = this.#seen.get(d.key);
      }
      const lastSeen = seen?.ts ?? null;
      out.push({
        ...d,
        lastSeq: seen?.seq ?? null,
        lastIndex: seen?.index ?? null,
        lastSeen,
        perMinute: Math.round((this.#rates.get(d.key)?.rate(now, 3) ?? 0) * 60 * 10) / 10,
        silent: d.status === 'active' && (lastSeen === null || now - lastSeen > silentMs),
      });
    }
    return out;
  }

  /** Stop following the ledger. */
  close(): void {
    this.#stop();
    activities.delete(this.ledger);
  }
}
