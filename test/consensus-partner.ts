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
import { type ChildCall, childRpc } from './child-rpc';

const CHILD = path.resolve(__dirname, 'consensus-child.js');

/** A partner: its operator seed and DID, its ledger folder, and its process once spawned. */
export interface Partner<N extends string = string> {
  name: N;
  seed: string;
  did: string;
  dir: string;
  ledgerId?: string;
  proc?: ChildProcess;
  /** Its process's command channel (test/child-rpc.ts), once spawned. */
  call?: ChildCall;
}

/** A partner named name with a fresh operator key, its ledger under dir/<name> (not spawned yet). */
export function newPartner<N extends string>(name: N, dir: string): Partner<N> {
  const seed = crypto.randomBytes(32).toString('hex');
  return { name, seed, did: Identity.fromSeed(Buffer.from(seed, 'hex')).did, dir: path.join(dir, name) };
}

/** Send the partner's process a command and resolve with its answer (rejects on its error, its exit, or after ms). */
export function call(p: Partner, cmd: string, args: Record<string, unknown> = {}, ms = 10000): Promise<unknown> {
  if (!p.call) return Promise.reject(new Error(`${p.name} is not running`));
  return p.call(cmd, args, ms);
}

/** Fork the partner's process and open its ledger on the broker at url, witnessing every other partner of all. */
export async function spawnPartner(p: Partner, all: Partner[], url: string): Promise<void> {
  const proc = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  p.proc = proc;
  p.call = childRpc(proc, p.name, 10000);
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
  p.call = undefined;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}
