import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Identity } from '../../lib/format/identity';
import { forgetSharedSequences, SequenceCounter, sequenceFile, sharedSequence } from '../../lib/store/sequence';
import { tmpDir } from '../helpers';

describe('lib/sequence: persistent seq counters', () => {
  let t: { dir: string; cleanup: () => void };
  const did = Identity.generate().did;
  beforeEach(() => {
    t = tmpDir('bot-seq-');
  });
  afterEach(() => {
    forgetSharedSequences();
    t.cleanup();
  });

  it('starts at 0, reserves a block durably before handing out seqs, files are 0600 in a 0700 dir', () => {
    const dir = path.join(t.dir, 'bot-seq');
    const c = new SequenceCounter(dir, did, { reserve: 10 });
    assert.equal(fs.existsSync(dir), false, 'nothing is written before the first seq');
    assert.equal(c.next(), 0);
    const file = sequenceFile(dir, did);
    assert.match(path.basename(file), /^[0-9a-f]{64}\.json$/);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { v: 1, did, next: 10 });
    if (process.platform !== 'win32') {
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    }
    for (let i = 1; i < 10; i++) assert.equal(c.next(), i);
    assert.equal(c.reserved, 10);
    assert.equal(c.next(), 10);
    assert.equal(c.reserved, 20);
    assert.deepEqual(fs.readdirSync(dir), [path.basename(file)], 'no temp file is left behind');
  });

  it('never reuses a seq after a restart or a crash (gaps are fine)', () => {
    const seen = new Set<number>();
    let last = -1;
    for (let restart = 0; restart < 5; restart++) {
      const c = new SequenceCounter(t.dir, did, { reserve: 7 });
      for (let i = 0; i < restart * 3 + 1; i++) {
        const s = c.next();
        assert.ok(s > last, `seq ${s} after ${last}`);
        assert.ok(!seen.has(s));
        seen.add(s);
        last = s;
      }
      // "crash": the instance is dropped without any shutdown step
    }
  });

  it('refuses a corrupt or foreign counter file instead of starting again from 0', () => {
    const file = sequenceFile(t.dir, did);
    fs.writeFileSync(file, '{"v":1,');
    assert.throws(
      () => new SequenceCounter(t.dir, did),
      (e: Error & { code?: string }) => e.code === 'E_CORRUPT',
    );
    fs.writeFileSync(file, JSON.stringify({ v: 1, did: Identity.generate().did, next: 5 }));
    assert.throws(
      () => new SequenceCounter(t.dir, did),
      (e: Error & { code?: string }) => e.code === 'E_CORRUPT',
    );
    fs.writeFileSync(file, JSON.stringify({ v: 1, did, next: -1 }));
    assert.throws(
      () => new SequenceCounter(t.dir, did),
      (e: Error & { code?: string }) => e.code === 'E_CORRUPT',
    );
  });

  it('reports a write failure as E_STORE and succeeds once the directory is writable again', () => {
    const dir = path.join(t.dir, 'blocked');
    const c = new SequenceCounter(dir, did, { reserve: 3 });
    fs.writeFileSync(dir, 'a file where the directory should be');
    assert.throws(
      () => c.next(),
      (e: Error & { code?: string }) => e.code === 'E_STORE',
    );
    fs.rmSync(dir);
    assert.equal(c.next(), 0, 'a failed reservation hands out nothing');
    assert.equal(c.reserved, 3);
  });

  it('shares one counter per did and directory within the process', () => {
    const a = sharedSequence(t.dir, did);
    const b = sharedSequence(t.dir, did);
    assert.equal(a, b);
    const other = sharedSequence(t.dir, Identity.generate().did);
    assert.notEqual(a, other);
    assert.equal(a.next(), 0);
    assert.equal(b.next(), 1);
    forgetSharedSequences();
    assert.equal(sharedSequence(t.dir, did).next(), 1000, 'after a restart the counter resumes above the reserved block');
  });
});
