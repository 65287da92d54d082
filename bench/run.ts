/**
 * Benchmark of the kernel against peers measured side by side in the same run.
 *
 *   npm run bench            (build, then node dist/bench/run.js; about 4.5 minutes on 2 cores)
 *   npm run bench:short      (the same with --short: smaller sizes, a smoke test, < 1 min)
 *   npm run bench -- --scale (only the scale figures at 10k / 1M / 10M entries: bench/scale.ts;
 *                            its large ledgers are kept between runs in a cache folder)
 *
 * Prints ONE JSON object on stdout (progress goes to stderr): `mode`, `machine` (CPU model,
 * core count, Node version), `params`, and one entry per figure, each with `value` (ours),
 * `peer`, `ratio` (value / peer), the `target` the ratio is compared with, `meetsTarget`,
 * and the per-round figures. Machines are shared and noisy, so every figure alternates its
 * measured and peer runs (A B A B A B …) and reports medians; nothing here asserts a
 * timing. The figures:
 *
 * append  Durable appends arriving one at a time: CALLERS (256) concurrent async callers,
 *         each awaiting ledger.append(env) in a loop over its own pre-signed envelopes
 *         (one device identity per caller, a ~150-byte sensor reading each), into a fresh
 *         ledger, in entries/s. Peer: hypercore 11.37.1 in a fresh directory appending
 *         the same entries' bytes (env.bytes) in batches of 100 (await core.append(batch)).
 *         Target ratio >= 1.0. Note that the ledger resolves an append only after a
 *         LevelDB write with sync (one fdatasync per group commit), while hypercore 11
 *         writes RocksDB without sync (no fsync per append; both checked with strace).
 * sign    signEnvelope(identity, {kind, seq, ts, topic, payload}) per second (inputs built
 *         before timing). Peer: crypto.sign(null, message, keyObject) per second on the
 *         same message bytes ("bot-envelope-v1\n" + the JCS body), with a KeyObject made
 *         from the same seed. Target >= 0.8.
 * audit   auditLedger(ledger) over a ledger of AUDIT entries, in entries/s, with its
 *         default signature workers. Peer: crypto.verify over the same message bytes,
 *         in a loop on the main thread (one core). Reported: worker threads used, cores
 *         used = min(workers + 1, os.availableParallelism()) (the main thread verifies
 *         signatures too whenever every worker is busy; 1 when there are no workers),
 *         ratio, and ratio per core used (target >= 0.7); `cpuCores` is the CPU time the
 *         process actually used during the audit divided by its wall time (all threads).
 *         `inline` is auditLedger with {workers: 0}.
 * scale   Append throughput (same method as `append`, a window of WINDOW pre-signed
 *         entries appended on top) and inclusion-proof time (ledger.inclusionProof of
 *         PROOFS random indices, awaited one after another, after a short untimed warm-up;
 *         every proof is verified against the root outside the timing) on a ledger of BIG
 *         entries, against the same on a fresh ledger of SMALL entries. The BIG ledger is
 *         built once (by the `memory` build child, signing as it goes with BIG/1000
 *         device identities); a fresh SMALL ledger is built for each round. Targets:
 *         throughput ratio >= 0.8; proof-time ratio (`proof`, BIG / SMALL) <= 3.
 * memory  Process RSS (after global.gc; children run with --expose-gc) of a child process
 *         that opened the BIG ledger and appended a window of MEM_WINDOW entries to it,
 *         against a child that did the same on a copy of a SMALL ledger; heapUsed is
 *         reported beside (`heapUsed`). `build` gives the same figures for the children
 *         that created and appended the BIG and SMALL ledgers from empty (the BIG one is
 *         the ledger reused by `scale`). `rssAnon`/`rssFile` split the RSS on Linux;
 *         `peakRss` is the child's maximum RSS. Target ratio <= 1.2.
 * partner Partner reads (GitHub issue 5; details in bench/partner.ts): an owner ledger of 10k
 *         device readings (2k short) with one read grant (2 of its 4 device signers, topics
 *         plant/#: about half the entries) and one signed checkpoint, answering the RPC method
 *         "request" (answerRequest) through a LedgerPublisher on a loopback MQTT broker
 *         (bench/consensus.ts startBroker: Mosquitto with default settings when installed,
 *         else aedes). A partner in a child process, with its own MqttLink, makes reads of 20
 *         entries at seeded random offsets, 8 in flight: makeRequest → link.request(rpc,
 *         'request') → verifyReadAnswer (every signature and inclusion proof checked), in
 *         reads/s. Peer: the same filters, 8 in flight, in this process as a local bot-query
 *         does them (queryFrom + provenQuery against the latest checkpoint; no grant, no
 *         transport, no verification), in reads/s. Target ratio >= 0.5. Beside, from the
 *         same alternated rounds: `unverified` (the partner without verifyReadAnswer),
 *         `sameProcess` (the partner on a second link in this process), `direct`
 *         (answerRequest + verifyReadAnswer in this process, no MQTT), and CPU ms per read
 *         of the partner child (and its verification) and of the owner.
 *
 * confidential  Sealed vs plain entries (GitHub issue 13; details in bench/confidential.ts): appends/s
 *         through LedgerService.append (target ratio >= 0.8), partner reads/s with readOpen
 *         against read (target >= 0.8), and the time of a key rotation at 100 partners.
 *         `--confidential` runs only these.
 *
 * --scale also runs consortia of 3, 7 and 15 partner processes (bench/consortium-scale.ts).
 *
 * bulk    `bot-ledger append` of N JSON lines from stdin with its signing pool (and `poolOff`,
 *         --workers 0), against hypercore with the same parsing and signEnvelope on one thread
 *         (details in bench/bulk-append.ts), in entries/s. Target ratio >= 1.5.
 * latency p50 of one message end to end through bot-sign → bot-append at 10 msg/s, signing pool
 *         on against pool off (bench/flow.ts benchLatency). Target ratio <= 1.1.
 * devices Messages/s through bot-verify trusting the devices enrolled in a ledger (64 enrolled,
 *         16 sending, topic filters checked) against the same bot-verify with the 16 did:keys as
 *         a fixed trusted list (GitHub issue 14; details in bench/devices.ts). Target ratio >= 0.9.
 *
 * Full mode: append 100k, audit 50k, scale/memory 1,000,000 vs 10,000; 5 rounds (memory 3).
 * Short mode (--short, the smoke test `npm test` runs for the shape only): append 5k, audit 3k, scale/memory
 * 30,000 vs 5,000, every section smaller; 2 rounds.
 * Scratch ledgers live in fresh directories under os.tmpdir() and are removed at the end.
 */
import { benchFlow, benchLatency } from './flow';
import { benchBulkAppend } from './bulk-append';
import { benchConsensus } from './consensus';
import { benchConsortiumScale, CONSORTIUM_SCALE } from './consortium-scale';
import { benchPartner } from './partner';
import { benchConfidential } from './confidential';
import { benchDevices, DEVICES_SIZES } from './devices';
import { benchScaleMode } from './scale';
import * as child_process from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { auditLedger, canonicalize, ENVELOPE_DOMAIN, fromTrustedLeaf, Identity, Ledger, signEnvelope, verifyInclusion } from '../lib/index';
import type { EnvelopeInput, Hash } from '../lib/index';
import {
  appendCallers,
  CALLERS,
  createLedger,
  type Figure,
  grow,
  log,
  makeSigners,
  median,
  now,
  prng,
  reading,
  rmDir,
  round,
  signSpread,
  T0,
  tmpDir,
  topicOf,
} from './common';
import type { MemArgs, MemResult } from './mem-child';

interface HypercoreLike {
  ready(): Promise<void>;
  append(blocks: Buffer | Buffer[]): Promise<{ length: number }>;
  close(): Promise<void>;
  readonly length: number;
}
// hypercore ships no types; it is a CommonJS module.

const Hypercore = require('hypercore') as new (dir: string) => HypercoreLike;

const SHORT = process.argv.includes('--short');
const SCALE = process.argv.includes('--scale');
const P = SHORT
  ? {
      appendN: 5_000,
      rounds: 2,
      signN: 2_000,
      signRounds: 2,
      audit: 3_000,
      big: 30_000,
      small: 5_000,
      window: 2_000,
      proofs: 500,
      memWindow: 2_000,
      memRounds: 2,
    }
  : {
      appendN: 100_000,
      rounds: 5,
      signN: 20_000,
      signRounds: 5,
      audit: 50_000,
      big: 1_000_000,
      small: 10_000,
      window: 20_000,
      proofs: 2_000,
      memWindow: 20_000,
      memRounds: 3,
    };

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function figure(
  what: string,
  peerWhat: string,
  unit: string,
  values: number[],
  peers: number[],
  target: ['>=' | '<=', number],
  extra: Record<string, unknown> = {},
  digits = 0,
): Figure {
  const value = median(values);
  const peer = median(peers);
  const ratio = value / peer;
  return {
    what,
    peerWhat,
    unit,
    value: round(value, digits),
    peer: round(peer, digits),
    ratio: round(ratio, 3),
    target: `ratio ${target[0]} ${target[1]}`,
    meetsTarget: target[0] === '>=' ? ratio >= target[1] : ratio <= target[1],
    rounds: { value: values.map((v) => round(v, digits)), peer: peers.map((v) => round(v, digits)) },
    ...extra,
  };
}

const dirs: string[] = [];
function scratch(tag: string): string {
  const d = tmpDir(tag);
  dirs.push(d);
  return d;
}
function drop(dir: string): void {
  rmDir(dir);
  const i = dirs.indexOf(dir);
  if (i >= 0) dirs.splice(i, 1);
}

// ---------------------------------------------------------------------------------- sign

async function benchSign(): Promise<Figure> {
  log(`sign: ${P.signRounds} rounds of ${P.signN} signatures, alternated with raw crypto.sign`);
  const id = Identity.generate();
  const key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, id.exportSeed()]), format: 'der', type: 'pkcs8' });
  const inputs: EnvelopeInput[] = Array.from({ length: P.signN }, (_, i) => ({
    kind: 'reading',
    seq: i,
    ts: T0 + i * 1000,
    topic: topicOf(7),
    payload: reading(7, i),
  }));
  const sample = signEnvelope(id, inputs[0]);
  const { sig, ...body } = sample.envelope;
  const message = Buffer.from(ENVELOPE_DOMAIN + canonicalize(body), 'utf8');
  if (crypto.sign(null, message, key).toString('base64url') !== sig) throw new Error('sign: peer message does not match the envelope signature');
  const ours = (): number => {
    const t = now();
    for (const x of inputs) signEnvelope(id, x);
    return P.signN / (now() - t);
  };
  const raw = (): number => {
    const t = now();
    for (let i = 0; i < P.signN; i++) crypto.sign(null, message, key);
    return P.signN / (now() - t);
  };
  ours();
  raw(); // warm-up
  const a: number[] = [],
    b: number[] = [];
  for (let r = 0; r < P.signRounds; r++) {
    a.push(ours());
    b.push(raw());
  }
  return figure('signEnvelope per second', 'crypto.sign(null, sameMessageBytes, keyObject) per second', 'signatures/s', a, b, ['>=', 0.8], {
    messageBytes: message.length,
    leafBytes: sample.bytes.length,
  });
}

// -------------------------------------------------------------------------------- append

async function ledgerRun(lists: ReturnType<typeof signSpread>): Promise<{ rate: number; commits: number }> {
  const dir = scratch('append');
  const ledger = await createLedger(dir);
  const n = lists.reduce((s, l) => s + l.length, 0);
  const sec = await appendCallers(ledger, lists);
  const commits = ledger.stats.commits;
  if (ledger.size !== n) throw new Error(`append: ledger holds ${ledger.size}, expected ${n}`);
  await ledger.close();
  drop(dir);
  return { rate: n / sec, commits };
}

async function hypercoreRun(blocks: Buffer[]): Promise<number> {
  const dir = scratch('hypercore');
  const core = new Hypercore(dir);
  await core.ready();
  const t = now();
  for (let i = 0; i < blocks.length; i += 100) await core.append(blocks.slice(i, i + 100));
  const sec = now() - t;
  if (core.length !== blocks.length) throw new Error(`append: hypercore holds ${core.length}, expected ${blocks.length}`);
  await core.close();
  drop(dir);
  return blocks.length / sec;
}

async function benchAppend(lists: ReturnType<typeof signSpread>): Promise<Figure> {
  const blocks: Buffer[] = [];
  const longest = Math.max(...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) blocks.push(l[i].bytes);
  log(`append: ${P.rounds} rounds of ${blocks.length} entries, ${CALLERS} callers, alternated with hypercore batches of 100`);
  // Warm-up of both code paths on a small prefix, untimed.
  await ledgerRun(lists.map((l) => l.slice(0, 8)));
  await hypercoreRun(blocks.slice(0, 2000));
  const a: number[] = [],
    b: number[] = [],
    commits: number[] = [];
  for (let r = 0; r < P.rounds; r++) {
    const x = await ledgerRun(lists);
    a.push(x.rate);
    commits.push(x.commits);
    b.push(await hypercoreRun(blocks));
    log(`append round ${r + 1}: ledger ${Math.round(x.rate)}/s (${x.commits} commits), hypercore ${Math.round(b[r])}/s`);
  }
  const bytes = blocks.reduce((s, x) => s + x.length, 0);
  return figure(
    `ledger.append entries/s, ${CALLERS} concurrent callers each awaiting one durable append at a time`,
    `hypercore ${hypercoreVersion()} entries/s, await core.append(batch of 100 env.bytes)`,
    'entries/s',
    a,
    b,
    ['>=', 1.0],
    {
      entries: blocks.length,
      callers: CALLERS,
      meanEntryBytes: round(bytes / blocks.length),
      meanCommitSize: round(blocks.length / median(commits), 1),
      durability: { value: 'LevelDB batch with sync: one fdatasync per group commit', peer: 'RocksDB write without sync: no fsync per append' },
    },
  );
}

function hypercoreVersion(): string {
  const pkg = path.join(path.dirname(require.resolve('hypercore')), 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

// --------------------------------------------------------------------------------- audit

async function benchAudit(lists: ReturnType<typeof signSpread>): Promise<Figure> {
  const dir = scratch('audit');
  const ledger = await createLedger(dir);
  const per = Math.floor(P.audit / lists.length);
  await appendCallers(
    ledger,
    lists.map((l, i) => l.slice(0, per + (i < P.audit % lists.length ? 1 : 0))),
  );
  const size = ledger.size;
  log(`audit: ledger of ${size} entries; ${P.rounds} rounds of auditLedger (default workers), raw crypto.verify, auditLedger {workers: 0}`);
  // The peer's input: each entry's signed message, signature and public key.
  const msgs: Buffer[] = [],
    sigs: Buffer[] = [],
    keys: crypto.KeyObject[] = [];
  const keyOf = new Map<string, crypto.KeyObject>();
  for await (const e of ledger.entries()) {
    const env = fromTrustedLeaf(e.leaf);
    const { sig, ...body } = env.envelope;
    msgs.push(Buffer.from(ENVELOPE_DOMAIN + canonicalize(body), 'utf8'));
    sigs.push(Buffer.from(sig, 'base64url'));
    let k = keyOf.get(env.signer.did);
    if (!k) {
      k = crypto.createPublicKey({ key: Buffer.concat([SPKI_ED25519, env.signer.bytes]), format: 'der', type: 'spki' });
      keyOf.set(env.signer.did, k);
    }
    keys.push(k);
  }
  const ours = async (workers?: number): Promise<{ rate: number; workers: number; cpuCores: number }> => {
    const t = now();
    const cpu = process.cpuUsage();
    const res = await auditLedger(ledger, workers === undefined ? {} : { workers });
    const sec = now() - t;
    const used = process.cpuUsage(cpu);
    if (!res.ok) throw new Error(`audit failed: ${JSON.stringify(res)}`);
    return { rate: size / sec, workers: res.workers, cpuCores: (used.user + used.system) / 1e6 / sec };
  };
  const raw = (): number => {
    const t = now();
    let ok = 0;
    for (let i = 0; i < size; i++) if (crypto.verify(null, msgs[i], keys[i], sigs[i])) ok++;
    const sec = now() - t;
    if (ok !== size) throw new Error('audit: a raw verification failed');
    return size / sec;
  };
  raw(); // warm-up
  const a: number[] = [],
    b: number[] = [],
    c: number[] = [],
    cpuA: number[] = [],
    cpuC: number[] = [];
  let workers = 0;
  for (let r = 0; r < P.rounds; r++) {
    const x = await ours();
    a.push(x.rate);
    cpuA.push(x.cpuCores);
    workers = x.workers;
    b.push(raw());
    const y = await ours(0);
    c.push(y.rate);
    cpuC.push(y.cpuCores);
    log(
      `audit round ${r + 1}: auditLedger ${Math.round(a[r])}/s (${workers} workers, ${x.cpuCores.toFixed(2)} CPU cores), crypto.verify ${Math.round(b[r])}/s, inline ${Math.round(c[r])}/s`,
    );
  }
  await ledger.close();
  drop(dir);
  const cores = workers > 0 ? Math.min(workers + 1, os.availableParallelism()) : 1;
  const f = figure(
    `auditLedger entries/s on a ledger of ${size} entries (default options)`,
    'crypto.verify entries/s over the same message bytes, one core (main thread loop)',
    'entries/s',
    a,
    b,
    ['>=', 0.7 * cores],
    {
      entries: size,
      workers,
      coresUsed: cores,
      cpuCores: round(median(cpuA), 2),
    },
  );
  const perCore = f.ratio / cores;
  f.ratioPerCore = round(perCore, 3);
  f.target = 'ratioPerCore >= 0.7';
  f.meetsTarget = perCore >= 0.7;
  const inline = median(c);
  f.inline = {
    what: 'auditLedger(ledger, {workers: 0}) entries/s',
    value: round(inline),
    peer: f.peer,
    ratio: round(inline / median(b), 3),
    coresUsed: 1,
    ratioPerCore: round(inline / median(b), 3),
    cpuCores: round(median(cpuC), 2),
    rounds: c.map((v) => round(v)),
  };
  return f;
}

// ------------------------------------------------------------------- children for memory

function runChild(args: MemArgs): Promise<MemResult> {
  return new Promise((resolve, reject) => {
    const child = child_process.fork(path.join(__dirname, 'mem-child.js'), [JSON.stringify(args)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let result: MemResult | undefined;
    child.on('message', (m) => {
      result = m as MemResult;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`mem-child ${args.tag} exited with ${code}`))));
  });
}

// --------------------------------------------------------------------------------- scale

async function proofMicros(ledger: Ledger, rnd: () => number): Promise<number> {
  const size = ledger.size;
  const pick = (): number => Math.floor(rnd() * size);
  for (let i = 0; i < 200; i++) await ledger.inclusionProof(pick()); // warm-up, untimed
  const idx = Array.from({ length: P.proofs }, pick);
  const proofs: Hash[][] = new Array(idx.length);
  const t = now();
  for (let i = 0; i < idx.length; i++) proofs[i] = await ledger.inclusionProof(idx[i]);
  const us = ((now() - t) / idx.length) * 1e6;
  const root = ledger.root();
  for (let i = 0; i < idx.length; i++) verifyInclusion(idx[i], size, (await ledger.get(idx[i])).leafHash, proofs[i], root);
  return us;
}

async function windowRate(ledger: Ledger): Promise<number> {
  const lists = signSpread(makeSigners(CALLERS, 500_000), P.window);
  const sec = await appendCallers(ledger, lists);
  return P.window / sec;
}

async function benchScale(bigDir: string): Promise<Figure> {
  log(`scale: ${P.rounds} rounds of [fresh ${P.small}-entry ledger | the ${P.big}-entry ledger]: ${P.proofs} proofs, then a window of ${P.window} appends`);
  const rnd = prng(6962);
  const aBig: number[] = [],
    aSmall: number[] = [],
    pBig: number[] = [],
    pSmall: number[] = [];
  const sizes: number[] = [];
  for (let r = 0; r < P.rounds; r++) {
    const sdir = scratch('scale-small');
    const small = await createLedger(sdir);
    await grow(small, P.small);
    pSmall.push(await proofMicros(small, rnd));
    aSmall.push(await windowRate(small));
    await small.close();
    drop(sdir);

    const big = await Ledger.open({ dir: bigDir, create: false });
    sizes.push(big.size);
    pBig.push(await proofMicros(big, rnd));
    aBig.push(await windowRate(big));
    await big.close();
    log(
      `scale round ${r + 1}: append ${Math.round(aBig[r])}/s at ${sizes[r]} vs ${Math.round(aSmall[r])}/s at ${P.small}; proof ${pBig[r].toFixed(1)} µs vs ${pSmall[r].toFixed(1)} µs`,
    );
  }
  const f = figure(
    `ledger.append entries/s (${CALLERS} callers, window of ${P.window}) on a ledger of ${P.big} entries`,
    `the same on a fresh ledger of ${P.small} entries`,
    'entries/s',
    aBig,
    aSmall,
    ['>=', 0.8],
    {
      bigSizes: sizes,
      smallSize: P.small,
      window: P.window,
    },
  );
  f.proof = figure(
    `ledger.inclusionProof mean µs over ${P.proofs} random indices, ${P.big}-entry ledger`,
    `the same on the ${P.small}-entry ledger`,
    'µs/proof',
    pBig,
    pSmall,
    ['<=', 3],
    {},
    1,
  );
  return f;
}

// -------------------------------------------------------------------------------- memory

function memFigure(what: string, big: MemResult[], small: MemResult[], target: number): Figure {
  const mib = (x: number): number => x / 2 ** 20;
  const med = (xs: MemResult[], k: 'heapTotal' | 'external' | 'maxRss' | 'rssAnon' | 'rssFile'): number | null =>
    xs.every((m) => m[k] !== undefined) ? round(median(xs.map((m) => mib(m[k] as number))), 1) : null;
  const f = figure(
    `${what}: RSS MiB after gc, ledger of ${P.big} entries`,
    `the same, ledger of ${P.small} entries`,
    'MiB',
    big.map((m) => mib(m.rss)),
    small.map((m) => mib(m.rss)),
    ['<=', target],
    {
      gcExposed: big.every((m) => m.gc) && small.every((m) => m.gc),
      sizes: { big: big.map((m) => m.size), small: small.map((m) => m.size) },
      openSeconds: { big: round(median(big.map((m) => m.openSeconds)), 3), small: round(median(small.map((m) => m.openSeconds)), 3) },
      peakRss: { big: med(big, 'maxRss'), small: med(small, 'maxRss') },
      rssAnon: { big: med(big, 'rssAnon'), small: med(small, 'rssAnon') },
      rssFile: { big: med(big, 'rssFile'), small: med(small, 'rssFile') },
      heapTotal: { big: med(big, 'heapTotal'), small: med(small, 'heapTotal') },
      external: { big: med(big, 'external'), small: med(small, 'external') },
    },
    1,
  );
  f.heapUsed = figure(
    `${what}: heapUsed MiB after gc, ledger of ${P.big} entries`,
    `the same, ledger of ${P.small} entries`,
    'MiB',
    big.map((m) => mib(m.heapUsed)),
    small.map((m) => mib(m.heapUsed)),
    ['<=', target],
    {},
    1,
  );
  return f;
}

// ---------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  if (SCALE) return scaleMain();
  const started = now();
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverage: os.loadavg().map((x) => round(x, 2)),
  };
  log(`mode ${SHORT ? 'short' : 'full'}; ${machine.cpu} x${machine.cpus}; node ${machine.node}`);

  if (process.argv.includes('--confidential')) {
    // `npm run bench -- --confidential` (GitHub issue 13): the confidential figures alone.
    const confidential = await benchConfidential(SHORT);
    process.stdout.write(
      JSON.stringify({ bench: 'confidential', mode: SHORT ? 'short' : 'full', machine, confidential, seconds: round(now() - started, 1) }, null, 2) + '\n',
    );
    return;
  }

  const sign = await benchSign();

  log(`pre-signing ${P.appendN} envelopes for ${CALLERS} callers`);
  const lists = signSpread(makeSigners(CALLERS), P.appendN);
  const append = await benchAppend(lists);
  const audit = await benchAudit(lists);
  lists.length = 0;

  log(`memory: build children, ${P.small} then ${P.big} entries (the latter is the scale ledger)`);
  const smallDir = scratch('mem-small');
  const bigDir = scratch('big');
  const buildSmall = await runChild({ tag: 'build-small', dir: smallDir, create: true, target: P.small });
  const buildBig = await runChild({ tag: 'build-big', dir: bigDir, create: true, target: P.big });
  log(`built ${buildBig.size} entries in ${buildBig.seconds.toFixed(1)} s (${Math.round(buildBig.appended / buildBig.seconds)}/s signing as it goes)`);

  const scale = await benchScale(bigDir);

  log(`memory: ${P.memRounds} rounds of children reopening [the ${P.big}-entry ledger | a copy of the ${P.small}-entry ledger] and appending ${P.memWindow}`);
  const mBig: MemResult[] = [],
    mSmall: MemResult[] = [];
  for (let r = 0; r < P.memRounds; r++) {
    mBig.push(await runChild({ tag: 'reopen-big', dir: bigDir, create: false, window: P.memWindow }));
    const copy = scratch('mem-copy');
    fs.cpSync(smallDir, copy, { recursive: true });
    mSmall.push(await runChild({ tag: 'reopen-small', dir: copy, create: false, window: P.memWindow }));
    drop(copy);
    log(
      `memory round ${r + 1}: RSS ${(mBig[r].rss / 2 ** 20).toFixed(1)} MiB at ${mBig[r].size} vs ${(mSmall[r].rss / 2 ** 20).toFixed(1)} MiB at ${mSmall[r].size}`,
    );
  }
  const memory = memFigure(`child that opened the ledger and appended ${P.memWindow} entries`, mBig, mSmall, 1.2);
  memory.build = memFigure('child that created the ledger and appended every entry', [buildBig], [buildSmall], 1.2);
  (memory.build as Figure).buildRate = { big: round(buildBig.appended / buildBig.seconds), small: round(buildSmall.appended / buildSmall.seconds) };

  log(`flow: ${SHORT ? 2 : 5} rounds of bot-sign → bot-append against change → change in Node-RED`);
  const flow = await benchFlow(SHORT ? 1000 : 20000, SHORT ? 2 : 5);

  log(`bulk: bot-ledger append with its signing pool against hypercore signing and appending; latency at 10 msg/s`);
  const bulk = await benchBulkAppend(SHORT ? 2000 : 20000, SHORT ? 2 : 5);
  const latency = await benchLatency(SHORT ? 10 : 40, SHORT ? 1 : 3);

  const dsize = SHORT ? DEVICES_SIZES.short : DEVICES_SIZES.full;
  log(`devices: ${dsize.rounds} rounds of ${dsize.messages} messages through bot-verify, device registry against a fixed trusted list`);
  const devices = await benchDevices(dsize.messages, dsize.rounds);

  log(`consensus: 3 partners over loopback MQTT, confirmation latency and witnessed append throughput`);
  const consensus = await benchConsensus(SHORT);

  log(`partner: reads with proofs over loopback MQTT from a child process against local bot-query reads`);
  const partner = await benchPartner(SHORT);

  log(`confidential: sealed vs plain appends and partner reads, key rotation at 100 partners (bench/confidential.ts)`);
  const confidential = await benchConfidential(SHORT);

  const out = {
    bench: '@blockchain-of-things/node-red kernel vs peers',
    mode: SHORT ? 'short' : 'full',
    machine,
    params: { ...P, callers: CALLERS, hypercore: hypercoreVersion() },
    append,
    sign,
    audit,
    scale,
    memory,
    flow,
    bulk,
    latency,
    devices,
    consensus,
    partner,
    confidential,
    loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)),
    seconds: round(now() - started, 1),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

/** `--scale`: only the scale figures (bench/scale.ts), with the machine and its load. */
async function scaleMain(): Promise<void> {
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    node: process.version,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverage: os.loadavg().map((x) => round(x, 2)),
  };
  log(`mode scale; ${machine.cpu} x${machine.cpus}; node ${machine.node}; load ${machine.loadAverage.join(' ')}`);
  const scale = await benchScaleMode();
  log('consortium scale: 3, 7 and 15 partners, each in its own process (bench/consortium-scale.ts)');
  const consortiumScale = await benchConsortiumScale(CONSORTIUM_SCALE);
  const out = {
    bench: '@blockchain-of-things/node-red kernel at scale',
    mode: 'scale',
    machine,
    scale,
    consortiumScale,
    loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

const cleanup = (): void => {
  for (const d of dirs.splice(0)) rmDir(d);
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
let finished = false;
// A promise that never settles (an append that is never admitted or written, say) would
// otherwise let Node exit silently with status 0 and no JSON.
process.on('beforeExit', () => {
  if (finished) return;
  finished = true;
  cleanup();
  process.stderr.write('bench failed: the event loop emptied before the run finished (an operation never settled)\n');
  process.exit(1);
});
// The Node-RED runtime of the flow figure keeps timers: exit once the JSON is out.
main().then(
  () => {
    finished = true;
    cleanup();
    process.exit(0);
  },
  (err: unknown) => {
    finished = true;
    cleanup();
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
