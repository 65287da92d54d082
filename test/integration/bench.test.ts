/**
 * Smoke test of the benchmark: `node dist/bench/run.js --short` runs to the end and prints
 * one JSON object holding every figure with numeric value, peer and ratio. Timings are
 * never asserted (machines are shared and noisy). Set BOT_SKIP_BENCH=1 to skip it.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as path from 'node:path';

const RUN = path.resolve(__dirname, '../../bench/run.js');

interface Fig {
  value: unknown;
  peer: unknown;
  ratio: unknown;
  [k: string]: unknown;
}

function assertFigure(name: string, f: unknown, withTarget = true): asserts f is Fig {
  assert.ok(f !== null && typeof f === 'object', `${name} is missing`);
  for (const k of ['value', 'peer', 'ratio'] as const) {
    const v: unknown = (f as Fig)[k];
    assert.equal(typeof v, 'number', `${name}.${k} is not a number`);
    assert.ok(Number.isFinite(v as number) && (v as number) > 0, `${name}.${k} is not a positive finite number: ${String(v)}`);
  }
  if (!withTarget) return;
  assert.equal(typeof (f as Fig).target, 'string', `${name}.target is missing`);
  assert.equal(typeof (f as Fig).meetsTarget, 'boolean', `${name}.meetsTarget is missing`);
}

describe('bench (short mode)', function () {
  this.timeout(240_000);

  it('prints one JSON object with every figure and its peer and ratio', async function () {
    if (process.env.BOT_SKIP_BENCH) this.skip();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [RUN, '--short'], { timeout: 220_000, maxBuffer: 16 * 2 ** 20 }, (err, out, errText) => {
        if (err) reject(new Error(`bench failed: ${err.message}\n${errText.slice(-4000)}`));
        else resolve(out);
      });
    });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(out.mode, 'short');
    const machine = out.machine as Record<string, unknown>;
    assert.equal(typeof machine.cpu, 'string');
    assert.equal(typeof machine.cpus, 'number');
    assert.equal(machine.node, process.version);

    for (const name of ['append', 'sign', 'audit', 'scale', 'memory', 'flow', 'devices']) assertFigure(name, out[name]);
    const audit = out.audit as Fig;
    assert.equal(typeof audit.workers, 'number');
    assert.equal(typeof audit.coresUsed, 'number');
    assert.equal(typeof audit.ratioPerCore, 'number');
    assertFigure('audit.inline', audit.inline, false);
    assertFigure('scale.proof', (out.scale as Fig).proof);
    assertFigure('memory.heapUsed', (out.memory as Fig).heapUsed);
    assertFigure('memory.build', (out.memory as Fig).build);
    const consensus = out.consensus as Record<string, unknown>;
    assert.ok(consensus !== null && typeof consensus === 'object', 'consensus is missing');
    assertFigure('consensus.latency', consensus.latency);
    assertFigure('consensus.throughput', consensus.throughput);
    assert.equal(typeof (consensus.latency as Fig).p99, 'number');
    assertFigure('partner', out.partner);
    assertFigure('partner.unverified', (out.partner as Fig).unverified, false);
  });
});
