/**
 * Memory child of the benchmark (forked by bench/run.ts with --expose-gc). Argument: JSON
 * { dir, create, target?, window? }. Opens (or creates) the ledger in dir, grows it to
 * target entries, then appends window more entries (signing as it goes, CALLERS concurrent
 * callers), runs the garbage collector and sends its memory figures to the parent while
 * the ledger is still open. Progress goes to stderr; stdout stays silent.
 */
import * as fs from 'node:fs';
import { Ledger } from '../lib/index';
import { createLedger, grow, log, now } from './common';

export interface MemArgs {
  dir: string;
  create: boolean;
  target?: number;
  window?: number;
  tag: string;
}
export interface MemResult {
  tag: string;
  size: number;
  appended: number;
  seconds: number;
  openSeconds: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  maxRss: number;
  /** Linux only (/proc/self/status): anonymous and file-backed (e.g. mmapped tables) RSS. */
  rssAnon?: number;
  rssFile?: number;
  gc: boolean;
}

/** RssAnon and RssFile in bytes, where /proc/self/status has them. */
function rssParts(): { rssAnon?: number; rssFile?: number } {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const kib = (k: string): number | undefined => {
      const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    return { rssAnon: kib('RssAnon'), rssFile: kib('RssFile') };
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as MemArgs;
  const t0 = now();
  const ledger = args.create ? await createLedger(args.dir) : await Ledger.open({ dir: args.dir, create: false });
  const openSeconds = now() - t0;
  const start = ledger.size;
  const t1 = now();
  if (args.target !== undefined && args.target > ledger.size) {
    await grow(ledger, args.target, (s) => log(`${args.tag}: ${s} entries, ${Math.round((s - start) / (now() - t1))}/s`));
  }
  if (args.window) await grow(ledger, ledger.size + args.window);
  const seconds = now() - t1;
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  const result: MemResult = {
    tag: args.tag,
    size: ledger.size,
    appended: ledger.size - start,
    seconds,
    openSeconds,
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    maxRss: process.resourceUsage().maxRSS * 1024,
    ...rssParts(),
    gc: gc !== undefined,
  };
  await ledger.close();
  await new Promise<void>((resolve, reject) => process.send?.(result, (err: Error | null) => (err ? reject(err) : resolve())) ?? resolve());
}

process.on('beforeExit', () => {
  process.stderr.write('mem-child failed: the event loop emptied before it finished (an operation never settled)\n');
  process.exit(1);
});
main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`mem-child failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
