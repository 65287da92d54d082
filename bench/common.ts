/**
 * Shared pieces of the benchmark (bench/run.ts) and its memory child (bench/mem-child.ts):
 * signers, sensor-reading envelopes, the "many concurrent callers" append driver, and
 * growing a ledger to a size while signing as it goes.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Identity, Ledger, type SignedEnvelope, signEnvelope } from '../lib/index';
import { MqttLink } from '../lib/consortium/mqtt-link';

/** Checkpoint origin of every benchmark ledger. */
export const ORIGIN = 'bench.example/ledger';
/** Concurrent async callers of ledger.append, as in a busy flow. */
export const CALLERS = 256;
/** Timestamp base of the readings (ms). */
export const T0 = Date.UTC(2025, 0, 1);

/** Progress goes to stderr; stdout carries only the final JSON. */
export function log(...parts: unknown[]): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${parts.map(String).join(' ')}\n`);
}

/** Monotonic seconds. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/** A fresh temporary directory. */
export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bot-bench-${tag}-`));
}

export function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A sensor reading payload, ~150 bytes of JSON. */
export function reading(device: number, seq: number): { [k: string]: string | number } {
  return {
    device: `th-${device.toString(16).padStart(5, '0')}`,
    temperature: 18 + ((device * 7 + seq) % 120) / 10,
    humidity: 35 + ((device * 13 + seq) % 400) / 10,
    pressure: 1000 + ((device + seq * 3) % 300) / 10,
    co2: 400 + ((device * 31 + seq * 7) % 900),
    battery: 3.3 - (seq % 50) / 100,
    rssi: -50 - ((device + seq) % 40),
    unit: 'C',
    status: 'ok',
  };
}

/** The MQTT topic a device publishes on. */
export function topicOf(device: number): string {
  return `plant/line-${device % 8}/device-${device}/reading`;
}

/** A device identity with its next seq. */
export class Signer {
  readonly id: Identity;
  next = 0;
  constructor(
    readonly device: number,
    id: Identity = Identity.generate(),
  ) {
    this.id = id;
  }

  /** Sign this device's next reading. */
  sign(): SignedEnvelope {
    const seq = this.next++;
    return signEnvelope(this.id, {
      kind: 'reading',
      seq,
      ts: T0 + seq * 1000 + (this.device % 1000),
      topic: topicOf(this.device),
      payload: reading(this.device, seq),
    });
  }
}

/** n fresh signers numbered from first. */
export function makeSigners(n: number, first = 0): Signer[] {
  return Array.from({ length: n }, (_, i) => new Signer(first + i));
}

/** Sign total envelopes round-robin over the signers: lists[c] holds signer c's, in seq order. */
export function signSpread(signers: Signer[], total: number): SignedEnvelope[][] {
  const lists: SignedEnvelope[][] = signers.map(() => []);
  for (let i = 0; i < total; i++) lists[i % signers.length].push(signers[i % signers.length].sign());
  return lists;
}

/**
 * Append every list from its own async caller, each awaiting one append at a time (what a
 * busy flow does); returns the seconds taken.
 */
export async function appendCallers(ledger: Ledger, lists: SignedEnvelope[][]): Promise<number> {
  const t = now();
  await Promise.all(
    lists.map(async (list) => {
      for (const env of list) await ledger.append(env);
    }),
  );
  return now() - t;
}

/** Open a new ledger in dir with a fresh operator key. */
export async function createLedger(dir: string): Promise<Ledger> {
  return Ledger.open({ dir, origin: ORIGIN, identity: Identity.generate() });
}

/**
 * Grow a ledger to target entries, signing as it goes in rounds of CALLERS callers (one
 * envelope list each), rotating over groups of CALLERS signers so that no signer signs more
 * than about 1000 entries per million. Only the ledger's own work and signing are done.
 */
export async function grow(ledger: Ledger, target: number, onProgress?: (size: number) => void): Promise<void> {
  const groups = Math.max(1, Math.ceil(target / 1000 / CALLERS));
  const signers = makeSigners(groups * CALLERS, 100_000);
  const perRound = CALLERS * 64;
  let g = 0;
  let reported = ledger.size;
  while (ledger.size < target) {
    const lists = signSpread(signers.slice(g * CALLERS, (g + 1) * CALLERS), Math.min(perRound, target - ledger.size));
    await appendCallers(ledger, lists);
    g = (g + 1) % groups;
    if (onProgress && ledger.size - reported >= 100_000) {
      reported = ledger.size;
      onProgress(ledger.size);
    }
  }
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A small seeded PRNG (mulberry32), for reproducible random indices. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One figure: ours against its peer, medians of alternated rounds (the JSON bench/run.ts prints). */
export interface Figure {
  what: string;
  peerWhat: string;
  unit: string;
  value: number;
  peer: number;
  ratio: number;
  target: string;
  meetsTarget: boolean;
  rounds: { value: number[]; peer: number[] };
  [extra: string]: unknown;
}

/** x rounded to the given decimals. */
export const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

/** Resolves after ms. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A bench child process answering commands over IPC ({id, cmd, …args} → {id, result | error}). */
export interface Child {
  name: string;
  proc: ChildProcess;
  call(cmd: string, args?: Record<string, unknown>, ms?: number): Promise<unknown>;
}

/** Fork `file` with `flag` as a command-answering child (its stderr is ours, for its logs). */
export function forkChild(file: string, flag: string, name: string, defaultMs = 20000): Child {
  const proc = fork(file, [flag], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  proc.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const c = calls.get(m.id);
    if (!c) return;
    calls.delete(m.id);
    if (m.error !== undefined) c.reject(new Error(`${name}: ${m.error}`));
    else c.resolve(m.result);
  });
  proc.on('exit', () => {
    for (const c of calls.values()) c.reject(new Error(`${name} exited`));
    calls.clear();
  });
  return {
    name,
    proc,
    call: (cmd, args = {}, ms = defaultMs) =>
      new Promise((resolve, reject) => {
        if (!proc.connected) {
          reject(new Error(`${name} is not running`));
          return;
        }
        const id = next++;
        const timer = setTimeout(() => {
          calls.delete(id);
          reject(new Error(`${name} did not answer ${cmd}`));
        }, ms);
        calls.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        proc.send({ id, cmd, ...args });
      }),
  };
}

/** Ask a child to stop, then end it (SIGKILL after 3 s). */
export async function stopChild(c: Child): Promise<void> {
  const p = c.proc;
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  await c.call('stop', {}, 10000).catch(() => undefined);
  await Promise.race([exited, sleep(3000)]);
  if (p.exitCode === null && p.signalCode === null) {
    p.kill('SIGKILL');
    await exited;
  }
}

/** A started MqttLink to url, resolved once connected (rejects after 10 s); link errors are ignored by the bench. */
export async function connectLink(url: string, tag: string): Promise<MqttLink> {
  const link = new MqttLink({ url, reconnectMs: 100, maxReconnectMs: 500, clientId: `bench-${tag}-${process.pid}` });
  link.on('error', () => undefined);
  link.start();
  await link.connected(10000);
  return link;
}
