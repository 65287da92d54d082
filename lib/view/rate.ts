/** Event rates for statuses and monitoring views: bounded memory whatever the event rate. */

/** Counts events and reports their rate per second over a sliding window of fixed buckets. */
export class RateMeter {
  #buckets: number[];
  #bucketMs: number;
  #head = -1;
  #first = -1;

  constructor(windowMs = 2000, buckets = 8) {
    this.#buckets = new Array<number>(buckets).fill(0);
    this.#bucketMs = Math.max(1, Math.floor(windowMs / buckets));
  }

  /** Record n events at time now. */
  tick(n = 1, now = Date.now()): void {
    if (this.#first < 0) this.#first = now;
    this.#advance(now);
    this.#buckets[this.#head % this.#buckets.length] += n;
  }

  /** Events per second over the window (or since the first event, if more recent), rounded to `digits` decimals. */
  rate(now = Date.now(), digits = 0): number {
    if (this.#first < 0) return 0;
    this.#advance(now);
    const sum = this.#buckets.reduce((a, b) => a + b, 0);
    const span = Math.max(Math.min(now - this.#first, this.#buckets.length * this.#bucketMs), 250);
    const scale = 10 ** digits;
    return Math.round((sum * 1000 * scale) / span) / scale;
  }

  #advance(now: number): void {
    const b = Math.floor(now / this.#bucketMs);
    if (this.#head < 0 || b - this.#head >= this.#buckets.length) {
      this.#buckets.fill(0);
    } else {
      for (let i = this.#head + 1; i <= b; i++) this.#buckets[i % this.#buckets.length] = 0;
    }
    if (b > this.#head) this.#head = b;
  }
}

/**
 * At most one log line per key (e.g. a drop reason) per interval: a peer may cause many of
 * the same event, and the log must stay readable. Keys are few and fixed by the caller.
 */
export class LineThrottle {
  #last = new Map<string, { at: number; more: number }>();
  constructor(private readonly intervalMs = 60000) {}

  /** The line to write for this event now (with how many were held back since the last one), or undefined to hold it back. */
  line(key: string, text: string, now = Date.now()): string | undefined {
    const last = this.#last.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.more++;
      return undefined;
    }
    this.#last.set(key, { at: now, more: 0 });
    return last && last.more > 0 ? `${text} (and ${last.more} more like it since the last such line)` : text;
  }
}
