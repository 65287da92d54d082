/**
 * Creating the folders the package writes to (a ledger, key files, seq counters) safely
 * (docs/design.md "Storage and durability").
 *
 * Node's recursive mkdir never returns for a path under a pseudo-filesystem such as /proc
 * (it spins at 100% CPU, deaf to SIGTERM), and a Node-RED runtime stuck there never starts
 * its other flows. So a folder is checked before anything is created: its nearest
 * existing ancestor must be a directory we may write, on a real filesystem (not procfs,
 * sysfs, devpts, cgroup, debugfs and the like, by their statfs magic numbers); then the
 * missing levels are made one at a time, without recursion. Pure TypeScript, no Node-RED import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StoreError } from '../errors';

/** statfs f_type of kernel pseudo-filesystems, where no ledger can live (linux/magic.h). */
const PSEUDO_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0xf97cff8c, 'selinuxfs'],
  [0x43415d53, 'smackfs'],
  [0x67596969, 'rpc_pipefs'],
  [0x6e736673, 'nsfs'],
  [0x50495045, 'pipefs'],
  [0x534f434b, 'sockfs'],
]);

/** Throw E_STORE unless dir can hold `what` (e.g. "a ledger"): a directory, or creatable on a real filesystem. */
export function checkFolder(dir: string, what: string): void {
  const abs = path.resolve(dir);
  let existing = abs;
  let st: fs.Stats | undefined;
  for (;;) {
    try {
      st = fs.statSync(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new StoreError('E_STORE', `cannot use ${abs} for ${what}: a part of the path is a file, not a folder`, { cause: err });
      if (code !== 'ENOENT')
        throw new StoreError('E_STORE', `cannot use ${abs} for ${what}: ${existing} is not accessible (${code ?? (err as Error).message})`, { cause: err });
    }
    const parent = path.dirname(existing);
    if (parent === existing) throw new StoreError('E_STORE', `cannot use ${abs} for ${what}: no part of the path exists`);
    existing = parent;
  }
  if (!st.isDirectory()) throw new StoreError('E_STORE', `cannot use ${abs} for ${what}: ${existing} is not a folder`);
  let type: number | undefined;
  try {
    type = fs.statfsSync(existing).type;
  } catch {
    /* statfs is not everywhere: the write check still applies */
  }
  const pseudo = type === undefined ? undefined : PSEUDO_FILESYSTEMS.get(type >>> 0);
  if (pseudo)
    throw new StoreError('E_STORE', `cannot use ${abs} for ${what}: ${existing} is on ${pseudo}, a kernel pseudo-filesystem; choose a folder on a disk`);
  try {
    fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new StoreError('E_STORE', `cannot use ${abs} for ${what}: ${existing} is not writable by this process`, { cause: err });
  }
}

/** Check dir (checkFolder), then create its missing levels one by one (never a recursive mkdir). */
export function createFolder(dir: string, what: string, mode?: number): void {
  const abs = path.resolve(dir);
  checkFolder(abs, what);
  const missing: string[] = [];
  for (let p = abs; !fs.existsSync(p); p = path.dirname(p)) missing.unshift(p);
  for (const p of missing) {
    try {
      fs.mkdirSync(p, mode === undefined ? undefined : { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(p).isDirectory()) continue;
      throw new StoreError('E_STORE', `cannot create the folder ${p} for ${what}: ${(err as Error).message}`, { cause: err });
    }
  }
}
