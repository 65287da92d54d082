/**
 * Consensus benchmark (docs/design.md "The model"): a consortium of three partners
 * A, B, C over one loopback MQTT broker, each witnessing the other two, quorum 2 of 3,
 * every ledger signing a checkpoint every CHECKPOINT_MS (200 ms).
 *
 * Partner A runs in this process (its ledger, Consortium and MqttLink), so that appends and
 * confirmations are timed on one clock; B and C run as child processes (this same file,
 * forked with --consensus-partner), so their witness work competes for the CPU as real
 * partners on the same machine would, without sharing A's event loop. The broker is the
 * real Mosquitto when installed (no persistence, loopback port), else an embedded aedes
 * broker in this process (BOT_BENCH_BROKER=aedes forces it); the figure says which.
 *
 * Measured with default TCP settings on both sides: mqtt.js opens its socket without
 * TCP_NODELAY and the Mosquitto config (like test/mosquitto.ts) has no set_tcp_nodelay, so
 * each request/answer hop can wait ~40 ms on Nagle + delayed ACK (witnesses that hold the
 * previous checkpoint need no request: they take the log's shared add-checkpoint body).
 * Larger consortia, each partner in its own process: bench/consortium-scale.ts.
 *
 * latency     Time from a resolved append receipt on A to Consortium.waitConfirmed resolving
 *             (a checkpoint covering the entry cosigned by at least one partner: 2 of 3),
 *             for entries appended one at a time at a steady RATE (20/s) for 10 s (3 s
 *             short). Value: median ms, with p90/p99/max beside. Peer: the checkpoint
 *             interval itself (200 ms). Target: ratio <= 1.25 (median <= interval + 50 ms).
 * throughput  Appends/s into A from CALLERS (256) concurrent callers (bench/common.ts
 *             appendCallers, pre-signed envelopes) while B and C witness A, against the
 *             same on a standalone ledger (no consortium, no MQTT, the same 200 ms
 *             checkpoint timer) in this process, alternating rounds; both ledgers are opened
 *             once and grow across rounds. After each consortium round the time until its
 *             last entry is confirmed is reported (`catchUpMs`), and the next round waits for
 *             it. Target: ratio >= 0.8.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Consortium } from '../lib/consortium/consortium';
import { fromHex } from '../lib/format/bytes';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { MqttLink } from '../lib/consortium/mqtt-link';
import { QuorumPolicy } from '../lib/consortium/quorum';
import {
  appendCallers,
  CALLERS,
  type Child,
  type Figure,
  forkChild,
  log,
  makeSigners,
  median,
  now,
  rmDir,
  round,
  signSpread,
  sleep,
  stopChild,
  tmpDir,
} from './common';

/** Checkpoint interval of every partner (ms). */
export const CHECKPOINT_MS = 200;
/** Steady append pace of the latency figure (entries/s). */
const RATE = 20;

const origin = (name: string): string => `bench.example/${name}`;

function quantile(xs: number[], q: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

// -------------------------------------------------------------------------------- broker

export interface Broker {
  kind: string;
  url: string;
  /** The broker's process id when it runs in its own process (Mosquitto), for its CPU time. */
  pid?: number;
  close(): Promise<void>;
}

const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'];

/** Mosquitto on a free loopback port, no persistence (the minimal logic of test/mosquitto.ts). */
async function startMosquitto(bin: string, nodelay: boolean, sysInterval?: number): Promise<Broker> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-mosquitto-'));
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n${nodelay ? 'set_tcp_nodelay true\n' : ''}${sysInterval ? `sys_interval ${sysInterval}\n` : ''}`,
  );
  let text = '';
  const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.on('data', (d: Buffer) => {
    text = (text + d.toString()).slice(-8000);
  });
  const close = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    rmDir(dir);
  };
  const end = Date.now() + 10000;
  while (Date.now() < end) {
    if (proc.exitCode !== null) {
      await close();
      throw new Error(`mosquitto exited: ${text}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok)
      return {
        kind: `mosquitto (${bin}, loopback, no persistence${nodelay ? ', set_tcp_nodelay' : ''})`,
        url: `mqtt://127.0.0.1:${port}`,
        pid: proc.pid,
        close,
      };
    await sleep(100);
  }
  await close();
  throw new Error('mosquitto did not start');
}

/** An embedded aedes broker (ESM) on a free loopback port. */
async function startAedes(): Promise<Broker> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle as unknown as (s: net.Socket) => void);
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  let version = '?';
  try {
    // aedes exports no ./package.json: look for it along the module search paths.
    const pkg = (require.resolve.paths('aedes') ?? []).map((d) => path.join(d, 'aedes', 'package.json')).find((f) => fs.existsSync(f));
    if (pkg) version = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    /* version unknown */
  }
  return {
    kind: `aedes ${version} (embedded in the bench process, loopback)`,
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The loopback broker of the MQTT figures (also used by bench/partner.ts). */
export async function startBroker(opts: { nodelay?: boolean; sysInterval?: number } = {}): Promise<Broker> {
  // BOT_BENCH_BROKER=aedes forces the embedded broker (to compare, or to check the fallback).
  const bin = process.env.BOT_BENCH_BROKER === 'aedes' ? undefined : MOSQUITTO.find((p) => fs.existsSync(p));
  if (bin) {
    try {
      return await startMosquitto(bin, opts.nodelay === true, opts.sysInterval);
    } catch (err) {
      log(`consensus: ${(err as Error).message}; falling back to aedes`);
    }
  }
  return startAedes();
}

// ------------------------------------------------------------------------------ partners

interface PartnerInit {
  seed: string;
  dir: string;
  url: string;
  name: string;
  partners: { name: string; did: string }[];
}

/** A member's ledger + Consortium + link + checkpoint timer. */
interface Member {
  ledger: Ledger;
  cons: Consortium;
  link: MqttLink;
  timer: NodeJS.Timeout;
}

async function openMember(m: PartnerInit, identity: Identity): Promise<Member> {
  const ledger = await Ledger.open({ dir: m.dir, origin: origin(m.name), identity });
  const link = new MqttLink({ url: m.url, reconnectMs: 100, maxReconnectMs: 500, clientId: `bench-${m.name}-${crypto.randomBytes(3).toString('hex')}` });
  link.on('error', () => undefined);
  const policy = QuorumPolicy.create({
    origin: origin(m.name),
    operator: identity.did,
    witnesses: m.partners.map((p) => ({ name: origin(p.name), key: p.did })),
  });
  const cons = new Consortium({
    ledger,
    identity,
    link,
    policy,
    retryMs: 500,
    rpcTimeoutMs: 2000,
    witnessed: m.partners.map((p) => ({ origin: origin(p.name), did: p.did })),
  });
  await cons.start();
  const timer = setInterval(() => {
    ledger.checkpoint().catch(() => undefined);
  }, CHECKPOINT_MS);
  return { ledger, cons, link, timer };
}

async function closeMember(m: Member): Promise<void> {
  clearInterval(m.timer);
  await m.cons.stop();
  await m.link.close();
  await m.ledger.close();
}

/** Child side: one partner (B or C), driven over IPC: {cmd:'init', ...PartnerInit} then {cmd:'stop'}. */
function runPartner(): void {
  let member: Member | undefined;
  let stopping = false;
  process.on('message', (msg: { id: number; cmd: string } & Partial<PartnerInit>) => {
    const work = async (): Promise<unknown> => {
      if (msg.cmd === 'init') {
        const identity = Identity.fromSeed(fromHex(msg.seed!));
        member = await openMember(msg as PartnerInit, identity);
        return { did: identity.did, ledgerId: member.cons.ledgerId };
      }
      if (msg.cmd === 'stop') {
        stopping = true;
        if (member) await closeMember(member);
        member = undefined;
        setImmediate(() => process.disconnect?.());
        return true;
      }
      throw new Error(`unknown command ${msg.cmd}`);
    };
    work().then(
      (result) => process.send?.({ id: msg.id, result }),
      (err: Error) => process.send?.({ id: msg.id, error: err.message }),
    );
  });
  process.on('disconnect', () => {
    if (!stopping) process.exit(0);
  });
}

// --------------------------------------------------------------------------------- bench

/** Measure confirmation latency and throughput of a 3-partner consortium, side by side. */
export async function benchConsensus(short: boolean): Promise<{ latency: Figure; throughput: Figure }> {
  const P = short ? { latencySeconds: 2, appendN: 4_000, rounds: 2 } : { latencySeconds: 10, appendN: 50_000, rounds: 5 };
  const dirs: string[] = [];
  const scratch = (tag: string): string => {
    const d = tmpDir(tag);
    dirs.push(d);
    return d;
  };
  const broker = await startBroker();
  log(`consensus: broker ${broker.kind} at ${broker.url}`);
  const ids = { A: Identity.generate(), B: Identity.generate(), C: Identity.generate() };
  const names = ['A', 'B', 'C'] as const;
  const partnersOf = (n: string): { name: string; did: string }[] => names.filter((x) => x !== n).map((x) => ({ name: x, did: ids[x].did }));
  const children: Child[] = [];
  let a: Member | undefined;
  let solo: Ledger | undefined;
  let soloTimer: NodeJS.Timeout | undefined;
  try {
    for (const n of ['B', 'C'] as const) {
      const c = forkChild(__filename, '--consensus-partner', n);
      children.push(c);
      await c.call('init', { seed: ids[n].exportSeed().toString('hex'), dir: scratch(`cons-${n}`), url: broker.url, name: n, partners: partnersOf(n) });
    }
    a = await openMember({ seed: '', dir: scratch('cons-A'), url: broker.url, name: 'A', partners: partnersOf('A') }, ids.A);
    const A = a;
    const device = makeSigners(1, 900_000)[0];

    // Warm-up: the consortium confirms a first entry (connections, subscriptions, first cosignatures).
    const t0 = now();
    const first = await A.ledger.append(device.sign());
    await A.cons.waitConfirmed(first.index, 30000);
    log(`consensus: 3 partners up, first entry confirmed after ${Math.round((now() - t0) * 1000)} ms`);

    // ---- latency: one append every 1000/RATE ms, each awaited for confirmation.
    const count = RATE * P.latencySeconds;
    log(`consensus latency: ${count} entries at ${RATE}/s, checkpoints every ${CHECKPOINT_MS} ms, quorum 2 of 3`);
    const envs = Array.from({ length: count }, () => device.sign());
    const lat: number[] = [];
    const appendMs: number[] = [];
    let failures = 0;
    const waits: Promise<void>[] = [];
    const start = now();
    for (let i = 0; i < count; i++) {
      const due = start + i / RATE;
      const wait = (due - now()) * 1000;
      if (wait > 0) await sleep(wait);
      const ts = now();
      waits.push(
        A.ledger
          .append(envs[i])
          .then(async (r) => {
            const tr = now();
            appendMs.push((tr - ts) * 1000);
            await A.cons.waitConfirmed(r.index, 30000);
            lat.push((now() - tr) * 1000);
          })
          .catch(() => {
            failures++;
          }),
      );
    }
    await Promise.all(waits);
    if (lat.length === 0) throw new Error('consensus: no entry was confirmed');
    const med = median(lat);
    const latency: Figure = {
      what: `ms from a resolved append receipt on partner A to waitConfirmed (2 of 3), ${RATE} appends/s one at a time for ${P.latencySeconds} s`,
      peerWhat: `the checkpoint interval (${CHECKPOINT_MS} ms): a new entry waits up to one interval for a checkpoint`,
      unit: 'ms',
      value: round(med, 1),
      peer: CHECKPOINT_MS,
      ratio: round(med / CHECKPOINT_MS, 3),
      target: `ratio <= 1.25 (median <= ${CHECKPOINT_MS} + 50 ms)`,
      meetsTarget: med / CHECKPOINT_MS <= 1.25,
      rounds: { value: [round(med, 1)], peer: [CHECKPOINT_MS] },
      p50: round(med, 1),
      p90: round(quantile(lat, 0.9), 1),
      p99: round(quantile(lat, 0.99), 1),
      min: round(Math.min(...lat), 1),
      max: round(Math.max(...lat), 1),
      samples: lat.length,
      failures,
      appendMedianMs: round(median(appendMs), 2),
      checkpointMs: CHECKPOINT_MS,
      quorum: '2 of 3',
      broker: broker.kind,
      partners: 'A in the bench process (appends, timing), B and C in child processes; each witnesses the other two',
    };
    log(`consensus latency: median ${latency.value} ms, p90 ${String(latency.p90)} ms, p99 ${String(latency.p99)} ms over ${lat.length} entries`);

    // ---- throughput: consortium A vs a standalone ledger, alternating rounds.
    solo = await Ledger.open({ dir: scratch('cons-solo'), origin: origin('solo'), identity: Identity.generate() });
    const S = solo;
    soloTimer = setInterval(() => {
      S.checkpoint().catch(() => undefined);
    }, CHECKPOINT_MS);
    const signersA = makeSigners(CALLERS, 0);
    const signersS = makeSigners(CALLERS, 10_000);
    log(
      `consensus throughput: ${P.rounds} rounds of ${P.appendN} entries, ${CALLERS} callers, into A (witnessed by B and C) alternated with a standalone ledger`,
    );
    // Warm-up, untimed.
    await appendCallers(A.ledger, signSpread(signersA, CALLERS * 4));
    await appendCallers(S, signSpread(signersS, CALLERS * 4));
    await A.cons.waitConfirmed(A.ledger.size - 1, 30000);
    const vals: number[] = [],
      peers: number[] = [],
      catchUp: number[] = [];
    for (let r = 0; r < P.rounds; r++) {
      const la = signSpread(signersA, P.appendN);
      const sizeA = A.ledger.size;
      const secA = await appendCallers(A.ledger, la);
      if (A.ledger.size !== sizeA + P.appendN) throw new Error(`consensus: A holds ${A.ledger.size}, expected ${sizeA + P.appendN}`);
      const tEnd = now();
      await A.cons.waitConfirmed(A.ledger.size - 1, 60000);
      catchUp.push((now() - tEnd) * 1000);
      vals.push(P.appendN / secA);
      const ls = signSpread(signersS, P.appendN);
      const sizeS = S.size;
      const secS = await appendCallers(S, ls);
      if (S.size !== sizeS + P.appendN) throw new Error(`consensus: standalone holds ${S.size}, expected ${sizeS + P.appendN}`);
      peers.push(P.appendN / secS);
      log(
        `consensus throughput round ${r + 1}: consortium ${Math.round(vals[r])}/s (confirmed ${Math.round(catchUp[r])} ms after the round), standalone ${Math.round(peers[r])}/s`,
      );
    }
    const v = median(vals),
      p = median(peers);
    const throughput: Figure = {
      what: `ledger.append entries/s into partner A, ${CALLERS} concurrent callers, while B and C witness it (checkpoints every ${CHECKPOINT_MS} ms)`,
      peerWhat: `the same on a standalone ledger (no consortium, no MQTT, same ${CHECKPOINT_MS} ms checkpoint timer), same run`,
      unit: 'entries/s',
      value: round(v),
      peer: round(p),
      ratio: round(v / p, 3),
      target: 'ratio >= 0.8',
      meetsTarget: v / p >= 0.8,
      rounds: { value: vals.map((x) => round(x)), peer: peers.map((x) => round(x)) },
      entries: P.appendN,
      callers: CALLERS,
      catchUpMs: { median: round(median(catchUp)), rounds: catchUp.map((x) => round(x)) },
      broker: broker.kind,
      partners: 'A in the bench process, B and C in child processes (same machine: their witness work shares the cores)',
    };
    return { latency, throughput };
  } finally {
    if (soloTimer) clearInterval(soloTimer);
    if (solo && !solo.closed) await solo.close().catch(() => undefined);
    if (a) await closeMember(a).catch(() => undefined);
    await Promise.all(children.map((c) => stopChild(c).catch(() => undefined)));
    await broker.close().catch(() => undefined);
    for (const d of dirs) rmDir(d);
  }
}

if (require.main === module) {
  if (process.argv.includes('--consensus-partner')) {
    runPartner();
  } else {
    const short = process.argv.includes('--short');
    benchConsensus(short).then(
      (f) => {
        process.stdout.write(JSON.stringify({ bench: 'consensus', mode: short ? 'short' : 'full', ...f }, null, 2) + '\n');
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  }
}
