/**
 * Partner-read benchmark (GitHub issue 5): a partner reading an owner's ledger under a read
 * grant, with every proof and signature checked, over the loopback MQTT broker, against the
 * same reads done locally, as a `bot-query` node does them.
 *
 * Owner (this process): a ledger of ENTRIES readings (500 short, 10k full) from SIGNERS (4)
 * device identities (bench/common.ts Signer: topic plant/line-<n>/device-<n>/reading), appended
 * by one caller per device (so they interleave), then one operator grant (action read, scope
 * {signers: the first 2 devices, topics: ["plant/#"]}, i.e. about half the entries) and one
 * signed checkpoint over all of it. A LedgerPublisher on its own MqttLink answers the RPC
 * method "request" with answerRequest({ledger, checkpoint: latestCheckpoint}) (signature,
 * freshness, replay guard, grant check, scoped read with inclusion proofs).
 *
 * Partner (a child process: this file forked with --partner-child, its own MqttLink and
 * client id): READS reads per round (50 short, 1000 full), CONCURRENCY (8) in flight, each
 *   makeRequest(partner, seq++, {op: 'read', grant, filter: {from, limit: LIMIT (20)}})
 *   → link.request(rpc, 'request', env.toJSON()) → verifyReadAnswer(answer, {origin, operator}, {from})
 * (operator signature of the checkpoint, each leaf's signature, each inclusion proof, each
 * entry matching the filter), at seeded random `from` offsets chosen so that every read
 * gets LIMIT in-scope entries (about 2 × LIMIT entries from `from` on hold them; the owner's
 * readInScope fetches pages sized to twice the entries still missing). Value: reads/s. Beside it, per
 * read (medians of the rounds): the child's CPU ms and the part of it in verifyReadAnswer,
 * and this process's CPU ms (the owner's answer). The broker is bench/consensus.ts's:
 * Mosquitto with `set_tcp_nodelay true` (as the README advises for partner access: a request
 * and its answer are single small packets, which Nagle's algorithm would hold back) when
 * installed, else aedes. The partner verifies the checkpoint's signature once per distinct
 * checkpoint (lib/access/access.ts caches checked checkpoints) and every leaf signature every time.
 *
 * Peer (this process): the same filters, the same CONCURRENCY, what a local bot-query does
 * per message: queryFrom({}, filter) then provenQuery(ledger, q, latestCheckpoint) (LIMIT
 * consecutive entries with their inclusion proofs, no grant, no transport, no verification),
 * cycling through the round's filters until at least LOCAL_SECONDS (1 s) have passed.
 * Reads/s. Target: ratio >= 0.5.
 *
 * Beside, in the same alternated rounds, so the reader can see where the time goes:
 * `unverified` the partner in the child without verifyReadAnswer (request + answer over MQTT);
 * `sameProcess` the partner in this process (owner and partner share one event loop);
 * `direct` answerRequest + verifyReadAnswer called in this process, no MQTT at all.
 * Rounds alternate partner, local, unverified, sameProcess, direct (2 short, 5 full); medians.
 */
import { fromHex } from '../lib/format/bytes';
import { answerRequest, makeRequest, verifyReadAnswer } from '../lib/access/access';
import { provenQuery, queryFrom } from '../lib/access/answer';
import { signEnvelope } from '../lib/format/envelope';
import { grantInput } from '../lib/access/grants';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { type MqttLink } from '../lib/consortium/mqtt-link';
import { ledgerId } from '../lib/consortium/quorum';
import { LedgerPublisher, ledgerTopics } from '../lib/consortium/publisher';
import {
  appendCallers,
  type Child,
  connectLink,
  type Figure,
  forkChild,
  log,
  makeSigners,
  median,
  now,
  ORIGIN,
  prng,
  rmDir,
  round,
  signSpread,
  stopChild,
  tmpDir,
} from './common';
import { startBroker } from './consensus';

/** Device signers of the owner's ledger; the grant covers the first SCOPED of them. */
const SIGNERS = 4;
const SCOPED = 2;
/** Entries per read (filter.limit). */
const LIMIT = 20;
/** Reads in flight, partner and local alike. */
const CONCURRENCY = 8;
/** The local peer cycles through a round's offsets until at least this many seconds have passed. */
const LOCAL_SECONDS = 1;

/** What the partner knows: the broker, the owner's rpc topic, its grant, the owner's keys. */
interface PartnerSetup {
  url: string;
  rpc: string;
  grant: string;
  origin: string;
  operator: string;
  seed: string;
}

/** A partner: its identity, its next request seq (shared across its links), its link. */
interface Partner {
  id: Identity;
  link: MqttLink;
  setup: PartnerSetup;
  seq: { next: number };
}

/** Run `offsets.length` reads, `concurrency` in flight; returns seconds. */
async function pool(offsets: number[], concurrency: number, read: (from: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < offsets.length) await read(offsets[next++]);
    }),
  );
  return now() - t;
}

/** The partner's reads over MQTT, each answer verified unless verify is false; returns seconds. */
async function partnerReads(p: Partner, offsets: number[], verify: boolean, spent = { verify: 0 }): Promise<number> {
  const owner = { origin: p.setup.origin, operator: p.setup.operator };
  return pool(offsets, CONCURRENCY, async (from) => {
    const filter = { from, limit: LIMIT };
    const env = makeRequest(p.id, p.seq.next++, { op: 'read', grant: p.setup.grant, filter });
    const answer = await p.link.request(p.setup.rpc, 'request', env.toJSON());
    if (verify) {
      const t = now();
      const v = verifyReadAnswer(answer, owner, { from });
      spent.verify += now() - t;
      if (v.entries.length !== LIMIT) throw new Error(`partner: ${v.entries.length} entries verified from ${from}, expected ${LIMIT}`);
    } else if ((answer as { entries?: unknown[] }).entries?.length !== LIMIT) {
      throw new Error(`partner: answer without ${LIMIT} entries from ${from}: ${JSON.stringify(answer).slice(0, 300)}`);
    }
  });
}

// ------------------------------------------------------------------------- partner child

/** Child side: {cmd:'init', ...PartnerSetup, seq} then {cmd:'run', offsets, verify}… then {cmd:'stop'}. */
function runChild(): void {
  let p: Partner | undefined;
  process.on('message', (msg: { id: number; cmd: string; offsets?: number[]; verify?: boolean; seq?: number } & Partial<PartnerSetup>) => {
    const work = async (): Promise<unknown> => {
      if (msg.cmd === 'init') {
        const setup = msg as unknown as PartnerSetup;
        p = { id: Identity.fromSeed(fromHex(setup.seed)), link: await connectLink(setup.url, 'partner-child'), setup, seq: { next: msg.seq ?? 1 } };
        return true;
      }
      if (msg.cmd === 'run') {
        if (!p) throw new Error('not initialised');
        if (msg.seq !== undefined) p.seq.next = msg.seq;
        const spent = { verify: 0 };
        const cpu = process.cpuUsage();
        const seconds = await partnerReads(p, msg.offsets ?? [], msg.verify !== false, spent);
        const used = process.cpuUsage(cpu);
        return { seconds, seq: p.seq.next, verifySeconds: spent.verify, cpuSeconds: (used.user + used.system) / 1e6 };
      }
      if (msg.cmd === 'stop') {
        if (p) await p.link.close();
        p = undefined;
        setImmediate(() => process.disconnect?.());
        return true;
      }
      throw new Error(`unknown command ${msg.cmd}`);
    };
    work().then(
      (result) => process.send?.({ id: msg.id, result }),
      (err: Error) => process.send?.({ id: msg.id, error: err.stack ?? err.message }),
    );
  });
}

// --------------------------------------------------------------------------------- bench

/** Partner reads/s (proofs checked, over loopback MQTT) against local bot-query reads/s. */
export async function benchPartner(short: boolean): Promise<Figure> {
  const P = short ? { entries: 500, reads: 50, rounds: 2 } : { entries: 10_000, reads: 1_000, rounds: 5 };
  const dir = tmpDir('partner');
  const broker = await startBroker({ nodelay: true });
  let ledger: Ledger | undefined;
  let ownerLink: MqttLink | undefined;
  let publisher: LedgerPublisher | undefined;
  let child: Child | undefined;
  let local: Partner | undefined;
  try {
    // ---- owner: ledger, grant, checkpoint, publisher
    const op = Identity.generate();
    const partnerId = Identity.generate();
    ledger = await Ledger.open({ dir, origin: ORIGIN, identity: op });
    const L = ledger;
    const devices = makeSigners(SIGNERS, 700_000);
    await appendCallers(L, signSpread(devices, P.entries));
    const grant = 'bench-partner-read';
    const t0 = Date.now();
    await L.append(
      signEnvelope(
        op,
        grantInput(
          {
            id: grant,
            subject: partnerId.did,
            ledger: ORIGIN,
            actions: ['read'],
            scope: { signers: devices.slice(0, SCOPED).map((d) => d.id.did), topics: ['plant/#'] },
            expires: t0 + 24 * 3_600_000,
          },
          1,
          t0,
        ),
      ),
    );
    const cp = (await L.checkpoint()) ?? L.latestCheckpoint();
    if (!cp || cp.size !== L.size) throw new Error('partner: no checkpoint over the whole ledger');
    const id = ledgerId(ORIGIN, op.did);
    ownerLink = await connectLink(broker.url, 'owner');
    publisher = new LedgerPublisher(L, ownerLink, id, { requests: (p) => answerRequest({ ledger: L, checkpoint: async () => L.latestCheckpoint() }, p) });
    publisher.start();
    const setup: PartnerSetup = {
      url: broker.url,
      rpc: ledgerTopics(id).rpc,
      grant,
      origin: ORIGIN,
      operator: op.did,
      seed: partnerId.exportSeed().toString('hex'),
    };
    log(
      `partner: broker ${broker.kind}; ledger of ${L.size} entries (${SIGNERS} devices, grant scope ${SCOPED} of them), ${P.rounds} rounds of ${P.reads} reads of ${LIMIT}, ${CONCURRENCY} in flight`,
    );

    // Offsets: every read finds LIMIT in-scope entries before the end (about half are in scope).
    const rnd = prng(5005);
    const span = P.entries - 4 * LIMIT * (SIGNERS / SCOPED);
    const offsets = (): number[] => Array.from({ length: P.reads }, () => Math.floor(rnd() * span));

    // The partner in a child process, and one in this process (same identity: seqs handed over).
    child = forkChild(__filename, '--partner-child', 'partner child', 120000);
    const seq = { next: 1 };
    await child.call('init', { ...setup, seq: 1 });
    local = { id: partnerId, link: await connectLink(broker.url, 'partner-local'), setup, seq };
    const C = child;
    type Ms = { partnerCpu: number; verify: number; ownerCpu: number };
    const cpuV: Ms[] = [],
      cpuU: Ms[] = [];
    const msPerRead = (xs: Ms[]): Record<string, number> => ({
      partnerCpu: round(median(xs.map((x) => x.partnerCpu)), 2),
      partnerVerifyWall: round(median(xs.map((x) => x.verify)), 2),
      ownerCpu: round(median(xs.map((x) => x.ownerCpu)), 2),
    });
    const inChild = async (offs: number[], verify: boolean): Promise<number> => {
      const cpu = process.cpuUsage();
      const r = (await C.call('run', { offsets: offs, verify, seq: seq.next })) as { seconds: number; seq: number; verifySeconds: number; cpuSeconds: number };
      const used = process.cpuUsage(cpu);
      seq.next = r.seq;
      const ms = {
        partnerCpu: (r.cpuSeconds * 1000) / offs.length,
        verify: (r.verifySeconds * 1000) / offs.length,
        ownerCpu: (used.user + used.system) / 1e3 / offs.length,
      };
      (verify ? cpuV : cpuU).push(ms);
      log(
        `partner (child, ${verify ? 'verified' : 'unverified'}): ${((r.seconds * 1000) / offs.length).toFixed(2)} ms/read wall, child CPU ${ms.partnerCpu.toFixed(2)} ms/read (verify ${ms.verify.toFixed(2)}), owner CPU ${ms.ownerCpu.toFixed(2)} ms/read`,
      );
      return offs.length / r.seconds;
    };
    const sameProcess = async (offs: number[]): Promise<number> => offs.length / (await partnerReads(local!, offs, true));
    // The local reads are fast: the same offsets are cycled through until LOCAL_SECONDS have passed.
    const localReads = async (offs: number[]): Promise<number> => {
      let reads = 0,
        sec = 0;
      while (sec < LOCAL_SECONDS) {
        sec += await pool(offs, CONCURRENCY, async (from) => {
          const q = queryFrom({}, { from, limit: LIMIT });
          const a = await provenQuery(L, q, L.latestCheckpoint()!);
          if (a.entries.length !== LIMIT) throw new Error(`local: ${a.entries.length} entries from ${from}, expected ${LIMIT}`);
        });
        reads += offs.length;
      }
      return reads / sec;
    };
    const direct = async (offs: number[]): Promise<number> => {
      const owner = { origin: ORIGIN, operator: op.did };
      return (
        offs.length /
        (await pool(offs, CONCURRENCY, async (from) => {
          const env = makeRequest(partnerId, seq.next++, { op: 'read', grant, filter: { from, limit: LIMIT } });
          const answer = await answerRequest({ ledger: L, checkpoint: async () => L.latestCheckpoint() }, env.toJSON());
          if (verifyReadAnswer(answer, owner, { from }).entries.length !== LIMIT) throw new Error('direct: short answer');
        }))
      );
    };

    // Warm-up of every path, untimed.
    const warm = offsets().slice(0, 50);
    await inChild(warm, true);
    await localReads(warm);
    await inChild(warm, false);
    await sameProcess(warm);
    await direct(warm);
    cpuV.length = 0;
    cpuU.length = 0;

    const a: number[] = [],
      b: number[] = [],
      u: number[] = [],
      s: number[] = [],
      d: number[] = [];
    for (let r = 0; r < P.rounds; r++) {
      const offs = offsets();
      a.push(await inChild(offs, true));
      b.push(await localReads(offs));
      u.push(await inChild(offs, false));
      s.push(await sameProcess(offs));
      d.push(await direct(offs));
      log(
        `partner round ${r + 1}: partner ${Math.round(a[r])}/s, local ${Math.round(b[r])}/s, unverified ${Math.round(u[r])}/s, same process ${Math.round(s[r])}/s, direct ${Math.round(d[r])}/s`,
      );
    }
    const value = median(a),
      peer = median(b);
    const side = (what: string, xs: number[]): Record<string, unknown> => ({
      what,
      value: round(median(xs)),
      peer: round(peer),
      ratio: round(median(xs) / peer, 3),
      rounds: xs.map((x) => round(x)),
    });
    return {
      what: `partner reads/s of ${LIMIT} entries (grant-scoped, ${CONCURRENCY} in flight) from a child process over loopback MQTT, every signature and inclusion proof verified`,
      peerWhat: `local reads/s in the owner's process: queryFrom + provenQuery of the same filters (what bot-query does), ${CONCURRENCY} in flight`,
      unit: 'reads/s',
      value: round(value),
      peer: round(peer),
      ratio: round(value / peer, 3),
      target: 'ratio >= 0.5',
      meetsTarget: value / peer >= 0.5,
      rounds: { value: a.map((x) => round(x)), peer: b.map((x) => round(x)) },
      cpuMsPerRead: msPerRead(cpuV),
      entries: L.size,
      limit: LIMIT,
      concurrency: CONCURRENCY,
      readsPerRound: P.reads,
      broker: broker.kind,
      scope: `${SCOPED} of ${SIGNERS} device signers, topics plant/# (about half the entries)`,
      unverified: { ...side('the same partner reads without verifyReadAnswer', u), cpuMsPerRead: msPerRead(cpuU) },
      sameProcess: side("the same partner reads (verified) from a second MqttLink in the owner's process", s),
      direct: side("answerRequest + verifyReadAnswer called in the owner's process, no MQTT", d),
    };
  } finally {
    if (child) await stopChild(child);
    if (local) await local.link.close();
    publisher?.stop();
    if (ownerLink) await ownerLink.close();
    if (ledger) await ledger.close();
    await broker.close();
    rmDir(dir);
  }
}

if (require.main === module) {
  if (process.argv.includes('--partner-child')) {
    runChild();
  } else {
    // Direct entry: node dist/bench/partner.js [--short] prints this one figure.
    benchPartner(process.argv.includes('--short')).then(
      (f) => {
        process.stdout.write(JSON.stringify(f, null, 2) + '\n');
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`bench partner failed: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  }
}
