/**
 * Folders the package creates (lib/store/folders.ts): a path on a kernel pseudo-filesystem or
 * through a file is refused at once with E_STORE — never Node's recursive mkdir, which spins
 * forever under /proc — and a normal nested path is created level by level.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isBotError } from '../../lib/errors';
import { checkFolder, createFolder } from '../../lib/store/folders';
import { Identity } from '../../lib/format/identity';
import { Ledger } from '../../lib/store/ledger';
import { tmpDir } from '../helpers';

describe('folders the package creates (lib/store/folders.ts)', () => {
  let t: ReturnType<typeof tmpDir>;
  beforeEach(() => {
    t = tmpDir('bot-folders-');
  });
  afterEach(() => t.cleanup());

  it('refuses folders on /proc and /sys at once with E_STORE naming the filesystem', () => {
    for (const [dir, fsName] of [
      ['/proc/bot-ledger-test/a/b', 'procfs'],
      ['/sys/bot-ledger-test', 'sysfs'],
    ] as const) {
      if (!fs.existsSync(`/${dir.split('/')[1]}`)) continue; // not Linux
      const t0 = Date.now();
      assert.throws(
        () => createFolder(dir, 'a ledger'),
        (e: unknown) => isBotError(e, 'E_STORE') && e.message.includes(fsName),
      );
      assert.ok(Date.now() - t0 < 1000);
      assert.equal(fs.existsSync(dir), false);
    }
  });

  it('refuses a path through a file, and creates a nested folder level by level', () => {
    const file = path.join(t.dir, 'file');
    fs.writeFileSync(file, 'x');
    assert.throws(
      () => checkFolder(path.join(file, 'ledger'), 'a ledger'),
      (e: unknown) => isBotError(e, 'E_STORE') && /not a folder/.test(e.message),
    );
    const nested = path.join(t.dir, 'a', 'b', 'c');
    createFolder(nested, 'a ledger', 0o700);
    assert.ok(fs.statSync(nested).isDirectory());
    assert.equal(fs.statSync(nested).mode & 0o777, 0o700);
    createFolder(nested, 'a ledger'); // idempotent
  });

  it('Ledger.open of a folder under /proc rejects with E_STORE instead of hanging', async () => {
    const t0 = Date.now();
    await assert.rejects(Ledger.open({ dir: '/proc/bot-ledger-test/l', origin: 'example.com/x', identity: Identity.generate() }), (e: unknown) =>
      isBotError(e, 'E_STORE'),
    );
    assert.ok(Date.now() - t0 < 2000);
  });
});
