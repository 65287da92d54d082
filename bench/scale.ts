/**
 * The `--scale` mode of the benchmark (`npm run bench -- --scale`, or `node dist/bench/run.js
 * --scale` after a build; `node dist/bench/scale.js` for these figures alone): how the ledger's costs grow with its size (GitHub issue 15,
 * "Storage at scale"), side by side in one run on ledgers of BOT_SCALE_SIZES entries
 * (default 10000,1000000,10000000):
 *
 * - inclusion proof: ledger.inclusionProof of PROOFS random indices, one after another,
 *   every proof verified outside the timing; wall µs and CPU µs (process CPU time) per
 *   proof — on a loaded machine the CPU figure is the steadier one — right after the open
 *   (200 untimed) and warm (after 4 × PROOFS more untimed); then with every ledger open at
 *   once, batches of 100 proofs of each size in turn (the load falls on all sizes alike):
 *   random ones (10th percentile and median of the batches) and repeated ones, whose records
 *   are all in the ledger's caches (the computation alone, no LevelDB read);
 * - append rate: a window of WINDOW pre-signed entries appended by 256 concurrent callers
 *   (the method of the default bench's `append`), entries/s and CPU µs per append;
 * - memory: RSS (anonymous and file-backed), heapUsed after gc of a child process that
 *   opened each ledger and appended MEM_WINDOW entries with the bulk path (like for like,
 *   every run), then again after it answered MEM_PROOFS random proofs (each entry read too,
 *   as a server does), and of the child that built each ledger from empty when it was built;
 * - bytes on disk per entry; CPU µs per verified entry (auditLedger inline, one core).
 *
 * Building: entries are signed by two worker threads of a build child and appended in
 * groups of 4096 with ledger.appendAll (the bulk path); entry i is signed by device signer
 * i mod 256 (seeds derived from the signer number) with seq i, so the content is
 * deterministic and a build resumes where an earlier one stopped. The smallest ledger is
 * built from empty every run; the larger ones are kept between runs in a cache folder
 * (BOT_BENCH_CACHE, default ~/.cache/bot-bench/scale/ledger-<size>) and only extended when
 * short. A cached ledger grows by the windows appended to it (3 × WINDOW + MEM_WINDOW a
 * run); the smallest takes its windows in scratch copies. Progress goes to stderr.
 */
import * as child_process from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { auditLedger, fromTrustedLeaf, Identity, Ledger, type SignedEnvelope, signEnvelope, verifyInclusion } from '../lib/index';
import type { Hash } from '../lib/index';
import { appendCallers, CALLERS, log, makeSigners, median, now, ORIGIN, prng, reading, rmDir, round, signSpread, T0, tmpDir, topicOf } from './common';

/** Device signers of a scale ledger. */
const SIGNERS = 256;
/** Entries per appendAll group (the ledger's default maxBatch). */
const GROUP = 4096;

/** The seed of device signer k: deterministic, so a cached ledger can be extended. */
function seedOf(k: number): Buffer {
  return crypto.createHash('sha256').update(`bot-bench-scale-signer-${k}`).digest();
}

/** The envelope of entry i of a scale ledger: signer i mod SIGNERS, seq i (rising per signer whatever was appended between). */
function signEntry(ids: Identity[], i: number): SignedEnvelope {
  const device = i % SIGNERS;
  return signEnvelope(ids[device], { kind: 'reading', seq: i, ts: T0 + i * 4, topic: topicOf(device), payload: reading(device, Math.floor(i / SIGNERS)) });
}

// ------------------------------------------------------------------ signing worker threads

interface SignJob {
  from: number;
  count: number;
}

if (!isMainThread && (workerData as { scaleSigner?: boolean } | undefined)?.scaleSigner) {
  const ids = Array.from({ length: SIGNERS }, (_, k) => Identity.fromSeed(seedOf(k)));
  parentPort?.on('message', (job: SignJob) => {
    const leaves: Buffer[] = [];
    for (let i = job.from; i < job.from + job.count; i++) leaves.push(signEntry(ids, i).bytes);
    const lengths = new Uint32Array(leaves.map((l) => l.length));
    const all = Buffer.concat(leaves);
    const body = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
    parentPort?.postMessage({ from: job.from, lengths, body }, [lengths.buffer, body]);
  });
}

/** A pool of signing workers producing the envelopes of [from, from + count). */
class SignPool {
  readonly #workers: Worker[];
  #next = 0;
  constructor(n: number) {
    this.#workers = Array.from({ length: n }, () => new Worker(__filename, { workerData: { scaleSigner: true } }));
  }
  sign(from: number, count: number): Promise<SignedEnvelope[]> {
    const w = this.#workers[this.#next++ % this.#workers.length];
    return new Promise((resolve, reject) => {
      const onMessage = (m: { from: number; lengths: Uint32Array; body: ArrayBuffer }): void => {
        if (m.from !== from) return;
        w.off('message', onMessage);
        w.off('error', reject);
        const body = Buffer.from(m.body);
        const out: SignedEnvelope[] = [];
        let o = 0;
        for (const len of m.lengths) {
          out.push(fromTrustedLeaf(body.subarray(o, o + len)));
          o += len;
        }
        resolve(out);
      };
      w.on('message', onMessage);
      w.once('error', reject);
      w.postMessage({ from, count } satisfies SignJob);
    });
  }
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/**
 * Grow the ledger to target with the bulk path: entries signed by `workers` threads, appended
 * in groups of GROUP with appendAll, two groups in flight. Returns seconds taken.
 */
export async function bulkGrow(ledger: Ledger, target: number, workers: number, onProgress?: (size: number, rate: number) => void): Promise<number> {
  const t = now();
  const start = ledger.size;
  const pool = new SignPool(workers);
  try {
    let next = ledger.size;
    const signing: Promise<SignedEnvelope[]>[] = [];
    const fill = (): void => {
      while (signing.length < workers * 2 && next < target) {
        const n = Math.min(GROUP, target - next);
        signing.push(pool.sign(next, n));
        next += n;
      }
    };
    fill();
    let inFlight: Promise<unknown> = Promise.resolve();
    let reported = ledger.size;
    while (signing.length > 0) {
      const envs = await (signing.shift() as Promise<SignedEnvelope[]>);
      fill();
      const prev = inFlight;
      inFlight = ledger.appendAll(envs);
      await prev;
      if (onProgress && ledger.size - reported >= 250_000) {
        reported = ledger.size;
        onProgress(ledger.size, (ledger.size - start) / (now() - t));
      }
    }
    await inFlight;
  } finally {
    await pool.close();
  }
  return now() - t;
}

// ------------------------------------------------------------------------- build children

/** What a build child reports. */
export interface BuildResult {
  size: number;
  appended: number;
  seconds: number;
  rss: number;
  heapUsed: number;
  external: number;
  rssAnon?: number;
  /** File-backed RSS: pages of LevelDB's memory-mapped tables (page cache the kernel can reclaim). */
  rssFile?: number;
  cpuSeconds: number;
  /** After `proofs` random inclusion proofs (with their entries read, as a server answers them) following the appends. */
  afterProofs?: { proofs: number; rss: number; rssAnon?: number; rssFile?: number; heapUsed: number };
}

/** RssAnon or RssFile (Linux, /proc/self/status) in bytes. */
function rssPart(k: 'RssAnon' | 'RssFile'): number | undefined {
  try {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** RSS, its parts and heapUsed after three gc passes. */
async function settledMemory(): Promise<{ rss: number; rssAnon?: number; rssFile?: number; heapUsed: number; external: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, rssAnon: rssPart('RssAnon'), rssFile: rssPart('RssFile') };
}

/**
 * Child process body: create or extend the ledger in dir to target, report memory after gc;
 * then, if proofs > 0, answer that many random inclusion proofs (each with its entry read)
 * and report memory again: what a process serving proofs holds (LevelDB's open tables and
 * their mapped pages, the kernel's tree caches).
 */
async function buildChild(dir: string, target: number, workers: number, proofs = 0): Promise<void> {
  const exists = fs.existsSync(path.join(dir, 'CURRENT'));
  const ledger = await Ledger.open({ dir, origin: ORIGIN, operator: exists ? undefined : Identity.fromSeed(seedOf(-1)).did });
  const start = ledger.size;
  const cpu0 = process.cpuUsage();
  const seconds = await bulkGrow(ledger, target, workers, (s, rate) => log(`build ${path.basename(dir)}: ${s} entries, ${Math.round(rate)}/s`));
  const cpu = process.cpuUsage(cpu0);
  const m = await settledMemory();
  const result: BuildResult = {
    size: ledger.size,
    appended: ledger.size - start,
    seconds,
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    rssAnon: m.rssAnon,
    rssFile: m.rssFile,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  if (proofs > 0) {
    const rnd = prng(4242);
    for (let i = 0; i < proofs; i++) {
      const index = Math.floor(rnd() * ledger.size);
      await ledger.inclusionProof(index);
      await ledger.get(index);
    }
    const p = await settledMemory();
    result.afterProofs = { proofs, rss: p.rss, rssAnon: p.rssAnon, rssFile: p.rssFile, heapUsed: p.heapUsed };
  }
  await ledger.close();
  process.send?.(result);
}

/** Run a build child (node --expose-gc), which then answers `proofs` random proofs; resolves with its report. */
export function runBuild(dir: string, target: number, workers = 2, proofs = 0): Promise<BuildResult> {
  return new Promise((resolve, reject) => {
    const child = child_process.fork(__filename, ['--build', dir, String(target), String(workers), String(proofs)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let result: BuildResult | undefined;
    child.on('message', (m) => (result = m as BuildResult));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`scale build of ${dir} exited with ${code}`))));
  });
}

// ------------------------------------------------------------------------------ measuring

/** Bytes under a directory. */
function duBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? duBytes(p) : fs.statSync(p).size;
  }
  return n;
}

/** Append a window of pre-signed entries (CALLERS callers); entries/s and CPU µs per append. */
async function windowRate(ledger: Ledger, window: number, first: number): Promise<{ rate: number; cpuUs: number }> {
  const lists = signSpread(makeSigners(CALLERS, first), window);
  const cpu0 = process.cpuUsage();
  const sec = await appendCallers(ledger, lists);
  const cpu = process.cpuUsage(cpu0);
  return { rate: window / sec, cpuUs: (cpu.user + cpu.system) / window };
}

/**
 * Inclusion proofs of random indices: wall and CPU µs per proof (CPU time is what a loaded
 * machine distorts least). `warm` skips the first 4× proofs after the open untimed: LevelDB
 * opens a table file at its first read (1,350 files at 10M entries), so the first proofs
 * after an open of a large ledger pay for opening them.
 */
async function proofCost(ledger: Ledger, proofs: number, rnd: () => number, warm: boolean): Promise<{ us: number; cpuUs: number }> {
  const size = ledger.size;
  const pick = (): number => Math.floor(rnd() * size);
  for (let i = 0; i < (warm ? 4 * proofs : 200); i++) await ledger.inclusionProof(pick()); // warm-up, untimed
  const idx = Array.from({ length: proofs }, pick);
  const out: Hash[][] = new Array(idx.length);
  const cpu0 = process.cpuUsage();
  const t = now();
  for (let i = 0; i < idx.length; i++) out[i] = await ledger.inclusionProof(idx[i]);
  const us = ((now() - t) / idx.length) * 1e6;
  const cpu = process.cpuUsage(cpu0);
  const root = ledger.root();
  for (let i = 0; i < idx.length; i++) verifyInclusion(idx[i], size, (await ledger.get(idx[i])).leafHash, out[i], root);
  return { us, cpuUs: (cpu.user + cpu.system) / idx.length };
}

/** Proofs in one timed batch of the interleaved measurement. */
const PROOF_BATCH = 100;

/** The q-quantile (0…1) of xs, the nearest rank below. */
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Interleaved proof figures of one ledger (wall µs per proof over batches of PROOF_BATCH). */
export interface InterleavedProofs {
  /** Random indices, each entry read after its proof (untimed), as a server answers: 10th percentile and median of the batches. */
  randomP10Us: number;
  randomMedianUs: number;
  /** The same PROOF_BATCH indices proven again and again, every record in the ledger's caches: the computation alone. */
  cachedMinUs: number;
  cachedP10Us: number;
}

/**
 * Proofs on all the ledgers open at once, a batch of each in turn, so that the load of a
 * shared machine falls on every size alike (the rounds above measure one size after the
 * other, seconds apart): `batches` batches of random proofs per ledger after a warm-up,
 * then `batches` of cached ones (one set of PROOF_BATCH indices per ledger, proven once
 * untimed first, then again in every batch: no LevelDB read).
 */
async function interleavedProofs(ledgers: Ledger[], rnd: () => number, batches: number): Promise<InterleavedProofs[]> {
  const pick = (l: Ledger): number => Math.floor(rnd() * l.size);
  for (const l of ledgers)
    for (let i = 0; i < 4000; i++) {
      const x = pick(l);
      await l.inclusionProof(x);
      await l.get(x);
    }
  const random = ledgers.map(() => [] as number[]);
  for (let b = 0; b < batches; b++)
    for (let k = 0; k < ledgers.length; k++) {
      const l = ledgers[k];
      let sec = 0;
      for (let i = 0; i < PROOF_BATCH; i++) {
        const x = pick(l);
        const t = now();
        await l.inclusionProof(x);
        sec += now() - t;
        await l.get(x);
      }
      random[k].push((sec / PROOF_BATCH) * 1e6);
    }
  // One set per ledger: its PROOF_BATCH chunks and tiles fit the ledger's caches (256 chunks, 1,024 + 256 tiles).
  const sets = ledgers.map((l) => Array.from({ length: PROOF_BATCH }, () => pick(l)));
  for (let k = 0; k < ledgers.length; k++) for (const x of sets[k]) await ledgers[k].inclusionProof(x); // fills the caches, untimed
  const cached = ledgers.map(() => [] as number[]);
  for (let b = 0; b < batches; b++)
    for (let k = 0; k < ledgers.length; k++) {
      const set = sets[k];
      const t = now();
      for (const x of set) await ledgers[k].inclusionProof(x);
      cached[k].push(((now() - t) / PROOF_BATCH) * 1e6);
    }
  return ledgers.map((_, k) => ({
    randomP10Us: round(quantile(random[k], 0.1), 1),
    randomMedianUs: round(quantile(random[k], 0.5), 1),
    cachedMinUs: round(Math.min(...cached[k]), 1),
    cachedP10Us: round(quantile(cached[k], 0.1), 1),
  }));
}

/** CPU µs per entry of auditLedger inline (every signature and the whole tree, one core). */
async function verifyCpu(dir: string): Promise<{ entries: number; cpuUs: number; ok: boolean }> {
  const ledger = await Ledger.open({ dir, create: false });
  try {
    const cpu0 = process.cpuUsage();
    const r = await auditLedger(ledger, { workers: 0 });
    const cpu = process.cpuUsage(cpu0);
    return { entries: ledger.size, cpuUs: (cpu.user + cpu.system) / ledger.size, ok: r.ok };
  } finally {
    await ledger.close();
  }
}

/** Parameters of the scale mode. */
export interface ScaleParams {
  sizes: number[];
  proofs: number;
  window: number;
  memWindow: number;
  /** Random inclusion proofs the memory child answers after its appends (memory of a proof server). */
  memProofs: number;
  /** Batches of 100 proofs per ledger in the interleaved measurement (random, then cached). */
  interleavedBatches: number;
  rounds: number;
  cache: string;
}

/** The default parameters; BOT_SCALE_SIZES (comma-separated) and BOT_BENCH_CACHE override them. */
export function scaleParams(): ScaleParams {
  const sizes = (process.env.BOT_SCALE_SIZES ?? '10000,1000000,10000000').split(',').map(Number);
  return {
    sizes: sizes.sort((a, b) => a - b),
    proofs: 2000,
    window: 10_000,
    memWindow: 20_000,
    memProofs: 20_000,
    interleavedBatches: 150,
    rounds: 3,
    cache: process.env.BOT_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'bot-bench', 'scale'),
  };
}

const mib = (x: number | undefined): number | null => (x === undefined ? null : round(x / 2 ** 20, 1));

function memOf(b: BuildResult): Record<string, unknown> {
  return {
    size: b.size,
    appended: b.appended,
    rssMiB: mib(b.rss),
    rssAnonMiB: mib(b.rssAnon),
    rssFileMiB: mib(b.rssFile),
    heapUsedMiB: mib(b.heapUsed),
    externalMiB: mib(b.external),
    ...(b.afterProofs
      ? {
          afterProofs: {
            proofs: b.afterProofs.proofs,
            rssMiB: mib(b.afterProofs.rss),
            rssAnonMiB: mib(b.afterProofs.rssAnon),
            rssFileMiB: mib(b.afterProofs.rssFile),
            heapUsedMiB: mib(b.afterProofs.heapUsed),
          },
        }
      : {}),
  };
}

/** Run the scale figures; returns the JSON object bench/run.ts prints. */
export async function benchScaleMode(P: ScaleParams = scaleParams()): Promise<Record<string, unknown>> {
  const started = now();
  fs.mkdirSync(P.cache, { recursive: true });
  const scratch: string[] = [];
  const copyOf = (dir: string, tag: string): string => {
    const d = tmpDir(tag);
    scratch.push(d);
    fs.cpSync(dir, d, { recursive: true });
    return d;
  };
  try {
    const sizes = P.sizes;
    const lo = sizes[0],
      hi = sizes[sizes.length - 1];
    const dirs: Record<number, string> = {};
    const builds: Record<number, Record<string, unknown>> = {};
    for (const n of sizes) {
      const dir = path.join(P.cache, `ledger-${n}`);
      dirs[n] = dir;
      // The smallest is built from empty every run: its build child is the memory baseline.
      if (n === lo) rmDir(dir);
      const existed = fs.existsSync(path.join(dir, 'CURRENT'));
      log(`scale: ${existed ? 'extending the cached' : 'building a'} ${n}-entry ledger in ${dir}`);
      const b = await runBuild(dir, n);
      const record = {
        ...memOf(b),
        seconds: round(b.seconds, 1),
        perSecond: b.appended ? round(b.appended / b.seconds) : null,
        cpuUsPerEntry: b.appended ? round((b.cpuSeconds * 1e6) / b.appended, 1) : null,
        fromEmpty: b.appended === b.size,
        at: new Date().toISOString(),
      };
      const file = path.join(P.cache, `build-${n}.json`);
      if (record.fromEmpty) fs.writeFileSync(file, JSON.stringify(record));
      builds[n] = fs.existsSync(file) ? { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>), thisRun: record } : { thisRun: record };
      log(`scale: ${b.size} entries (${b.appended} appended in ${b.seconds.toFixed(1)} s), RSS ${(b.rss / 2 ** 20).toFixed(1)} MiB`);
    }

    const rnd = prng(6962);
    const proof: Record<number, number[]> = {},
      proofCpu: Record<number, number[]> = {},
      proofWarm: Record<number, number[]> = {},
      proofWarmCpu: Record<number, number[]> = {},
      rate: Record<number, number[]> = {},
      cpuAppend: Record<number, number[]> = {},
      openSeconds: Record<number, number[]> = {};
    for (let r = 0; r < P.rounds; r++) {
      for (const n of sizes) {
        // The smallest ledger takes its appends in a fresh copy each round (so it stays at its size);
        // the cached large ones grow by a window a round, which is negligible at their size.
        const dir = n === lo ? copyOf(dirs[n], 'scale-small') : dirs[n];
        const t = now();
        const ledger = await Ledger.open({ dir, create: false });
        (openSeconds[n] ??= []).push(now() - t); // the first open of a cached ledger written before tiles builds them
        const p = await proofCost(ledger, P.proofs, rnd, false);
        (proof[n] ??= []).push(p.us);
        (proofCpu[n] ??= []).push(p.cpuUs);
        const pw = await proofCost(ledger, P.proofs, rnd, true);
        (proofWarm[n] ??= []).push(pw.us);
        (proofWarmCpu[n] ??= []).push(pw.cpuUs);
        const w = await windowRate(ledger, P.window, 1_000_000 + r * CALLERS);
        (rate[n] ??= []).push(w.rate);
        (cpuAppend[n] ??= []).push(w.cpuUs);
        await ledger.close();
        log(
          `scale round ${r + 1}, ${n}: proof ${p.us.toFixed(1)} µs (${p.cpuUs.toFixed(1)} CPU µs) after open, ${pw.us.toFixed(1)} µs (${pw.cpuUs.toFixed(1)}) warm, append ${Math.round(w.rate)}/s (${w.cpuUs.toFixed(1)} CPU µs each)`,
        );
      }
    }

    // Proofs again, all sizes open at once and measured in turn, batch by batch.
    const open = await Promise.all(sizes.map((n) => Ledger.open({ dir: dirs[n], create: false })));
    let inter: InterleavedProofs[];
    try {
      inter = await interleavedProofs(open, rnd, P.interleavedBatches);
    } finally {
      for (const l of open) await l.close();
    }
    sizes.forEach((n, k) =>
      log(
        `scale proofs interleaved, ${n}: random p10 ${inter[k].randomP10Us} µs (median ${inter[k].randomMedianUs}), cached min ${inter[k].cachedMinUs} µs (p10 ${inter[k].cachedP10Us})`,
      ),
    );

    // Memory, like for like every run: a child opens each ledger and bulk-appends memWindow entries.
    const extend: Record<number, BuildResult> = {};
    for (const n of sizes) {
      const dir = n === lo ? copyOf(dirs[n], 'scale-mem') : dirs[n];
      const size = (await Ledger.open({ dir, create: false }).then(async (l) => [l.size, await l.close()]))[0] as number;
      extend[n] = await runBuild(dir, size + P.memWindow, 2, P.memProofs);
      const after = extend[n].afterProofs;
      log(
        `scale memory: a child that opened ${size} entries and appended ${P.memWindow}: RSS ${(extend[n].rss / 2 ** 20).toFixed(1)} MiB` +
          (after ? `; after ${after.proofs} proofs ${(after.rss / 2 ** 20).toFixed(1)} MiB` : ''),
      );
    }

    const verify = await verifyCpu(dirs[lo]);
    const rows = [];
    for (const n of sizes) {
      const l = await Ledger.open({ dir: dirs[n], create: false });
      const size = l.size;
      await l.close();
      const bytes = duBytes(dirs[n]);
      rows.push({
        size,
        proofUs: round(median(proof[n]), 1),
        proofCpuUs: round(median(proofCpu[n]), 1),
        proofWarmUs: round(median(proofWarm[n]), 1),
        proofWarmCpuUs: round(median(proofWarmCpu[n]), 1),
        proofInterleaved: inter[sizes.indexOf(n)],
        appendPerSecond: round(median(rate[n])),
        cpuUsPerAppend: round(median(cpuAppend[n]), 1),
        bytesPerEntry: round(bytes / size, 1),
        bytesOnDisk: bytes,
        openSeconds: openSeconds[n].map((x) => round(x, 2)),
        memoryAfterAppending: memOf(extend[n]),
        build: builds[n],
        rounds: {
          proofUs: proof[n].map((x) => round(x, 1)),
          proofCpuUs: proofCpu[n].map((x) => round(x, 1)),
          proofWarmUs: proofWarm[n].map((x) => round(x, 1)),
          proofWarmCpuUs: proofWarmCpu[n].map((x) => round(x, 1)),
          appendPerSecond: rate[n].map((x) => round(x)),
        },
      });
    }
    const ratio = (a: number, b: number): number => round(a / b, 3);
    const bHi = builds[hi] as { rssMiB?: number; fromEmpty?: boolean },
      bLo = builds[lo] as { rssMiB?: number };
    return {
      sizes: rows,
      goals: {
        proof: {
          afterOpen: { wall: ratio(median(proof[hi]), median(proof[lo])), cpu: ratio(median(proofCpu[hi]), median(proofCpu[lo])) },
          warm: { wall: ratio(median(proofWarm[hi]), median(proofWarm[lo])), cpu: ratio(median(proofWarmCpu[hi]), median(proofWarmCpu[lo])) },
          interleaved: {
            randomP10: ratio(inter[sizes.length - 1].randomP10Us, inter[0].randomP10Us),
            randomMedian: ratio(inter[sizes.length - 1].randomMedianUs, inter[0].randomMedianUs),
            cachedMin: ratio(inter[sizes.length - 1].cachedMinUs, inter[0].cachedMinUs),
          },
          target: '<= 2',
          sizes: [hi, lo],
        },
        append: { value: ratio(median(rate[hi]), median(rate[lo])), target: '>= 0.8', sizes: [hi, lo] },
        memory: {
          afterAppending: ratio(extend[hi].rss, extend[lo].rss),
          afterAppendingAnon: extend[hi].rssAnon && extend[lo].rssAnon ? ratio(extend[hi].rssAnon, extend[lo].rssAnon) : null,
          afterProofs: extend[hi].afterProofs && extend[lo].afterProofs ? ratio(extend[hi].afterProofs.rss, extend[lo].afterProofs.rss) : null,
          afterProofsAnon:
            extend[hi].afterProofs?.rssAnon && extend[lo].afterProofs?.rssAnon ? ratio(extend[hi].afterProofs.rssAnon, extend[lo].afterProofs.rssAnon) : null,
          builtFromEmpty: bHi.fromEmpty && bHi.rssMiB && bLo.rssMiB ? ratio(bHi.rssMiB, bLo.rssMiB) : null,
          target: '<= 1.2',
          sizes: [hi, lo],
        },
      },
      verify: {
        entries: verify.entries,
        cpuUsPerEntry: round(verify.cpuUs, 1),
        ok: verify.ok,
        how: 'auditLedger {workers: 0}: every signature and the tree, one core',
      },
      params: { ...P, signers: SIGNERS, group: GROUP, callers: CALLERS },
      seconds: round(now() - started, 1),
    };
  } finally {
    for (const d of scratch) rmDir(d);
  }
}

if (isMainThread && process.argv[2] === '--build') {
  const [dir, target, workers, proofs] = process.argv.slice(3);
  buildChild(dir, Number(target), Number(workers), Number(proofs ?? 0)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`scale build failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

// `node dist/bench/scale.js`: only these figures (no consortia), the JSON on stdout, progress on stderr.
if (isMainThread && require.main === module && process.argv[2] !== '--build') {
  const load = os.loadavg().map((x) => round(x, 2));
  log(`scale alone; load ${load.join(' ')}`);
  benchScaleMode().then(
    (r) => process.stdout.write(JSON.stringify({ ...r, loadAverage: { start: load, end: os.loadavg().map((x) => round(x, 2)) } }, null, 2) + '\n'),
    (err: unknown) => {
      process.stderr.write(`scale failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
