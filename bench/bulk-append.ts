/**
 * Bulk append benchmark (GitHub issue 15, "Both cores"): `bot-ledger append` (bin/cli.ts main,
 * in this process) reading N sensor readings, one JSON line each, from a stdin stream in 64 KiB
 * chunks, signing each as an envelope and appending it durably (receipts written to a sink), in
 * entries/s, with its signing pool (default: available parallelism − 1 worker threads) and
 * with `--workers 0` (every signature inline, `poolOff`). Peer: hypercore doing the same
 * signing and appending on one thread: each line JSON.parse'd and signed with signEnvelope,
 * the leaf bytes appended in batches of 100 (await core.append(batch); hypercore signs its own
 * tree too). Alternated rounds, medians. Goal: ratio >= 1.5.
 *
 *   node dist/bench/bulk-append.js [--short]     (only these figures, one JSON object)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { main } from '../bin/cli';
import { Identity, signEnvelope } from '../lib/index';
import { type Figure, log, median, now, ORIGIN, reading, rmDir, round, tmpDir } from './common';

interface HypercoreLike {
  ready(): Promise<void>;
  append(blocks: Buffer | Buffer[]): Promise<{ length: number }>;
  close(): Promise<void>;
  readonly length: number;
}
const Hypercore = require('hypercore') as new (dir: string) => HypercoreLike;

/** The input: n JSON lines of ~150-byte readings, cut in 64 KiB chunks as a pipe delivers them. */
function input(n: number): Buffer[] {
  const all = Buffer.from(Array.from({ length: n }, (_, i) => JSON.stringify(reading(i % 64, i))).join('\n') + '\n', 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < all.length; i += 65536) chunks.push(all.subarray(i, i + 65536));
  return chunks;
}

/** CPU ms used so far by this process's main thread (Linux /proc; NaN elsewhere): independent of how loaded the machine is. */
function mainThreadCpuMs(): number {
  try {
    const f = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return NaN;
  }
}

/** CPU µs per entry of the last CLI runs, by variant: the main thread's and the whole process's. */
const cpu: Record<'on' | 'off', { main: number[]; total: number[] }> = { on: { main: [], total: [] }, off: { main: [], total: [] } };

/** One CLI run into a fresh ledger: entries/s. */
async function cliRun(chunks: Buffer[], n: number, keyFile: string, workers?: number): Promise<number> {
  const dir = tmpDir('bulk-cli');
  let receipts = 0;
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const b of chunk) if (b === 0x0a) receipts++;
      cb();
    },
  });
  let err = '';
  const stderr = new Writable({
    write(chunk: Buffer, _enc, cb) {
      err += chunk.toString();
      cb();
    },
  });
  const args = ['append', path.join(dir, 'ledger'), '--key', keyFile, '--origin', ORIGIN];
  if (workers !== undefined) args.push('--workers', String(workers));
  const t = now();
  const m0 = mainThreadCpuMs();
  const c0 = process.cpuUsage();
  const status = await main(args, { stdin: Readable.from(chunks), stdout, stderr, env: {} });
  const sec = now() - t;
  const c1 = process.cpuUsage(c0);
  const v = cpu[workers === 0 ? 'off' : 'on'];
  v.main.push(((mainThreadCpuMs() - m0) * 1000) / n);
  v.total.push((c1.user + c1.system) / n);
  rmDir(dir);
  if (status !== 0 || receipts !== n) throw new Error(`bulk append: status ${status}, ${receipts} receipts of ${n}: ${err}`);
  return n / sec;
}

/** The peer: parse, sign and append the same lines to hypercore in batches of 100: entries/s. */
async function hypercoreRun(chunks: Buffer[], n: number, id: Identity): Promise<number> {
  const dir = tmpDir('bulk-hypercore');
  const core = new Hypercore(dir);
  await core.ready();
  const t = now();
  let seq = 0;
  let batch: Buffer[] = [];
  let carry = '';
  for (const c of chunks) {
    const text = carry + c.toString('utf8');
    const lines = text.split('\n');
    carry = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') continue;
      batch.push(signEnvelope(id, { kind: 'reading', seq: seq++, ts: Date.now(), payload: JSON.parse(line) as { [k: string]: string | number } }).bytes);
      if (batch.length === 100) {
        await core.append(batch);
        batch = [];
      }
    }
  }
  if (batch.length > 0) await core.append(batch);
  const sec = now() - t;
  const length = core.length;
  await core.close();
  rmDir(dir);
  if (length !== n) throw new Error(`bulk append: hypercore holds ${length}, expected ${n}`);
  return n / sec;
}

/** Bulk CLI append (pool on, pool off) against hypercore signing and appending, alternated rounds. */
export async function benchBulkAppend(n: number, rounds: number): Promise<Figure> {
  for (const v of Object.values(cpu)) v.main.length = v.total.length = 0;
  const keyDir = tmpDir('bulk-key');
  try {
    const id = Identity.generate();
    const keyFile = path.join(keyDir, 'operator.pem');
    id.writeKeyFile(keyFile);
    const chunks = input(n);
    log(`bulk: ${rounds} rounds of ${n} lines through bot-ledger append (pool on | --workers 0) and hypercore with signEnvelope`);
    await cliRun(input(500), 500, keyFile); // warm-up, untimed
    await hypercoreRun(input(500), 500, id);
    const on: number[] = [],
      off: number[] = [],
      peer: number[] = [];
    for (let r = 0; r < rounds; r++) {
      on.push(await cliRun(chunks, n, keyFile));
      peer.push(await hypercoreRun(chunks, n, id));
      off.push(await cliRun(chunks, n, keyFile, 0));
      log(`bulk round ${r + 1}: CLI ${Math.round(on[r])}/s (pool), ${Math.round(off[r])}/s (--workers 0); hypercore + signEnvelope ${Math.round(peer[r])}/s`);
    }
    const v = median(on),
      p = median(peer),
      o = median(off);
    return {
      what: `bot-ledger append entries/s, ${n} JSON lines on stdin, signed (pool of ${Math.max(1, os.availableParallelism() - 1)} worker(s)) and durably appended`,
      peerWhat: 'hypercore: the same lines JSON.parse + signEnvelope, appended in batches of 100, one thread',
      unit: 'entries/s',
      value: round(v),
      peer: round(p),
      ratio: round(v / p, 3),
      target: 'ratio >= 1.5',
      meetsTarget: v / p >= 1.5,
      rounds: { value: on.map((x) => round(x)), peer: peer.map((x) => round(x)) },
      entries: n,
      poolOff: { what: 'bot-ledger append --workers 0 (every signature inline)', value: round(o), ratio: round(o / p, 3), rounds: off.map((x) => round(x)) },
      // CPU µs per entry (medians; the first of each variant is the warm-up's): what a quiet machine's throughput follows.
      cpuMicrosPerEntry: {
        pool: { mainThread: round(median(cpu.on.main.slice(1)), 1), allThreads: round(median(cpu.on.total.slice(1)), 1) },
        poolOff: { mainThread: round(median(cpu.off.main), 1), allThreads: round(median(cpu.off.total), 1) },
      },
    };
  } finally {
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const short = process.argv.includes('--short');
  const loadAverage = os.loadavg();
  const t = now();
  benchBulkAppend(short ? 5000 : 20000, short ? 3 : 5).then(
    (bulk) => {
      console.log(
        JSON.stringify(
          { bench: 'bulk-append', mode: short ? 'short' : 'full', loadAverage, bulk, loadAverageAtEnd: os.loadavg(), seconds: round(now() - t, 1) },
          null,
          2,
        ),
      );
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
