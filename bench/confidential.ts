/**
 * Confidential entries benchmark (issue 13; docs/design.md "Confidential entries"), sealed
 * against plain, side by side in one run, alternating rounds (A B A B …, medians):
 *
 * append    Entries/s through LedgerService.append (what bot-append calls), CALLERS (256)
 *           concurrent callers each awaiting one durable append at a time, into a fresh ledger.
 *           Inputs are the devices' signed envelopes as a flow hands them over (JSON objects:
 *           the service verifies each). Sealed: the ledger declares scope `plant` over `plant/#`
 *           and every reading is on it, so each is verified, encrypted (AES-256-GCM) and
 *           re-signed by the operator (one Ed25519 signature more) before its append. Plain:
 *           the same readings into a ledger without confidential scopes. Target ratio >= 0.8.
 *           `preverified` beside: the same with SignedEnvelope inputs (no verification in
 *           either path, so the sealing's own cost shows fully).
 * read      Partner reads/s of READ_LIMIT (20) entries at seeded random offsets, 8 in flight:
 *           PartnerClient (signs the request) → answerRequest on the owner's ledger (in this
 *           process, no MQTT) → verifyReadAnswer (every signature and inclusion proof). Sealed:
 *           readOpen on a ledger of sealed readings, with the keys fetched once before timing
 *           (each entry is also decrypted and the device's own signature verified). Plain:
 *           read() on the same readings unsealed. Target ratio >= 0.8.
 * rotation  ms for ConfidentialOwner.rotate of a scope held by 100 partners (a new epoch
 *           and 101 HPKE keywraps, X25519, appended all or nothing), median of the rounds;
 *           `addReader` beside: ms per partner to wrap one epoch to a new reader.
 *
 *   node dist/bench/confidential.js [--short]      (also part of `npm run bench`)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CALLERS, type Figure, log, median, now, prng, reading, round, T0 } from './common';
import { signEnvelope, type SignedEnvelope } from '../lib/format/envelope';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { LedgerService } from '../lib/service/ledger-service';
import { answerRequest } from '../lib/access/access';
import { issueGrant, newGrantId } from '../lib/access/grants';
import { PartnerClient } from '../lib/access/partner';
import { EncryptionKey } from '../lib/confidential/hpke';
import { encryptionKeyInput } from '../lib/confidential/keys';
import { ConfidentialOwner } from '../lib/confidential/owner';

const ORIGIN = 'bench.example/confidential';
const READ_LIMIT = 20;
const IN_FLIGHT = 8;
const PARTNERS = 100;

function fig(what: string, peerWhat: string, unit: string, a: number[], b: number[], target: number, extra: Record<string, unknown> = {}): Figure {
  const value = median(a);
  const peer = median(b);
  return {
    what,
    peerWhat,
    unit,
    value: round(value),
    peer: round(peer),
    ratio: round(value / peer, 3),
    target: `ratio >= ${target}`,
    meetsTarget: value / peer >= target,
    rounds: { value: a.map((x) => round(x)), peer: b.map((x) => round(x)) },
    ...extra,
  };
}

/** Readings of `devices` device identities, on plant/… topics, round-robin: one list per caller. */
function readings(devices: Identity[], total: number, json: boolean): unknown[][] {
  const lists: unknown[][] = Array.from({ length: CALLERS }, () => []);
  const seqs = devices.map(() => 0);
  for (let i = 0; i < total; i++) {
    const d = i % devices.length;
    const env = signEnvelope(devices[d], {
      kind: 'reading',
      seq: seqs[d]++,
      ts: T0 + i,
      topic: `plant/line-${d % 8}/device-${d}/reading`,
      payload: reading(d, i),
    });
    lists[i % CALLERS].push(json ? env.toJSON() : env);
  }
  return lists;
}

async function appendRun(lists: unknown[][], sealed: boolean, operator: Identity): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-conf-'));
  let seq = 0;
  const service = new LedgerService({
    dir,
    origin: ORIGIN,
    identity: operator,
    confidential: sealed
      ? { scopes: [{ scope: 'plant', topics: ['plant/#'] }], nextSeq: () => seq++, encryptionKey: () => EncryptionKey.generate() }
      : undefined,
  });
  service.start();
  try {
    await service.confidential();
    const l = await service.lease.ledger;
    const before = l.size;
    const n = lists.reduce((s, x) => s + x.length, 0);
    const t = now();
    await Promise.all(
      lists.map(async (list) => {
        for (const e of list) await service.append(e);
      }),
    );
    const sec = now() - t;
    if (l.size - before !== n) throw new Error(`confidential append: ${l.size - before} appended, expected ${n}`);
    return n / sec;
  } finally {
    await service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function benchAppend(short: boolean, rounds: number): Promise<Figure> {
  const operator = Identity.generate();
  const devices = Array.from({ length: 64 }, () => Identity.generate());
  const n = short ? 1000 : 20000;
  log(`confidential append: ${rounds} rounds of ${n} readings, ${CALLERS} callers, sealed vs plain`);
  const asJson = readings(devices, n, true);
  const pre = readings(devices, n, false);
  await appendRun(
    asJson.map((l) => l.slice(0, 4)),
    true,
    operator,
  );
  await appendRun(
    asJson.map((l) => l.slice(0, 4)),
    false,
    operator,
  );
  const a: number[] = [];
  const b: number[] = [];
  const pa: number[] = [];
  const pb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await appendRun(asJson, true, operator));
    b.push(await appendRun(asJson, false, operator));
    pa.push(await appendRun(pre, true, operator));
    pb.push(await appendRun(pre, false, operator));
    log(
      `confidential append round ${r + 1}: sealed ${Math.round(a[r])}/s, plain ${Math.round(b[r])}/s; preverified sealed ${Math.round(pa[r])}/s, plain ${Math.round(pb[r])}/s`,
    );
  }
  return fig('LedgerService.append entries/s, readings sealed (scope plant/#)', 'the same, no confidential scope', 'entries/s', a, b, 0.8, {
    entries: n,
    callers: CALLERS,
    preverified: fig('sealed, SignedEnvelope inputs', 'plain, SignedEnvelope inputs', 'entries/s', pa, pb, 0.8),
  });
}

interface ReadSetup {
  ledger: Ledger;
  client: PartnerClient;
  dir: string;
}

async function readSetup(sealed: boolean, n: number): Promise<ReadSetup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-conf-read-'));
  const operator = Identity.generate();
  const partner = Identity.generate();
  const devices = Array.from({ length: 16 }, () => Identity.generate());
  const ledger = await Ledger.open({ dir, origin: ORIGIN, identity: operator });
  let oseq = 0;
  const nextSeq = (): number => oseq++;
  const owner = new ConfidentialOwner({ ledger, operator, nextSeq, encryptionKey: await EncryptionKey.generate() });
  if (sealed) await owner.declareScope('plant', ['plant/#']);
  const grant = newGrantId();
  await issueGrant(ledger, operator, nextSeq, {
    id: grant,
    subject: partner.did,
    ledger: ORIGIN,
    actions: ['read'],
    scope: { signers: '*' },
    expires: Date.now() + 86400000,
  });
  const ek = await EncryptionKey.generate();
  let pseq = 0;
  if (sealed) {
    const enckey = signEnvelope(partner, encryptionKeyInput(ek, pseq++, Date.now()));
    await owner.addReader(
      { id: grant, subject: partner.did, ledger: ORIGIN, actions: ['read'], scope: { signers: '*' }, expires: Date.now() + 86400000 },
      enckey,
    );
  }
  const lists = readings(devices, n, false) as SignedEnvelope[][];
  const all: SignedEnvelope[] = [];
  for (let i = 0; all.length < n; i++) for (const l of lists) if (i < l.length) all.push(l[i]);
  for (let i = 0; i < all.length; i += 1000) {
    const page = all.slice(i, i + 1000);
    const out = sealed ? await Promise.all(page.map(async (e) => (await owner.seal(e, operator, nextSeq)) as SignedEnvelope)) : page;
    await ledger.appendAll(out);
  }
  await ledger.checkpoint();
  const client = new PartnerClient({
    owner: { origin: ORIGIN, operator: operator.did },
    grant,
    identity: partner,
    nextSeq: () => pseq++,
    encryptionKey: ek,
    transport: async (request) => answerRequest({ ledger, checkpoint: async () => ledger.latestCheckpoint() }, request),
  });
  if (sealed) await client.keys();
  return { ledger, client, dir };
}

async function readRun(s: ReadSetup, sealed: boolean, reads: number, seed: number): Promise<number> {
  const rand = prng(seed);
  const size = s.ledger.size;
  let next = 0;
  const t = now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < reads) {
        next++;
        const from = Math.floor(rand() * (size - READ_LIMIT * 3));
        const q = { from, limit: READ_LIMIT, topic: 'plant/#' };
        if (sealed) {
          const v = await s.client.readOpen(q);
          if (v.entries.some((e) => e.sealed && !e.opened)) throw new Error('confidential read: an entry did not open');
        } else await s.client.read(q);
      }
    }),
  );
  return reads / (now() - t);
}

async function benchRead(short: boolean, rounds: number): Promise<Figure> {
  const n = short ? 500 : 10000;
  const reads = short ? 60 : 1000;
  log(`confidential read: ${rounds} rounds of ${reads} partner reads of ${READ_LIMIT}, ${IN_FLIGHT} in flight, on ${n} readings sealed vs plain`);
  const sealed = await readSetup(true, n);
  const plain = await readSetup(false, n);
  try {
    await readRun(sealed, true, 20, 1);
    await readRun(plain, false, 20, 1);
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await readRun(sealed, true, reads, r + 7));
      b.push(await readRun(plain, false, reads, r + 7));
      log(`confidential read round ${r + 1}: sealed ${Math.round(a[r])}/s, plain ${Math.round(b[r])}/s`);
    }
    return fig(
      'partner reads/s, readOpen of sealed readings (decrypted, both signatures verified)',
      'partner reads/s, read of the same readings unsealed',
      'reads/s',
      a,
      b,
      0.8,
      {
        readLimit: READ_LIMIT,
        inFlight: IN_FLIGHT,
        entries: n,
      },
    );
  } finally {
    for (const s of [sealed, plain]) {
      await s.ledger.close();
      fs.rmSync(s.dir, { recursive: true, force: true });
    }
  }
}

async function benchRotation(rounds: number): Promise<Record<string, unknown>> {
  log(`key rotation: a scope held by ${PARTNERS} partners, ${rounds} rounds`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-bench-conf-rot-'));
  const operator = Identity.generate();
  const ledger = await Ledger.open({ dir, origin: ORIGIN, identity: operator });
  try {
    let seq = 0;
    const nextSeq = (): number => seq++;
    const owner = new ConfidentialOwner({ ledger, operator, nextSeq, encryptionKey: await EncryptionKey.generate() });
    await owner.declareScope('plant', ['plant/#']);
    const add: number[] = [];
    for (let i = 0; i < PARTNERS; i++) {
      const p = Identity.generate();
      const grant = newGrantId();
      const terms = {
        id: grant,
        subject: p.did,
        ledger: ORIGIN,
        actions: ['read'] as ['read'],
        scope: { signers: '*' as const },
        expires: Date.now() + 86400000,
      };
      await issueGrant(ledger, operator, nextSeq, terms);
      const enckey = signEnvelope(p, encryptionKeyInput(await EncryptionKey.generate(), 0, Date.now()));
      const t = now();
      await owner.addReader(terms, enckey);
      add.push((now() - t) * 1000);
    }
    const ms: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t = now();
      await owner.rotate('plant');
      ms.push((now() - t) * 1000);
      log(`rotation round ${r + 1}: ${ms[r].toFixed(1)} ms for ${PARTNERS} partners`);
    }
    return {
      what: `ConfidentialOwner.rotate of a scope held by ${PARTNERS} partners and the owner (a new epoch, ${PARTNERS + 1} HPKE keywraps, one atomic batch)`,
      unit: 'ms',
      value: round(median(ms), 1),
      rounds: ms.map((x) => round(x, 1)),
      addReaderMsPerPartner: round(median(add), 2),
    };
  } finally {
    await ledger.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The three figures of confidential entries (see the file comment). */
export async function benchConfidential(short: boolean): Promise<Record<string, unknown>> {
  const rounds = short ? 2 : 5;
  const append = await benchAppend(short, rounds);
  const read = await benchRead(short, rounds);
  const rotation = await benchRotation(rounds);
  return { append, read, rotation };
}

if (require.main === module) {
  benchConfidential(process.argv.includes('--short')).then(
    (r) => {
      process.stdout.write(JSON.stringify({ bench: 'confidential', mode: process.argv.includes('--short') ? 'short' : 'full', ...r }, null, 2) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
