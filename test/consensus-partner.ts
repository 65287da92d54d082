/**
 * A consortium partner in its own process (test/consensus-child.ts), driven over IPC: the
 * set-up the multi-process consortium tests share (test/integration/consensus.test.ts,
 * test/integration/bridged-brokers.test.ts).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, fork } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Identity } from '../lib/format/identity';

const CHILD = path.resolve(__dirname, 'consensus-child.js');

/** A partner: its operator seed and DID, its ledger folder, and its process once spawned. */
export interface Partner<N extends string = string> {
  name: N;
  seed: string;
  did: string;
  dir: string;
  ledgerId?: string;
  proc?: ChildProcess;
  calls: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
}

/** A partner named name with a fresh operator key, its ledger under dir/<name> (not spawned yet). */
export function newPartner<N extends string>(name: N, dir: string): Partner<N> {
  const seed = crypto.randomBytes(32).toString('hex');
  return { name, seed, did: Identity.fromSeed(Buffer.from(seed, 'hex')).did, dir: path.join(dir, name), calls: new Map() };
}

let nextId = 1;

/** Send the partner's process a command and resolve with its answer (rejects on its error, its exit, or after ms). */
export function call(p: Partner, cmd: string, args: Record<string, unknown> = {}, ms = 10000): Promise<unknown> {
  const proc = p.proc;
  if (!proc || !proc.connected) return Promise.reject(new Error(`${p.name} is not running`));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.calls.delete(id);
      reject(new Error(`${p.name} did not answer ${cmd}`));
    }, ms);
    p.calls.set(id, {
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
  });
}

/** Fork the partner's process and open its ledger on the broker at url, witnessing every other partner of all. */
export async function spawnPartner(p: Partner, all: Partner[], url: string): Promise<void> {
  const proc = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  p.proc = proc;
  proc.on('message', (m: { id: number; result?: unknown; error?: { code: string; message: string } }) => {
    const c = p.calls.get(m.id);
    if (!c) return;
    p.calls.delete(m.id);
    if (m.error) c.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    else c.resolve(m.result);
  });
  proc.on('exit', () => {
    for (const c of p.calls.values()) c.reject(new Error(`${p.name} exited`));
    p.calls.clear();
  });
  const r = (await call(
    p,
    'init',
    {
      seed: p.seed,
      dir: p.dir,
      url,
      name: p.name,
      partners: all.filter((q) => q !== p).map((q) => ({ name: q.name, did: q.did })),
    },
    20000,
  )) as { did: string; ledgerId: string };
  assert.equal(r.did, p.did);
  p.ledgerId = r.ledgerId;
}

/** SIGKILL the partner's process and wait until it has exited. */
export async function kill(p: Partner): Promise<void> {
  const proc = p.proc;
  p.proc = undefined;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}
