/**
 * The `bot-ledger` command, as a function: main(argv, io) runs one subcommand and resolves
 * with the exit status (0 ok, 1 error, 2 usage error). bin/bot-ledger.ts is a thin wrapper,
 * so the logic here can be tested without spawning a process.
 *
 * Output is one JSON object per line (hashes in standard base64, as in C2SP notes), except
 * `checkpoint` (the signed note text) and `export` (the leaves' exact bytes). `export-tiles` and
 * `serve` publish the ledger as a C2SP tlog-tiles log (docs/design.md "The tiles view"). Errors are one
 * line `bot-ledger: <message> (<code>)` on stderr; stacks only with BOT_DEBUG=1. Secret key
 * material is never printed.
 */
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { auditLedger } from '../lib/store/audit';
import { toBase64 } from '../lib/format/bytes';
import { BotError, LedgerError } from '../lib/errors';
import { keyEpochsOf } from '../lib/confidential/owner';
import { type SignedEnvelope, signEnvelope } from '../lib/format/envelope';
import { SignPool } from '../lib/format/sign-pool';
import { Identity, PublicKey } from '../lib/format/identity';
import { type JsonValue } from '../lib/format/jcs';
import { checkOrigin, Ledger, type Receipt } from '../lib/store/ledger';
import { NoteVerifier } from '../lib/format/note';
import { CHECKPOINT_PATH, refPath } from '../lib/format/tlog-tiles';
import { TileReader, tileResponse } from '../lib/store/tile-reader';
import { checkDeviceReadings, DeviceRegistry } from '../lib/devices/device-registry';

/** The usage text printed by --help. */
export const USAGE = `Usage: bot-ledger <command> [arguments] [options]

Commands (output: one JSON object per line unless noted; hashes are standard base64):
  keygen --out FILE [--origin O]
      Generate an Ed25519 operator key and write it to FILE as a PKCS#8 PEM (mode 0600,
      never overwrites). Prints {"did"}, and with --origin also "vkey", the C2SP note
      verifier key of checkpoints with that origin. The secret key is never printed.
  append DIR --key FILE [--origin O] [--topic T] [--kind K] [--workers N]
      Read JSON values from stdin, one per line (empty lines skipped), sign each as an
      envelope {kind: K (default "reading"), seq, ts: now, topic: T, payload} and append
      it to the ledger in DIR, created when missing (then --origin is required). Prints
      {"index","leafHash","treeSize"} per entry, in input order, once it is durable.
      A burst of input is signed on N worker threads (default: cores - 1; 0: none).
  checkpoint DIR --key FILE
      Sign a C2SP checkpoint if the tree grew; print the latest signed note (text).
  proof DIR INDEX [--size N]
      Inclusion proof of entry INDEX: {"index","treeSize","leafHash","proof"}. Default
      size: the latest checkpoint's if it covers INDEX, else the current tree size.
  consistency DIR OLD NEW
      Consistency proof between tree sizes OLD and NEW: {"from","to","proof"}.
  export DIR [--from I] [--to J]
      The exact leaf bytes (canonical JSON envelopes) of entries I (default 0) to J
      (exclusive, default the tree size), one per line; stops at the end of the tree.
  verify DIR [--operator DID] [--origin O] [--workers N] [--devices]
      Full audit: every leaf, tree node, envelope signature, seq order and checkpoint.
      Prints the result; exit 0 if sound, else 1 and the first bad entry "index".
      --operator and --origin pin the checkpoint key and origin you expect (without
      them the audit trusts the ones recorded in the ledger itself). --devices also
      checks that each reading not signed by the operator came from a device enrolled
      in the ledger for its topic at its index; prints {"devices":{ok, readings,
      failed, failures: [{index, signer, topic, code}] (the first 100)}}.
  devices DIR
      The devices enrolled in the ledger, one per line: {id, name, key, keys, topics,
      expires, meta, enrolled, ended, status}, newest enrolment first.
  export-tiles DIR OUT
      Write what the latest checkpoint covers as a C2SP tlog-tiles log: static files in
      folder OUT for any web server, object store or CDN (tile/<L>/<N>[.p/<W>] hash tiles,
      tile/entries/<N>[.p/<W>] entry bundles, then checkpoint). Re-running updates OUT.
      Prints {"origin","size","tiles","bundles","written"}.
  serve DIR --port P [--host H]
      Serve the same tlog-tiles files over HTTP (GET, read-only) on H (default 127.0.0.1)
      port P; prints {"url","origin","size"} once listening and runs until stopped.

A ledger folder is open in one process at a time: one that Node-RED holds (a deployed
bot-ledger) is refused with E_LOCKED. Stop that flow first, or run the read-only commands
on a copy of the folder, or use Verify ledger in the editor's Ledger sidebar.

Options:
  --key FILE      operator key file (PKCS#8 PEM, hex or base64 seed, or PRIVATE+KEY);
                  refused if group or others can read it. Default: $BOT_LEDGER_KEY_FILE
  -h, --help      show this help

Exit status: 0 success, 1 error (one line "bot-ledger: ..." on stderr), 2 usage error.
BOT_DEBUG=1 prints stack traces.
`;

/** Where the command reads and writes; the process's streams by default. */
export interface CliIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Stop an `append` gracefully: stop reading, print the receipts of what was accepted. */
  signal?: AbortSignal;
}

/** Most appends in flight (not yet durable) at once: bounds memory whatever the input size. */
export const MAX_IN_FLIGHT = 8192;
/** Longest accepted input line of `append`, in bytes (entries are far smaller anyway). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

/** A mistake in the command line: exit status 2. */
export class UsageError extends Error {}

/** stdout was closed by the reader (EPIPE). */
class OutputClosed extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
interface CommandSpec {
  positionals: string[];
  options: OptionSpec;
  run: (c: Ctx) => Promise<number>;
}
interface Ctx {
  pos: string[];
  opt: Record<string, string | boolean | undefined>;
  io: CliIo;
  out: Output;
}

const str = (type: 'string' = 'string') => ({ type });

const COMMANDS: Record<string, CommandSpec> = {
  keygen: { positionals: [], options: { out: str(), origin: str() }, run: keygen },
  append: { positionals: ['DIR'], options: { key: str(), origin: str(), topic: str(), kind: str(), workers: str() }, run: append },
  checkpoint: { positionals: ['DIR'], options: { key: str() }, run: checkpoint },
  proof: { positionals: ['DIR', 'INDEX'], options: { size: str() }, run: proof },
  consistency: { positionals: ['DIR', 'OLD', 'NEW'], options: {}, run: consistency },
  export: { positionals: ['DIR'], options: { from: str(), to: str() }, run: exportLeaves },
  verify: { positionals: ['DIR'], options: { workers: str(), operator: str(), origin: str(), devices: { type: 'boolean' } }, run: verify },
  devices: { positionals: ['DIR'], options: {}, run: listDevices },
  'export-tiles': { positionals: ['DIR', 'OUT'], options: {}, run: exportTiles },
  serve: { positionals: ['DIR'], options: { port: str(), host: str() }, run: serve },
};

/** Run the command line argv (without node and script); resolves with the exit status. */
export async function main(argv: string[], io: Partial<CliIo> = {}): Promise<number> {
  const full: CliIo = {
    stdin: io.stdin ?? process.stdin,
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    signal: io.signal,
  };
  const out = new Output(full.stdout);
  try {
    const [name, ...rest] = argv;
    if (name === undefined) {
      full.stderr.write(USAGE);
      return 2;
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      await out.write(USAGE);
      return 0;
    }
    const spec = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!spec) throw new UsageError(name.startsWith('-') ? `unknown option ${name}` : `unknown command ${JSON.stringify(name)}`);
    let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options: { ...spec.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    } catch (err) {
      // parseArgs appends a hint about '--' to unknown options; the first sentence says it all.
      throw new UsageError(`${name}: ${firstLine((err as Error).message).replace(/\. To specify a positional.*$/, '')}`);
    }
    if (parsed.values.help) {
      await out.write(USAGE);
      return 0;
    }
    if (parsed.positionals.length !== spec.positionals.length) {
      const want = spec.positionals.length ? spec.positionals.join(' ') : 'no arguments';
      throw new UsageError(`${name} takes ${want}, got ${parsed.positionals.length} argument${parsed.positionals.length === 1 ? '' : 's'}`);
    }
    return await spec.run({ pos: parsed.positionals, opt: parsed.values, io: full, out });
  } catch (err) {
    return report(err, full);
  }
}

/** Print an error as one line on stderr (plus the stack with BOT_DEBUG=1); the exit status. */
function report(err: unknown, io: CliIo): number {
  const debug = io.env.BOT_DEBUG === '1';
  const e = err as Error & { code?: unknown; syscall?: unknown };
  let line: string;
  let status = 1;
  if (err instanceof UsageError) {
    line = `${err.message} (see bot-ledger --help)`;
    status = 2;
  } else if (err instanceof OutputClosed) {
    line = 'cannot write to stdout: it was closed';
  } else if (err instanceof BotError) {
    line = `${err.message} (${err.code})${err.code === 'E_LOCKED' ? LOCKED_ADVICE : ''}`;
  } else if (err instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string') {
    line = err.message; // ENOENT, EACCES, EEXIST …: a user's mistake
  } else {
    line = `internal error: ${err instanceof Error ? err.message : String(err)}${debug ? '' : ' (BOT_DEBUG=1 shows details)'}`;
  }
  io.stderr.write(`bot-ledger: ${firstLine(line)}\n`);
  if (debug && err instanceof Error && err.stack) io.stderr.write(err.stack + '\n');
  return status;
}

/**
 * What to do about E_LOCKED: LevelDB lets one process open a ledger folder, and Node-RED keeps
 * the ledgers of its deployed flows open.
 */
export const LOCKED_ADVICE =
  '. It is open in another process, e.g. Node-RED running a flow with a bot-ledger on this folder: ' +
  'stop that flow (or Node-RED) first, or run read-only commands (verify, export, proof, consistency) on a copy of the folder ' +
  '(cp -r DIR DIR-copy; a copy taken while Node-RED writes may lack the latest entries); ' +
  "to verify the ledger Node-RED is running, use Verify ledger in the editor's Ledger sidebar";

function firstLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** stdout with backpressure and a typed error when the reader went away. */
class Output {
  #stream: NodeJS.WritableStream;
  #error: Error | undefined;

  constructor(stream: NodeJS.WritableStream) {
    this.#stream = stream;
    stream.on('error', (err: Error) => {
      this.#error = err;
    });
  }

  async write(data: string | Buffer): Promise<void> {
    if (this.#error) throw new OutputClosed(this.#error.message);
    if (this.#stream.write(data)) return;
    try {
      await once(this.#stream, 'drain');
    } catch (err) {
      throw new OutputClosed((err as Error).message);
    }
  }

  line(value: unknown): Promise<void> {
    return this.write(JSON.stringify(value) + '\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Arguments

/** A decimal non-negative safe integer, or a usage error naming the argument. */
function count(what: string, text: string): number {
  if (!/^(?:0|[1-9][0-9]*)$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be a non-negative integer, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return Number(text);
}

function optCount(ctx: Ctx, name: string): number | undefined {
  const v = ctx.opt[name];
  return typeof v === 'string' ? count(`--${name}`, v) : undefined;
}

function optString(ctx: Ctx, name: string): string | undefined {
  const v = ctx.opt[name];
  return typeof v === 'string' ? v : undefined;
}

/** The operator key from --key or $BOT_LEDGER_KEY_FILE (Identity.fromFile refuses readable files). */
function loadKey(ctx: Ctx, command: string): Identity {
  const file = optString(ctx, 'key') ?? (ctx.io.env.BOT_LEDGER_KEY_FILE || undefined);
  if (file === undefined) throw new UsageError(`${command} needs --key FILE (or BOT_LEDGER_KEY_FILE)`);
  return Identity.fromFile(file);
}

/** Open an existing ledger for reading (no key, never creates). */
function openReader(dir: string): Promise<Ledger> {
  return Ledger.open({ dir, create: false });
}

async function withLedger<T>(ledgerP: Promise<Ledger>, f: (l: Ledger) => Promise<T>): Promise<T> {
  const ledger = await ledgerP;
  try {
    return await f(ledger);
  } finally {
    await ledger.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

async function keygen(ctx: Ctx): Promise<number> {
  const file = optString(ctx, 'out');
  if (file === undefined) {
    throw new UsageError('keygen needs --out FILE: the secret key is only ever written to a file with mode 0600');
  }
  const origin = optString(ctx, 'origin');
  if (origin !== undefined) checkOrigin(origin);
  const id = Identity.generate();
  try {
    id.writeKeyFile(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EEXIST') throw new LedgerError('E_KEY', `${file} already exists: refusing to overwrite a key file`);
    throw err;
  }
  const line: { did: string; vkey?: string } = { did: id.did };
  if (origin !== undefined) line.vkey = NoteVerifier.ed25519(origin, id.publicKey).toString();
  await ctx.out.line(line);
  return 0;
}

async function checkpoint(ctx: Ctx): Promise<number> {
  const identity = loadKey(ctx, 'checkpoint');
  return withLedger(Ledger.open({ dir: ctx.pos[0], create: false, identity }), async (ledger) => {
    const cp = (await ledger.checkpoint()) ?? ledger.latestCheckpoint();
    if (!cp) throw new LedgerError('E_CHECKPOINT', 'no checkpoint could be signed');
    await ctx.out.write(cp.note);
    return 0;
  });
}

async function proof(ctx: Ctx): Promise<number> {
  const index = count('INDEX', ctx.pos[1]);
  const sizeOpt = optCount(ctx, 'size');
  return withLedger(openReader(ctx.pos[0]), async (ledger) => {
    const cp = ledger.latestCheckpoint();
    const size = sizeOpt ?? (cp && index < cp.size ? cp.size : ledger.size);
    const path = await ledger.inclusionProof(index, size);
    const entry = await ledger.get(index);
    await ctx.out.line({ index, treeSize: size, leafHash: toBase64(entry.leafHash), proof: path.map(toBase64) });
    return 0;
  });
}

async function consistency(ctx: Ctx): Promise<number> {
  const from = count('OLD', ctx.pos[1]);
  const to = count('NEW', ctx.pos[2]);
  return withLedger(openReader(ctx.pos[0]), async (ledger) => {
    if (from > to) throw new LedgerError('E_RANGE', `OLD (${from}) is above NEW (${to})`);
    const p = await ledger.consistencyProof(from, to);
    await ctx.out.line({ from, to, proof: p.map(toBase64) });
    return 0;
  });
}

async function exportLeaves(ctx: Ctx): Promise<number> {
  const fromOpt = optCount(ctx, 'from');
  const toOpt = optCount(ctx, 'to');
  if (fromOpt !== undefined && toOpt !== undefined && fromOpt > toOpt) throw new LedgerError('E_RANGE', `--from ${fromOpt} is above --to ${toOpt}`);
  return withLedger(openReader(ctx.pos[0]), async (ledger) => {
    // Export stops at the end of the tree: --to past it (or --from past it) exports what there is.
    const to = Math.min(toOpt ?? ledger.size, ledger.size);
    const from = Math.min(fromOpt ?? 0, to);
    const NL = Buffer.from('\n');
    let parts: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const e of ledger.entries(from, to)) {
        parts.push(e.leaf, NL);
        bytes += e.leaf.length + 1;
        if (bytes >= 256 * 1024) {
          await ctx.out.write(Buffer.concat(parts, bytes));
          parts = [];
          bytes = 0;
        }
      }
      if (bytes > 0) await ctx.out.write(Buffer.concat(parts, bytes));
    } catch (err) {
      if (err instanceof OutputClosed) return 0; // `export | head`: the reader has what it wanted
      throw err;
    }
    return 0;
  });
}

async function verify(ctx: Ctx): Promise<number> {
  const workers = optCount(ctx, 'workers');
  const operator = optString(ctx, 'operator');
  const origin = optString(ctx, 'origin');
  if (operator !== undefined) {
    try {
      PublicKey.fromDid(operator);
    } catch (err) {
      throw new UsageError(`--operator: ${(err as Error).message}`);
    }
  }
  let ledger: Ledger;
  try {
    ledger = await openReader(ctx.pos[0]);
  } catch (err) {
    // A ledger too damaged to open, where the kernel knows which entry: report it like the audit.
    const index = (err as { cause?: { index?: unknown } }).cause?.index;
    if (err instanceof BotError && err.code === 'E_CORRUPT' && typeof index === 'number') {
      await ctx.out.line({ ok: false, index, code: err.code, reason: err.message });
      ctx.io.stderr.write(`bot-ledger: verification failed at entry ${index}: ${firstLine(err.message)} (${err.code})\n`);
      return 1;
    }
    throw err;
  }
  return withLedger(Promise.resolve(ledger), async (l) => {
    // The audit checks checkpoints against the operator key recorded in the ledger's meta
    // record: whoever can rewrite the store can rewrite that too, so an auditor pins it.
    if (operator !== undefined && l.operator.did !== operator) {
      throw new LedgerError('E_KEY', `the ledger's operator key is ${l.operator.did}, not the expected ${operator}`);
    }
    if (origin !== undefined && l.origin !== origin) {
      throw new LedgerError('E_NOTE', `the ledger's origin is ${l.origin}, not the expected ${origin}`);
    }
    const result = await auditLedger(l, workers === undefined ? {} : { workers });
    await ctx.out.line(result);
    if (!result.ok) {
      ctx.io.stderr.write(`bot-ledger: verification failed at entry ${result.index}: ${firstLine(result.reason)} (${result.code})\n`);
      return 1;
    }
    if (ctx.opt.devices !== true) return 0;
    const devices = await checkDeviceReadings(l);
    await ctx.out.line({ devices });
    if (devices.ok) return 0;
    const f = devices.failures[0];
    ctx.io.stderr.write(
      `bot-ledger: ${devices.failed} reading(s) not from a device enrolled for its topic, first at entry ${f.index}: ${firstLine(f.message)} (${f.code})\n`,
    );
    return 1;
  });
}

/** The devices of a ledger, from its entries alone (docs/design.md "Devices"). */
async function listDevices(ctx: Ctx): Promise<number> {
  return withLedger(openReader(ctx.pos[0]), async (l) => {
    for (const d of await DeviceRegistry.of(l).list()) await ctx.out.line(d);
    return 0;
  });
}

// ---------------------------------------------------------------------------------------------
// export-tiles, serve: the ledger as a C2SP tlog-tiles log

/** A TileReader over a ledger that has a signed checkpoint (the tiles publish what it covers). */
function tilesOf(ledger: Ledger): TileReader {
  const reader = new TileReader(ledger);
  if (!reader.checkpoint())
    throw new LedgerError('E_CHECKPOINT', 'the ledger has no signed checkpoint yet: sign one first (bot-ledger checkpoint DIR --key FILE)');
  return reader;
}

/**
 * Write one static file under root, atomically (temporary file, rename), so a web server
 * serving root never serves half a file. A tile or bundle already there must hold the same
 * bytes (their content is fixed by the tree): true when written, false when already there.
 */
async function writeStatic(root: string, rel: string, body: Buffer, mutable = false): Promise<boolean> {
  const file = path.join(root, ...rel.split('/'));
  const existing = await fs.promises.readFile(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing && !mutable) {
    if (existing.equals(body)) return false;
    throw new LedgerError('E_CONFLICT', `${rel} in ${root} differs from this ledger's: that folder holds another log (or a forked one)`);
  }
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, body);
  await fs.promises.rename(tmp, file);
  return true;
}

async function exportTiles(ctx: Ctx): Promise<number> {
  const out = ctx.pos[1];
  return withLedger(openReader(ctx.pos[0]), async (ledger) => {
    const reader = tilesOf(ledger);
    const checkpointNote = reader.checkpoint() as Buffer;
    let tiles = 0,
      bundles = 0,
      written = 0;
    const tooLarge: string[] = [];
    for await (const ref of reader.refs()) {
      let body: Buffer | undefined;
      try {
        body = await reader.tile(ref);
      } catch (err) {
        // An entry above 65,535 bytes does not fit a bundle; the hash tiles (proofs) still do.
        if (err instanceof BotError && err.code === 'E_TOO_LARGE') {
          tooLarge.push(refPath(ref));
          continue;
        }
        throw err;
      }
      if (!body) throw new LedgerError('E_CORRUPT', `${refPath(ref)} is missing below the checkpoint's size`);
      if (await writeStatic(out, refPath(ref), body)) written++;
      if (ref.entries) bundles++;
      else tiles++;
    }
    // The checkpoint last: a reader of OUT never sees a checkpoint whose tiles are not there yet.
    await writeStatic(out, CHECKPOINT_PATH, checkpointNote, true);
    await ctx.out.line({ origin: ledger.origin, size: reader.size, tiles, bundles, written });
    if (tooLarge.length > 0) {
      throw new LedgerError(
        'E_TOO_LARGE',
        `${tooLarge.length} entry bundle(s) not written, the first ${tooLarge[0]}: an entry bundle carries entries of at most 65535 bytes`,
      );
    }
    return 0;
  });
}

async function serve(ctx: Ctx): Promise<number> {
  const port = optCount(ctx, 'port');
  if (port === undefined) throw new UsageError('serve needs --port P');
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const host = optString(ctx, 'host') ?? '127.0.0.1';
  return withLedger(openReader(ctx.pos[0]), async (ledger) => {
    const reader = tilesOf(ledger);
    const server = http.createServer((req, res) => {
      // The tiles are public data: any web page may read them (CORS).
      tileResponse(reader, { method: req.method, url: req.url, acceptEncoding: req.headers['accept-encoding'] }, { cors: true }).then(
        (r) => {
          res.writeHead(r.status, r.headers);
          res.end(r.body);
        },
        () => res.destroy(),
      );
    });
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    const stopped = new Promise<void>((resolve) => {
      if (ctx.io.signal?.aborted) resolve();
      ctx.io.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    server.listen(port, host);
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
    try {
      const addr = server.address() as AddressInfo;
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      await ctx.out.line({ url: `http://${shown}:${addr.port}/`, origin: ledger.origin, size: reader.size });
      await stopped;
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------------------------
// append

/** Bad input on a line of stdin. */
class InputError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`stdin line ${line}: ${message}`);
  }
}

/** Split a byte stream into lines (\n, an optional \r before it dropped); the last line may lack \n. */
async function* readLines(input: AsyncIterable<Buffer | string>): AsyncGenerator<{ n: number; bytes: Buffer }> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let n = 0;
  const finish = (tail: Buffer): Buffer => {
    let line = carryLen ? Buffer.concat([...carry, tail]) : tail;
    carry = [];
    carryLen = 0;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    return line;
  };
  for await (const chunk of input) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      n++;
      if (carryLen + nl - start > MAX_LINE_BYTES) throw new InputError(n, `longer than ${MAX_LINE_BYTES} bytes`);
      yield { n, bytes: finish(buf.subarray(start, nl)) };
      start = nl + 1;
    }
    if (start < buf.length) {
      carry.push(buf.subarray(start));
      carryLen += buf.length - start;
      if (carryLen > MAX_LINE_BYTES) throw new InputError(n + 1, `longer than ${MAX_LINE_BYTES} bytes`);
    }
  }
  if (carryLen > 0) yield { n: n + 1, bytes: finish(Buffer.alloc(0)) };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const NUMBER = /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

/** The first integer literal (outside strings) of valid JSON text that is not a safe integer. */
function unsafeInteger(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip a string
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) continue;
      if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(Number(m[0]))) return m[0];
      i += m[0].length - 1;
    }
  }
  return undefined;
}

/** One accepted append, in input order. */
interface InFlight {
  receipt?: Receipt;
  done: Promise<Receipt>;
}

async function append(ctx: Ctx): Promise<number> {
  const identity = loadKey(ctx, 'append');
  const origin = optString(ctx, 'origin');
  const topic = optString(ctx, 'topic');
  const kind = optString(ctx, 'kind') ?? 'reading';
  try {
    signEnvelope(identity, topic === undefined ? { kind, seq: 0, ts: 0, payload: null } : { kind, seq: 0, ts: 0, topic, payload: null });
  } catch (err) {
    throw new UsageError(`append: --kind or --topic: ${(err as Error).message}`);
  }
  if (origin !== undefined) checkOrigin(origin);
  const workersText = optString(ctx, 'workers');
  const workers = workersText === undefined ? undefined : Number(workersText);
  if (workers !== undefined && !(Number.isSafeInteger(workers) && workers >= 0 && workers <= 64))
    throw new UsageError('append: --workers must be a whole number from 0 to 64');
  const ledger = await Ledger.open({ dir: ctx.pos[0], origin, identity });
  // Entries of a confidential scope are stored sealed (docs/design.md "Confidential entries"); this
  // command does not seal, so it refuses their topics rather than store readings in plaintext.
  const scope = await keyEpochsOf(ledger).then(
    (k) => k.scopeOf(topic),
    async (err: unknown) => {
      await ledger.close();
      throw err;
    },
  );
  if (scope !== undefined) {
    await ledger.close();
    throw new LedgerError('E_SCOPE', `topic ${topic ?? ''} is in confidential scope ${scope}: append it through a bot-append node, which seals it`);
  }
  // Signing, the bulk of an append's CPU, on worker threads while input comes in a burst.
  const pool = workers === 0 ? undefined : new SignPool(identity, { workers });
  const { io, out } = ctx;

  const queue: InFlight[] = [];
  let inputDone = false;
  let failure: unknown; // an append or a write to stdout failed: stop
  let wakePrinter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  let stopping = false; // the input is being cut short (signal or failure)
  const wake = (): void => {
    const a = wakePrinter,
      b = wakeReader;
    wakePrinter = wakeReader = undefined;
    a?.();
    b?.();
  };
  const stopInput = (): void => {
    if (stopping) return;
    stopping = true;
    const s = io.stdin as NodeJS.ReadableStream & { destroy?: () => void };
    s.destroy?.();
    wake();
  };

  // Print receipts in input order as appends become durable, several per write when ready.
  const printer = (async (): Promise<void> => {
    try {
      for (;;) {
        while (queue.length === 0) {
          if (inputDone) return;
          await new Promise<void>((r) => {
            wakePrinter = r;
          });
        }
        queue[0].receipt ??= await queue[0].done;
        let text = '';
        let k = 0;
        while (k < queue.length && queue[k].receipt) {
          const r = queue[k].receipt as Receipt;
          text += `{"index":${r.index},"leafHash":"${r.leafHash}","treeSize":${r.treeSize}}\n`;
          k++;
        }
        await out.write(text);
        queue.splice(0, k);
        wake();
      }
    } catch (err) {
      failure ??= err;
      stopInput();
    }
  })();

  const onAbort = (): void => stopInput();
  io.signal?.addEventListener('abort', onAbort);
  let inputError: InputError | undefined;
  let accepted = 0;
  try {
    let seq = (await ledger.lastSeq(identity.did)) + 1;
    try {
      for await (const { n, bytes } of readLines(io.stdin as AsyncIterable<Buffer | string>)) {
        if (stopping) break;
        let text: string;
        try {
          text = utf8.decode(bytes);
        } catch {
          throw new InputError(n, 'not valid UTF-8');
        }
        if (text.trim() === '') continue;
        let payload: JsonValue;
        try {
          payload = JSON.parse(text) as JsonValue;
        } catch (err) {
          throw new InputError(n, `not a JSON value (${(err as Error).message})`);
        }
        const unsafe = /[0-9]{16}/.test(text) ? unsafeInteger(text) : undefined;
        if (unsafe !== undefined) {
          throw new InputError(
            n,
            `the integer ${unsafe.slice(0, 40)} is beyond 2^53-1 and would be changed by JSON number handling (I-JSON, RFC 7493 §2.2); send it as a string`,
          );
        }
        let env: SignedEnvelope | Promise<SignedEnvelope>;
        try {
          const input = topic === undefined ? { kind, seq, ts: Date.now(), payload } : { kind, seq, ts: Date.now(), topic, payload };
          const limits = { maxBytes: ledger.maxEntryBytes };
          env = pool ? pool.sign(input, limits) : signEnvelope(identity, input, limits);
        } catch (err) {
          throw new InputError(n, err instanceof BotError ? `${err.message} (${err.code})` : (err as Error).message);
        }
        seq++;
        // The pool resolves in call order, so appends still come in seq order.
        const item: InFlight = { done: env instanceof Promise ? env.then((e) => ledger.append(e)) : ledger.append(env) };
        item.done.then(
          (r) => {
            item.receipt = r;
          },
          () => undefined,
        );
        queue.push(item);
        accepted++;
        wake();
        while (queue.length >= MAX_IN_FLIGHT && !stopping)
          await new Promise<void>((r) => {
            wakeReader = r;
          });
      }
    } catch (err) {
      if (err instanceof InputError) inputError = err;
      else if (!stopping) throw err; // destroying stdin to stop reading ends the loop with an error
    }
  } finally {
    inputDone = true;
    wake();
    await printer;
    io.signal?.removeEventListener('abort', onAbort);
    await pool?.close();
    await ledger.close();
  }
  if (failure) throw failure;
  if (inputError) {
    const printed = accepted - queue.length;
    io.stderr.write(`bot-ledger: ${firstLine(inputError.message)}; stopped after ${printed} entr${printed === 1 ? 'y' : 'ies'}\n`);
    return 1;
  }
  if (io.signal?.aborted) {
    io.stderr.write(`bot-ledger: interrupted; ${accepted} entr${accepted === 1 ? 'y' : 'ies'} appended and receipted\n`);
    const sig = String(io.signal.reason ?? '');
    const num = (os.constants.signals as Record<string, number>)[sig];
    return num ? 128 + num : 1;
  }
  return 0;
}
