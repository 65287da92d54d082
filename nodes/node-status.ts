/**
 * A node's status in the editor: a throttle so a busy node does not flood it, the one way a
 * failure is shown (`StatusThrottle.fail`: a red ring with the error's short message), and the
 * two failure paths built on it (a deploy-time setup error, a failed message).
 */
import { BotError } from '../lib/errors';
import type { StoreHealth } from '../lib/store/registry';
import type { DoneFn, NodeStatus, RedNode } from './red-api';
import { tr } from './i18n';

/** The message of an error, without stack, for status texts (never holds secrets: kernel messages do not). */
export function shortMessage(err: unknown, max = 40): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > max ? m.slice(0, max - 1) + '…' : m;
}

/**
 * Shows a status at most every `intervalMs`, always ending with the latest one (a trailing
 * update), so a busy node does not flood the editor.
 */
export class StatusThrottle {
  #node: RedNode;
  #interval: number;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  #pending: (() => NodeStatus) | undefined;
  #stopped = false;

  constructor(node: RedNode, intervalMs = 500) {
    this.#node = node;
    this.#interval = intervalMs;
  }

  /** Show a status now, dropping any pending throttled one. */
  now(s: NodeStatus): void {
    if (this.#stopped) return;
    this.#pending = undefined;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#last = Date.now();
    this.#node.status(s);
  }

  /** Show a failure now: a red ring with the error's short message (shortMessage). */
  fail(err: unknown): void {
    this.now({ fill: 'red', shape: 'ring', text: shortMessage(err) });
  }

  /** Show a status computed when it is due. */
  update(make: () => NodeStatus): void {
    if (this.#stopped) return;
    this.#pending = make;
    if (this.#timer) return;
    const wait = this.#last + this.#interval - Date.now();
    if (wait <= 0) {
      this.#flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    const make = this.#pending;
    this.#pending = undefined;
    if (!make || this.#stopped) return;
    this.#last = Date.now();
    this.#node.status(make());
  }

  /** Show nothing more (the node is closing); a pending update is dropped. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A deploy-time setup error: logged through node.error and shown as a red ring; returned for the input handler. */
export function setupFailed(node: RedNode, status: StatusThrottle, err: unknown): Error {
  node.error(err);
  status.fail(err);
  return err as Error;
}

/** A failed message: a red ring with the reason, and done(err) so Catch nodes see it with the msg. */
export function failMessage(status: StatusThrottle, done: DoneFn, err: unknown): void {
  status.fail(err);
  done(err instanceof Error ? err : new BotError('E_STORE', String(err)));
}

/** The status text of a failed store: "store failed: <reason> — reopening" (attempts, when there were some). */
export function storeFailedText(h: StoreHealth): string {
  return h.attempts > 0
    ? tr('bot-ledger.status.storeFailedTry', { reason: h.reason, n: h.attempts + 1 })
    : tr('bot-ledger.status.storeFailed', { reason: h.reason });
}
