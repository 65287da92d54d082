/**
 * Crash safety: `bot-ledger append` is SIGKILLed while stdin is fed as fast as it reads;
 * every entry whose receipt it printed must be in the reopened ledger, at its index, with
 * its leaf hash, the ledger must pass the full audit, and appending must go on.
 * A second case SIGKILLs a process that appends and signs checkpoints at once
 * (test/crash-child.ts): every checkpoint it gave out is stored after the crash, and no two
 * roots are ever signed at one size.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { auditLedger, Identity, Ledger, NoteVerifier, openNote, parseCheckpoint } from '../../lib';
import { Acks } from '../faults';
import { tmpDir } from '../helpers';

const CLI = path.resolve(__dirname, '../../bin/bot-ledger.js');
const ORIGIN = 'example.com/crash-test';

interface Receipt {
  index: number;
  leafHash: string;
  treeSize: number;
}
interface AppendRun {
  receipts: Receipt[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  written: number;
}

/**
 * Run `bot-ledger append`, writing payload lines into its stdin as fast as it takes them
 * (respecting backpressure), at most `lines` of them. When killAfter is set, SIGKILL the
 * child once that many receipts were read, after `delay` (0: at once; -1: next tick; n: n ms).
 * `paced` feeds 4 lines per millisecond instead, so that group commits stay small.
 */
function appendRun(dir: string, keyFile: string, opts: { lines: number; killAfter?: number; delay?: number; paced?: boolean }): Promise<AppendRun> {
  const child = spawn(process.execPath, [CLI, 'append', dir, '--key', keyFile, '--origin', ORIGIN, '--topic', 'plant/7/temp'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const receipts: Receipt[] = [];
  let stderr = '';
  let written = 0;
  let stop = false;
  let killed = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.on('error', () => {
    stop = true;
  }); // EPIPE once the child is gone
  const kill = (): void => {
    if (!killed) {
      killed = true;
      child.kill('SIGKILL');
    }
  };
  // A receipt is a complete line: SIGKILL may cut the last write short, leaving a partial
  // line at the end, which is no receipt.
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      receipts.push(JSON.parse(buffered.slice(0, nl)) as Receipt);
      buffered = buffered.slice(nl + 1);
      if (opts.killAfter !== undefined && receipts.length === opts.killAfter) {
        stop = true;
        const d = opts.delay ?? 0;
        if (d === 0) kill();
        else if (d < 0) process.nextTick(kill);
        else setTimeout(kill, d);
      }
    }
  });
  // The generator: batches of lines, as fast as the pipe drains.
  void (async () => {
    const pad = 'x'.repeat(40);
    while (!stop && written < opts.lines) {
      let chunk = '';
      const n = Math.min(opts.paced ? 4 : 256, opts.lines - written);
      for (let i = 0; i < n; i++, written++) chunk += `{"n":${written},"temp":${(20 + (written % 50) / 10).toFixed(1)},"pad":"${pad}"}\n`;
      if (!child.stdin.write(chunk)) {
        await Promise.race([once(child.stdin, 'drain'), once(child, 'exit')]).catch(() => undefined);
      }
      if (opts.paced) await new Promise((r) => setTimeout(r, 1));
    }
    if (!stop) child.stdin.end();
  })();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      stop = true;
      resolve({ receipts, status, signal, stderr, written });
    });
  });
}

/** Reopen the ledger, audit it (unless told not to), and check that every receipted entry is there, unchanged. */
async function checkDurable(dir: string, did: string, receipts: Receipt[], audit = true): Promise<number> {
  const led = await Ledger.open({ dir, create: false });
  try {
    if (audit) {
      const res = await auditLedger(led);
      assert.ok(res.ok, JSON.stringify(res));
    }
    const last = receipts[receipts.length - 1];
    assert.ok(led.size >= last.index + 1, `size ${led.size} lost receipted entry ${last.index}`);
    assert.ok(led.size >= last.treeSize);
    const byIndex = new Map(receipts.map((r) => [r.index, r.leafHash]));
    let seen = 0;
    for await (const e of led.entries(receipts[0].index, last.index + 1)) {
      const want = byIndex.get(e.index);
      if (want !== undefined) {
        assert.equal(e.leafHash.toString('base64'), want, `entry ${e.index} changed`);
        seen++;
      }
    }
    assert.equal(seen, receipts.length);
    // One signer whose seq started at 0 and went up by one per entry, across crashes.
    assert.equal(await led.lastSeq(did), led.size - 1);
    return led.size;
  } finally {
    await led.close();
  }
}

describe('crash: SIGKILL during bot-ledger append', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-crash-');
  });
  after(() => t.cleanup());

  it('loses no receipted entry, at three kill moments, and appends on after each crash', async () => {
    const keyFile = path.join(t.dir, 'operator.key');
    const op = Identity.generate();
    op.writeKeyFile(keyFile);
    const dir = path.join(t.dir, 'ledger');
    let size = 0;
    const moments = [
      // Fed as fast as it reads: group commits of thousands of entries.
      { killAfter: 2000, delay: 0 }, // the instant the 2000th receipt is read
      { killAfter: 3000, delay: 15 }, // 15 ms later
      // Fed at a pace: many small group commits, killed between or during them.
      { killAfter: 2000, delay: -1, paced: true }, // a tick after the 2000th receipt
    ];
    for (const [i, m] of moments.entries()) {
      const r = await appendRun(dir, keyFile, { lines: 1_000_000, ...m });
      assert.equal(r.signal, 'SIGKILL', `run ${i}: status ${r.status}, stderr ${r.stderr}`);
      assert.ok(r.receipts.length >= m.killAfter);
      // Receipts are in input order with consecutive indices, starting at the size before the run.
      r.receipts.forEach((rc, k) => assert.equal(rc.index, size + k));
      const after = await checkDurable(dir, op.did, r.receipts);
      if (process.env.CRASH_DEBUG)
        console.log(
          `run ${i}: ${r.written} lines written, ${r.receipts.length} receipts, ${after - size} entries durable, ${new Set(r.receipts.map((x) => x.treeSize)).size} commits receipted`,
        );
      assert.ok(after <= size + r.written, 'more entries than lines written');
      size = after;
      if (i === 0) {
        // A checkpoint signed after a crash covers the recovered tree.
        const led = await Ledger.open({ dir, create: false, identity: op });
        const cp = await led.checkpoint();
        await led.close();
        assert.ok(cp);
        const parsed = parseCheckpoint(openNote(cp.note, [NoteVerifier.ed25519(ORIGIN, op.publicKey)]).text);
        assert.equal(parsed.size, size);
      }
    }
    // After the last crash: a complete run, then the full audit again.
    const r = await appendRun(dir, keyFile, { lines: 500 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.receipts.length, 500);
    r.receipts.forEach((rc, k) => assert.equal(rc.index, size + k));
    assert.equal(await checkDurable(dir, op.did, r.receipts, false), size + 500);
    // The full audit, this time by `bot-ledger verify`.

    const verify = spawn(process.execPath, [CLI, 'verify', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    verify.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const [status] = (await once(verify, 'close')) as [number | null];
    assert.equal(status, 0, out);
    const res = JSON.parse(out) as { ok: boolean; size: number; checkpoints: number };
    assert.equal(res.ok, true);
    assert.equal(res.size, size + 500);
    assert.equal(res.checkpoints, 1);
  });
});

describe('crash: SIGKILL while appending and signing checkpoints', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  before(() => {
    t = tmpDir('bot-crash-cp-');
  });
  after(() => t.cleanup());

  /** Run the child until `killAt` receipts and at least one checkpoint were printed, then SIGKILL it after `delay` ms. */
  function childRun(
    args: string[],
    acks: Acks,
    killAt: number,
    delay: number,
  ): Promise<{ receipts: number; checkpoints: number; signal: NodeJS.Signals | null; stderr: string }> {
    const child = spawn(process.execPath, [path.resolve(__dirname, '../crash-child.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let receipts = 0,
      checkpoints = 0,
      stderr = '',
      buffered = '',
      killing = false;
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('r ')) {
          const [, index, leafHash] = line.split(' ');
          acks.receipt({ origin: ORIGIN, index: Number(index), leafHash, treeSize: 0 });
          receipts++;
        } else if (line.startsWith('c ')) {
          acks.note(JSON.parse(line.slice(2)) as string, true);
          checkpoints++;
        }
        if (!killing && receipts >= killAt && checkpoints > 0) {
          killing = true;
          setTimeout(() => child.kill('SIGKILL'), delay);
        }
      }
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 15000);
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (_status, signal) => {
        clearTimeout(guard);
        resolve({ receipts, checkpoints, signal, stderr });
      });
    });
  }

  it('keeps every receipted entry and every checkpoint given out, at random kill moments, never two roots at one size', async () => {
    const dir = path.join(t.dir, 'ledger');
    const op = Identity.generate();
    const dev = Identity.generate();
    const acks = new Acks();
    let nextSeq = 0;
    let total = 0;
    for (let round = 0; round < 4; round++) {
      const killAt = 50 + Math.floor(Math.random() * 600);
      const delay = Math.floor(Math.random() * 4);
      const what = `round ${round} (killed after ${killAt} receipts + ${delay} ms)`;
      const r = await childRun([dir, ORIGIN, op.exportSeed().toString('hex'), dev.exportSeed().toString('hex'), String(nextSeq)], acks, killAt, delay);
      assert.equal(r.signal, 'SIGKILL', `${what}: ${r.stderr}`);
      total += r.checkpoints;
      const l = await Ledger.open({ dir, create: false, identity: op });
      try {
        await acks.check(l, what, { audit: round === 3 }); // the full audit once, at the end
        nextSeq = (await l.lastSeq(dev.did)) + 1;
        assert.equal(nextSeq, l.size, `${what}: one device, seq 0, 1, 2, ... across crashes`);
      } finally {
        await l.close();
      }
    }
    assert.ok(total >= 4);
  });
});
