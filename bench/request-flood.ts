/**
 * How many partner requests per second an owner absorbs over MQTT (issue 10, defect 7; the
 * figure in README "Partner access › Limits"). Not part of bench/run.ts: run it alone,
 *
 *   node scripts/build.js --keep && node dist/bench/request-flood.js [--seconds 3]
 *
 * Owner (this process): a ledger of 200 device readings, one read grant for a partner, a
 * signed checkpoint, and a LedgerPublisher on its own MqttLink answering the RPC method
 * "request" with answerRequest (as a bot-ledger with a broker does), on the loopback
 * Mosquitto of bench/consensus.ts (`set_tcp_nodelay true`; aedes when Mosquitto is missing).
 *
 * Flooder (a child process, its own MqttLink): keeps WINDOW (64) requests in flight for
 * `seconds` per scenario and counts the answers (results and refusals by code); the value is
 * answers per second, i.e. what the owner absorbed. Scenarios, rate limits off unless said:
 *   junk        an RPC "request" whose params are no envelope (E_ENVELOPE)
 *   no-grant    signed requests from 2,000 throw-away keys naming the partner's grant (E_NO_GRANT;
 *               refused on the grant lookup, before the signature is checked)
 *   bad-sig     requests claiming the partner's key with a signature that does not verify (E_SIGNATURE)
 *   reads       the partner's valid reads of 1 entry (signed in the child as they go)
 *   limited     bad-sig again under the default limits (20/s per partner, 200/s in total): E_RATE
 * The owner's CPU time per answer is given beside each.
 */
import { fromHex } from '../lib/format/bytes';
import { answerRequest, makeRequest } from '../lib/access/access';
import { signEnvelope } from '../lib/format/envelope';
import { grantInput } from '../lib/access/grants';
import { Identity } from '../lib/format/identity';
import { Ledger } from '../lib/store/ledger';
import { type MqttLink } from '../lib/consortium/mqtt-link';
import { ledgerId } from '../lib/consortium/quorum';
import { RateLimiter } from '../lib/access/rate-limit';
import { LedgerPublisher, ledgerTopics } from '../lib/consortium/publisher';
import { type Child, connectLink, forkChild, log, now, ORIGIN, rmDir, round, stopChild, tmpDir } from './common';
import { startBroker } from './consensus';

const WINDOW = 64;
const THROWAWAY = 2000;
const SCENARIOS = ['junk', 'no-grant', 'bad-sig', 'reads', 'limited'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Setup {
  url: string;
  rpc: string;
  grant: string;
  seed: string;
}

// ------------------------------------------------------------------------------ flooder child

function runChild(): void {
  let link: MqttLink | undefined;
  let setup: Setup | undefined;
  let partner: Identity | undefined;
  let seq = 1;
  let throwaway: unknown[] = [];
  const make = (s: Scenario, i: number): unknown => {
    const p = partner as Identity;
    const grant = (setup as Setup).grant;
    switch (s) {
      case 'junk':
        return { hello: i };
      case 'no-grant':
        return throwaway[i % throwaway.length];
      case 'reads':
        return makeRequest(p, seq++, { op: 'read', grant, filter: { limit: 1 } }).toJSON();
      default: {
        // bad-sig, limited: the partner's key claimed, a signature of another request
        const a = makeRequest(p, 1_000_000 + i, { op: 'read', grant }).toJSON();
        const b = makeRequest(p, 2_000_000 + i, { op: 'read', grant }).toJSON();
        return { ...a, sig: b.sig };
      }
    }
  };
  process.on('message', (msg: { id: number; cmd: string; scenario?: Scenario; seconds?: number } & Partial<Setup>) => {
    const work = async (): Promise<unknown> => {
      if (msg.cmd === 'init') {
        setup = msg as unknown as Setup;
        partner = Identity.fromSeed(fromHex(setup.seed));
        link = await connectLink(setup.url, 'flooder');
        const t = now();
        throwaway = Array.from({ length: THROWAWAY }, () => makeRequest(Identity.generate(), 1, { op: 'read', grant: (setup as Setup).grant }).toJSON());
        return { keygenSeconds: now() - t };
      }
      if (msg.cmd === 'run') {
        const s = msg.scenario as Scenario;
        const l = link as MqttLink;
        const rpc = (setup as Setup).rpc;
        const end = now() + (msg.seconds ?? 3);
        const codes: Record<string, number> = {};
        let answers = 0;
        let i = 0;
        const t = now();
        await Promise.all(
          Array.from({ length: WINDOW }, async () => {
            while (now() < end) {
              const params = make(s, i++);
              try {
                await l.request(rpc, 'request', params, 10000);
                codes.ok = (codes.ok ?? 0) + 1;
              } catch (err) {
                const code = (err as { code?: string }).code ?? 'other';
                codes[code] = (codes[code] ?? 0) + 1;
                if (code === 'E_TIMEOUT' || code === 'E_CLOSED') continue;
              }
              answers++;
            }
          }),
        );
        return { answers, seconds: now() - t, codes };
      }
      if (msg.cmd === 'stop') {
        if (link) await link.close();
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

// ------------------------------------------------------------------------------------ owner

/** Answers/s the owner gives under each scenario, with its CPU ms per answer. */
export async function benchRequestFlood(seconds: number): Promise<Record<string, unknown>> {
  const dir = tmpDir('flood');
  const broker = await startBroker({ nodelay: true });
  let ledger: Ledger | undefined;
  let ownerLink: MqttLink | undefined;
  let publisher: LedgerPublisher | undefined;
  let child: Child | undefined;
  try {
    const op = Identity.generate();
    const device = Identity.generate();
    const partner = Identity.generate();
    ledger = await Ledger.open({ dir, origin: ORIGIN, identity: op });
    const L = ledger;
    for (let i = 0; i < 200; i++) await L.append(signEnvelope(device, { kind: 'reading', seq: i, ts: Date.now(), topic: 'plant/1/temp', payload: { i } }));
    const grant = 'flood-partner-read';
    await L.append(
      signEnvelope(
        op,
        grantInput(
          { id: grant, subject: partner.did, ledger: ORIGIN, actions: ['read'], scope: { signers: '*' }, expires: Date.now() + 3_600_000 },
          1,
          Date.now(),
        ),
      ),
    );
    await L.checkpoint();
    const id = ledgerId(ORIGIN, op.did);
    ownerLink = await connectLink(broker.url, 'owner');
    let limiter: RateLimiter | undefined;
    publisher = new LedgerPublisher(L, ownerLink, id, {
      requests: (p) => answerRequest({ ledger: L, checkpoint: async () => L.latestCheckpoint(), rateLimiter: limiter }, p),
    });
    publisher.start();
    child = forkChild(__filename, '--flood-child', 'flooder', 120000);
    const init = (await child.call('init', { url: broker.url, rpc: ledgerTopics(id).rpc, grant, seed: partner.exportSeed().toString('hex') }, 120000)) as {
      keygenSeconds: number;
    };
    log(
      `request-flood: broker ${broker.kind}; ${THROWAWAY} throw-away keys made in ${init.keygenSeconds.toFixed(1)} s; ${WINDOW} in flight, ${seconds} s per scenario`,
    );
    await child.call('run', { scenario: 'reads', seconds: 0.5 }); // warm-up
    const out: Record<string, unknown> = {};
    for (const s of SCENARIOS) {
      limiter = s === 'limited' ? new RateLimiter() : undefined;
      const cpu = process.cpuUsage();
      const r = (await child.call('run', { scenario: s, seconds }, (seconds + 30) * 1000)) as {
        answers: number;
        seconds: number;
        codes: Record<string, number>;
      };
      const used = process.cpuUsage(cpu);
      const perSecond = r.answers / r.seconds;
      out[s] = { answersPerSecond: round(perSecond), ownerCpuMsPerAnswer: round((used.user + used.system) / 1e3 / Math.max(1, r.answers), 3), codes: r.codes };
      log(`request-flood ${s}: ${Math.round(perSecond)} answers/s, ${JSON.stringify(r.codes)}`);
    }
    return {
      what: `answers/s of an owner over loopback MQTT, ${WINDOW} requests in flight from one child process`,
      broker: broker.kind,
      seconds,
      scenarios: out,
    };
  } finally {
    if (child) await stopChild(child);
    publisher?.stop();
    if (ownerLink) await ownerLink.close();
    if (ledger) await ledger.close();
    await broker.close();
    rmDir(dir);
  }
}

if (require.main === module) {
  if (process.argv.includes('--flood-child')) {
    runChild();
  } else {
    const i = process.argv.indexOf('--seconds');
    const seconds = i > 0 ? Number(process.argv[i + 1]) : 3;
    benchRequestFlood(seconds > 0 ? seconds : 3).then(
      (f) => {
        process.stdout.write(JSON.stringify(f, null, 2) + '\n');
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`bench request-flood failed: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  }
}
