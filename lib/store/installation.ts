/**
 * The id of one installation (a Node-RED user directory): 16 random hex characters kept in
 * a file beside the ledgers. Default ledger origins include it, so two installations that
 * import the same example flow (same node ids) still create ledgers with different origins
 * (docs/design.md "Nodes"). Not a secret. Pure TypeScript, no Node-RED import.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors';
import { createFolder } from './folders';

const cache = new Map<string, string>();

/** The installation id kept in `<dir>/installation-id`, created on first use (write-once: an existing id is never replaced). */
export function installationId(dir: string): string {
  const file = path.join(path.resolve(dir), 'installation-id');
  const known = cache.get(file);
  if (known) return known;
  let id: string | undefined;
  try {
    id = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError('E_STORE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (id === undefined) {
    createFolder(path.dirname(file), 'the installation id');
    const fresh = crypto.randomBytes(8).toString('hex');
    try {
      fs.writeFileSync(file, fresh + '\n', { flag: 'wx', mode: 0o644 });
      id = fresh;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError('E_STORE', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
      id = fs.readFileSync(file, 'utf8').trim(); // written by another process just now
    }
  }
  if (!/^[0-9a-f]{16}$/.test(id)) throw new StoreError('E_CORRUPT', `${file} does not hold an installation id (16 hex characters)`);
  cache.set(file, id);
  return id;
}
