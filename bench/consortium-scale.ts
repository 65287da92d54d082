/**
 * Consortium at scale (GitHub issue 15; docs/design.md "Sync over MQTT", "Witness set and
 * quorum"): N partners, EACH in its own process with its own ledger, each witnessing the N-1
 * others, default quorum (a majority: 2 of 3, 4 of 7, 8 of 15), over one loopback Mosquitto
 * (bench/consensus.ts startBroker; aedes only when Mosquitto is missing), at N = 3, 7, 15.
 *
 *   node dist/bench/consortium-scale.js [--sizes 3,7,15] [--interval 1000] [--seconds 20] [--rate 4] [--check]
 *   npm run bench -- --scale          (bench/run.ts runs this section with its defaults)
 *
 * With --check it is the 15-partner test as a script (`node dist/bench/consortium-scale.js
 * --sizes 15 --check` after a build; about 35 s, too long for the suite's budget): it exits 1
 * unless every entry of every partner was confirmed.
 *
 * Every partner appends RATE entries/s one at a time for SECONDS and waits for each to be
 * confirmed, while signing a checkpoint every INTERVAL ms (the bot-ledger node's default is
 * 1000 ms), so every partner's checkpoint changes every interval: the worst case for witness
 * traffic. Figures per N:
 *
 * latency   ms from a resolved append receipt to Consortium.waitConfirmed resolving, over the
 *           entries of every partner: median and p99 (goal: median <= interval + 100 ms,
 *           p99 <= 2 intervals).
 * cpu       CPU time (user + system, process.cpuUsage) of each partner process during the
 *           append window, as ms per checkpoint interval and % of one core: mean and max over
 *           the partners; the broker's CPU (from /proc, Mosquitto only) beside.
 * messages  MQTT PUBLISH messages per checkpoint interval, counted by an independent
 *           subscriber on `bot/v1/#` (live messages only, not the retained ones replayed on
 *           subscribe), split by topic kind (checkpoint, witness, rpc, _reply, cosignature,
 *           entries, conflict); and, with Mosquitto, the messages the broker delivered
 *           ($SYS/broker/publish/messages/sent, sys_interval 1, less the counter's own).
 *
 * The partners and the broker share the machine's cores, so the CPU of one partner at N = 15
 * includes waiting for 14 others: read the figures as an upper bound of what one partner on
 * its own machine would need.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import mqtt from 'mqtt';
import { Consortium } from '../lib/consortium/consortium';
import { fromHex } from '../lib/format/bytes';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { MqttLink } from '../lib/consortium/mqtt-link';
import { QuorumPolicy } from '../lib/consortium/quorum';
import { signEnvelope } from '../lib/format/envelope';
import { type Child, forkChild, log, median, now, rmDir, round, sleep, stopChild, tmpDir } from './common';
import { startBroker } from './consensus';

const origin = (name: string): string => `scale.example/${name}`;

function quantile(xs: number[], q: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

// ------------------------------------------------------------------------------ partner

interface PartnerInit {
  seed: string;
  dir: string;
  url: string;
  name: string;
  partners: { name: string; did: string }[];
  intervalMs: number;
}

interface RunResult {
  lat: number[];
  failures: number;
  cpuMs: number;
  wallMs: number;
  size: number;
}

/** Child side: one partner, driven over IPC (init, warm, run, stop). */
function runPartner(): void {
  let ledger: Ledger | undefined;
  let cons: Consortium | undefined;
  let link: MqttLink | undefined;
  let identity: Identity | undefined;
  let timer: NodeJS.Timeout | undefined;
  let seq = 0;
  let stopping = false;
  const appendOne = async (): Promise<number> => {
    const env = signEnvelope(identity!, { kind: 'reading', seq: seq++, ts: Date.now(), topic: 'plant/1/temp', payload: { t: 20 + Math.random() } });
    return (await ledger!.append(env)).index;
  };
  const work = async (msg: { cmd: string } & Record<string, unknown>): Promise<unknown> => {
    switch (msg.cmd) {
      case 'init': {
        const m = msg as unknown as PartnerInit;
        identity = Identity.fromSeed(fromHex(m.seed));
        ledger = await Ledger.open({ dir: m.dir, origin: origin(m.name), identity });
        link = new MqttLink({ url: m.url, reconnectMs: 100, maxReconnectMs: 1000, clientId: `scale-${m.name}-${crypto.randomBytes(3).toString('hex')}` });
        link.on('error', () => undefined);
        const policy = QuorumPolicy.create({
          origin: origin(m.name),
          operator: identity.did,
          witnesses: m.partners.map((p) => ({ name: origin(p.name), key: p.did })),
        });
        cons = new Consortium({
          ledger,
          identity,
          link,
          policy,
          retryMs: 500,
          rpcTimeoutMs: 5000,
          witnessed: m.partners.map((p) => ({ origin: origin(p.name), did: p.did })),
        });
        await cons.start();
        const l = ledger;
        timer = setInterval(() => {
          l.checkpoint().catch(() => undefined);
        }, m.intervalMs);
        return { did: identity.did, ledgerId: cons.ledgerId, quorum: policy.quorum };
      }
      case 'warm': {
        const t = now();
        const i = await appendOne();
        await cons!.waitConfirmed(i, Number(msg.ms ?? 120000));
        return round((now() - t) * 1000);
      }
      case 'run': {
        const rate = Number(msg.rate);
        const count = Math.round(rate * Number(msg.seconds));
        const lat: number[] = [];
        let failures = 0;
        const waits: Promise<void>[] = [];
        // Spread the partners' appends over the interval (each child starts at a random phase).
        await sleep(Math.random() * (1000 / rate));
        const cpu0 = process.cpuUsage();
        const start = now();
        for (let k = 0; k < count; k++) {
          const wait = (start + k / rate - now()) * 1000;
          if (wait > 0) await sleep(wait);
          waits.push(
            appendOne()
              .then(async (index) => {
                const tr = now();
                await cons!.waitConfirmed(index, 60000);
                lat.push((now() - tr) * 1000);
              })
              .catch(() => {
                failures++;
              }),
          );
        }
        const end = start + count / rate;
        if (end > now()) await sleep((end - now()) * 1000);
        const cpu = process.cpuUsage(cpu0);
        const wallMs = (now() - start) * 1000;
        await Promise.all(waits);
        return { lat, failures, cpuMs: (cpu.user + cpu.system) / 1000, wallMs, size: ledger!.size } satisfies RunResult;
      }
      case 'stop': {
        stopping = true;
        if (timer) clearInterval(timer);
        await cons?.stop();
        await link?.close();
        await ledger?.close();
        setImmediate(() => process.disconnect?.());
        return true;
      }
      default:
        throw new Error(`unknown command ${msg.cmd}`);
    }
  };
  process.on('message', (msg: { id: number; cmd: string } & Record<string, unknown>) => {
    work(msg).then(
      (result) => process.send?.({ id: msg.id, result }),
      (err: Error) => process.send?.({ id: msg.id, error: err.message }),
    );
  });
  process.on('disconnect', () => {
    if (!stopping) process.exit(0);
  });
}

// ------------------------------------------------------------------------------ counter

/** Topic kind of a `bot/v1/…` topic: `_reply`, or the segment after the ledger id. */
function kindOf(topic: string): string {
  const parts = topic.split('/');
  if (parts[2] === '_reply') return '_reply';
  return parts[3] ?? '?';
}

interface Counter {
  reset(): void;
  counts(): Record<string, number>;
  /** Broker's delivered-messages total from $SYS (Mosquitto): each update with its arrival time (s). */
  sent(): { t: number; v: number }[];
  close(): Promise<void>;
}

/** An independent MQTT client counting the live PUBLISH messages on bot/v1/# (and reading $SYS). */
async function startCounter(url: string): Promise<Counter> {
  const client = mqtt.connect(url, { protocolVersion: 4, clientId: `scale-counter-${process.pid}`, clean: true, reconnectPeriod: 500 });
  let counts: Record<string, number> = {};
  const sent: { t: number; v: number }[] = [];
  client.on('message', (topic, payload, packet) => {
    if (topic.startsWith('$SYS/')) {
      if (!packet.retain) sent.push({ t: now(), v: Number(payload.toString()) });
      return;
    }
    if (packet.retain) return; // replayed from the retained store on subscribe, not traffic
    const k = kindOf(topic);
    counts[k] = (counts[k] ?? 0) + 1;
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the counting subscriber did not connect')), 10000);
    client.once('connect', () => {
      client.subscribe(['bot/v1/#', '$SYS/broker/publish/messages/sent'], { qos: 0 }, (err) => {
        clearTimeout(t);
        if (err) reject(err);
        else resolve();
      });
    });
  });
  return {
    reset: () => {
      counts = {};
    },
    counts: () => ({ ...counts }),
    sent: () => sent.slice(),
    close: () => new Promise<void>((r) => client.end(true, {}, () => r())),
  };
}

/** CPU ms (user + system) of a process from /proc (Linux), or undefined. */
function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at USER_HZ = 100
  } catch {
    return undefined;
  }
}

// --------------------------------------------------------------------------------- bench

/** What one consortium size measured. */
export interface ScalePoint {
  partners: number;
  quorum: string;
  intervalMs: number;
  ratePerPartner: number;
  seconds: number;
  warmUpMs: { median: number; max: number };
  latency: {
    median: number;
    p90: number;
    p99: number;
    max: number;
    samples: number;
    failures: number;
    medianGoal: number;
    p99Goal: number;
    meetsGoal: boolean;
  };
  cpu: { msPerIntervalMean: number; msPerIntervalMax: number; coreShareMean: number; coreShareMax: number; brokerMsPerInterval?: number };
  messages: { perInterval: number; byKind: Record<string, number>; brokerDeliveredPerInterval?: number; perPartnerPerInterval: number };
}

/** Options of benchConsortiumScale. */
export interface ScaleOptions {
  sizes: number[];
  intervalMs: number;
  seconds: number;
  rate: number;
}

/** Run one consortium of n partner processes and measure it. */
async function measure(n: number, o: ScaleOptions): Promise<ScalePoint> {
  const broker = await startBroker({ sysInterval: 1 });
  const dirs: string[] = [];
  const children: Child[] = [];
  let counter: Counter | undefined;
  try {
    const names = Array.from({ length: n }, (_, i) => `P${String(i + 1).padStart(2, '0')}`);
    const ids = names.map(() => Identity.generate());
    const t0 = now();
    const inits: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const c = forkChild(__filename, '--scale-partner', names[i], 120000);
      children.push(c);
      const dir = tmpDir(`scale-${names[i]}`);
      dirs.push(dir);
      inits.push(
        c.call('init', {
          seed: ids[i].exportSeed().toString('hex'),
          dir,
          url: broker.url,
          name: names[i],
          intervalMs: o.intervalMs,
          partners: names.map((x, j) => ({ name: x, did: ids[j].did })).filter((_, j) => j !== i),
        }),
      );
    }
    const infos = (await Promise.all(inits)) as { quorum: number }[];
    log(`scale: ${n} partners up in ${Math.round((now() - t0) * 1000)} ms (broker ${broker.kind})`);
    const warm = (await Promise.all(children.map((c) => c.call('warm', { ms: 120000 }, 130000)))) as number[];
    log(`scale: ${n} partners each confirmed a first entry (median ${median(warm)} ms, max ${Math.max(...warm)} ms)`);
    counter = await startCounter(broker.url);
    const b0 = procCpuMs(broker.pid);
    counter.reset();
    const tw = now();
    const runs = children.map((c) => c.call('run', { rate: o.rate, seconds: o.seconds }, (o.seconds + 90) * 1000) as Promise<RunResult>);
    await sleep(o.seconds * 1000);
    const te = now();
    const windowMs = (te - tw) * 1000;
    const counts = counter.counts();
    const b1 = procCpuMs(broker.pid);
    const results = await Promise.all(runs);
    const intervals = windowMs / o.intervalMs;
    const lat = results.flatMap((r) => r.lat);
    const failures = results.reduce((s, r) => s + r.failures, 0);
    const cpuPer = results.map((r) => (r.cpuMs / r.wallMs) * o.intervalMs);
    const shares = results.map((r) => r.cpuMs / r.wallMs);
    const total = Object.values(counts).reduce((s, x) => s + x, 0);
    const byKind: Record<string, number> = {};
    for (const [k, v] of Object.entries(counts).sort()) byKind[k] = round(v / intervals, 1);
    let delivered: number | undefined;
    // The broker's total as a rate between its first and last $SYS updates inside the window, less what it delivered to the counter itself (its counts and the $SYS updates).
    const inside = counter.sent().filter((x) => x.t >= tw && x.t <= te);
    if (inside.length >= 2) {
      const a = inside[0];
      const z = inside[inside.length - 1];
      const perMs = (z.v - a.v) / ((z.t - a.t) * 1000);
      delivered = round((perMs - total / windowMs) * o.intervalMs - 1 * (o.intervalMs / 1000), 1);
    }
    const med = median(lat);
    const p99 = quantile(lat, 0.99);
    const point: ScalePoint = {
      partners: n,
      quorum: `${infos[0].quorum} of ${n}`,
      intervalMs: o.intervalMs,
      ratePerPartner: o.rate,
      seconds: o.seconds,
      warmUpMs: { median: median(warm), max: Math.max(...warm) },
      latency: {
        median: round(med, 1),
        p90: round(quantile(lat, 0.9), 1),
        p99: round(p99, 1),
        max: round(Math.max(...lat), 1),
        samples: lat.length,
        failures,
        medianGoal: o.intervalMs + 100,
        p99Goal: 2 * o.intervalMs,
        meetsGoal: med <= o.intervalMs + 100 && p99 <= 2 * o.intervalMs,
      },
      cpu: {
        msPerIntervalMean: round(cpuPer.reduce((s, x) => s + x, 0) / n, 1),
        msPerIntervalMax: round(Math.max(...cpuPer), 1),
        coreShareMean: round(shares.reduce((s, x) => s + x, 0) / n, 3),
        coreShareMax: round(Math.max(...shares), 3),
        ...(b0 !== undefined && b1 !== undefined ? { brokerMsPerInterval: round(((b1 - b0) / windowMs) * o.intervalMs, 1) } : {}),
      },
      messages: {
        perInterval: round(total / intervals, 1),
        byKind,
        ...(delivered !== undefined ? { brokerDeliveredPerInterval: delivered } : {}),
        perPartnerPerInterval: round(total / intervals / n, 1),
      },
    };
    log(
      `scale ${n}: latency median ${point.latency.median} ms p99 ${point.latency.p99} ms (${lat.length} entries, ${failures} failed); ` +
        `CPU/partner ${point.cpu.msPerIntervalMean} ms per interval (max ${point.cpu.msPerIntervalMax}); ` +
        `${point.messages.perInterval} messages per interval ${JSON.stringify(byKind)}, broker delivered ${String(delivered)}`,
    );
    return point;
  } finally {
    await counter?.close().catch(() => undefined);
    await Promise.all(children.map((c) => stopChild(c).catch(() => undefined)));
    await broker.close().catch(() => undefined);
    for (const d of dirs) rmDir(d);
  }
}

/** Measure consortia of each size in turn, and the growth from the smallest to the largest. */
export async function benchConsortiumScale(o: ScaleOptions): Promise<{ points: ScalePoint[]; growth: Record<string, number> }> {
  const points: ScalePoint[] = [];
  for (const n of o.sizes) {
    log(`scale: ${n} partners, checkpoint every ${o.intervalMs} ms, ${o.rate} appends/s each for ${o.seconds} s`);
    points.push(await measure(n, o));
  }
  const a = points[0];
  const z = points[points.length - 1];
  const growth = {
    partners: z.partners / a.partners,
    messagesPerInterval: round(z.messages.perInterval / a.messages.perInterval, 2),
    messagesPerPartner: round(z.messages.perPartnerPerInterval / a.messages.perPartnerPerInterval, 2),
    cpuPerPartner: round(z.cpu.msPerIntervalMean / a.cpu.msPerIntervalMean, 2),
  };
  return { points, growth };
}

/** The sizes and pace of `npm run bench -- --scale` (the bot-ledger node's default checkpoint interval). */
export const CONSORTIUM_SCALE: ScaleOptions = { sizes: [3, 7, 15], intervalMs: 1000, seconds: 20, rate: 4 };

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  if (process.argv.includes('--scale-partner')) {
    runPartner();
  } else {
    const o: ScaleOptions = {
      sizes: (arg('--sizes') ?? CONSORTIUM_SCALE.sizes.join(',')).split(',').map(Number),
      intervalMs: Number(arg('--interval') ?? CONSORTIUM_SCALE.intervalMs),
      seconds: Number(arg('--seconds') ?? CONSORTIUM_SCALE.seconds),
      rate: Number(arg('--rate') ?? CONSORTIUM_SCALE.rate),
    };
    benchConsortiumScale(o).then(
      (r) => {
        process.stdout.write(JSON.stringify({ bench: 'consortium-scale', ...o, ...r }, null, 2) + '\n');
        // --check (the 15-partner test as a script): every entry of every partner confirmed in time.
        const failed = r.points.filter((p) => p.latency.failures > 0 || p.latency.samples < p.partners * Math.round(p.ratePerPartner * p.seconds));
        if (process.argv.includes('--check') && failed.length > 0) {
          process.stderr.write(
            `check failed: entries not confirmed within 60 s at ${failed.map((p) => `${p.partners} partners (${p.latency.failures})`).join(', ')}\n`,
          );
          process.exit(1);
        }
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  }
}
