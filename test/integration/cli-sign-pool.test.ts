/**
 * `bot-ledger append` with its signing pool (lib/format/sign-pool.ts), as a separate process:
 * a bulk input is signed on worker threads, receipted in input order, and the ledger passes
 * `bot-ledger verify`; a bad line in the middle of a burst stops the append exactly there.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Ledger } from '../../lib';
import { tmpDir } from '../helpers';

const CLI = path.resolve(__dirname, '../../bin/bot-ledger.js');
const ORIGIN = 'example.com/cli-sign-pool';

function run(args: string[], input = ''): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.BOT_LEDGER_KEY_FILE;
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const lines = (n: number, from = 0): string =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ device: (from + i) % 7, n: from + i, t: 20.5 })).join('\n') + '\n';

describe('bot-ledger append with the signing pool', function () {
  this.timeout(30000);
  let t: ReturnType<typeof tmpDir>;
  let keyFile: string;
  before(async () => {
    t = tmpDir('bot-cli-pool-');
    keyFile = path.join(t.dir, 'operator.key');
    assert.equal((await run(['keygen', '--out', keyFile])).status, 0);
  });
  after(() => t.cleanup());

  it('appends a bulk input on the workers, receipts in order, and the ledger verifies', async () => {
    const dir = path.join(t.dir, 'bulk');
    const r = await run(['append', dir, '--key', keyFile, '--origin', ORIGIN, '--workers', '2'], lines(3000));
    assert.equal(r.status, 0, r.stderr);
    const receipts = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; treeSize: number });
    assert.deepEqual(
      receipts.map((x) => x.index),
      Array.from({ length: 3000 }, (_, i) => i),
    );
    // A second run continues the seqs, inline (--workers 0).
    const r2 = await run(['append', dir, '--key', keyFile, '--workers', '0'], lines(5, 3000));
    assert.equal(r2.status, 0, r2.stderr);
    const v = await run(['verify', dir]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.equal((JSON.parse(v.stdout) as { ok: boolean; size: number }).size, 3005);
    const led = await Ledger.open({ dir, create: false });
    try {
      const e = await led.get(2999);
      assert.deepEqual((JSON.parse(e.leaf.toString()) as { payload: unknown }).payload, { device: 2999 % 7, n: 2999, t: 20.5 });
    } finally {
      await led.close();
    }
  });

  it('stops at a bad line in the middle of a burst: the lines before it are appended and verify', async () => {
    const dir = path.join(t.dir, 'bad');
    const r = await run(['append', dir, '--key', keyFile, '--origin', ORIGIN], lines(1500) + '{not json\n' + lines(500, 1500));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^bot-ledger: stdin line 1501: not a JSON value .*; stopped after 1500 entries\n$/);
    assert.equal(r.stdout.trim().split('\n').length, 1500);
    const v = await run(['verify', dir]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.equal((JSON.parse(v.stdout) as { size: number }).size, 1500);
  });

  it('refuses a --workers that is not a whole number from 0 to 64', async () => {
    const r = await run(['append', path.join(t.dir, 'x'), '--key', keyFile, '--origin', ORIGIN, '--workers', 'many'], '1\n');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--workers must be a whole number/);
  });
});
