/**
 * Each organisation on its own broker (GitHub issue 15; README "Each organisation on its own
 * broker"): three Mosquitto instances, the hub H of organisation A and the brokers of B and C,
 * which bridge to H with the lines of mosquitto/bridge.conf.example (address replaced). The
 * partners A, B, C (test/consensus-child.ts, separate processes) each connect only to their own
 * organisation's broker and witness the two others, quorum 2 of 3.
 *
 * B's bridge runs through a TCP relay in this process, so the test can cut that one link
 * while every broker and partner keeps running, as a network cut between two companies
 * would: B's entries stay sealed, A's still confirm through C, and once the link is back
 * everything confirms again with no manual action, within a bound.
 *
 * Mosquitto is required (aedes has no bridge): without it the suite skips with the reason,
 * unless BOT_TEST_BROKER=mosquitto, where it fails.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { findMosquitto, Mosquitto } from '../mosquitto';
import { freePort, tmpDir } from '../helpers';
import { call, kill, newPartner, type Partner, spawnPartner } from '../consensus-partner';

const EXAMPLE = path.resolve(__dirname, '../../../mosquitto/bridge.conf.example');
/** How long a restored bridge may take until B's pending entry is confirmed (restart_timeout 1 15 of the example, plus a checkpoint round). */
const RESUME_BOUND_MS = 20000;

/** The example's bridge lines (comments dropped) pointing at address, with the organisation's own remote client id. */
function bridgeSection(address: string, org: string): string {
  const lines = fs
    .readFileSync(EXAMPLE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
  assert.ok(lines.some((l) => l.startsWith('address ')) && lines.some((l) => l.startsWith('remote_clientid ')));
  return lines
    .map((l) => (l.startsWith('address ') ? `address ${address}` : l.startsWith('remote_clientid ') ? `remote_clientid bot-bridge-org-${org}` : l))
    .join('\n');
}

/** A TCP relay from a local port to a target port that can be cut (every connection dropped, nothing accepted) and restored. */
class Relay {
  readonly port: number;
  readonly #target: number;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();

  constructor(port: number, target: number) {
    this.port = port;
    this.#target = target;
  }

  async open(): Promise<void> {
    const server = net.createServer((inbound) => {
      const outbound = net.connect(this.#target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

interface Status {
  status: string;
  confirmations: number;
  witnesses: { did: string }[];
}

async function append(p: Partner): Promise<number> {
  return ((await call(p, 'append', { n: 1 })) as number[])[0];
}

async function waitFor(p: Partner, index: number, ok: (s: Status) => boolean, what: string, ms: number): Promise<Status> {
  const end = Date.now() + ms;
  for (;;) {
    const s = (await call(p, 'status', { index })) as Status;
    if (ok(s)) return s;
    if (Date.now() > end)
      throw new Error(`entry ${index} of ${p.name}: ${what} not reached in ${ms} ms (status ${s.status}, ${s.confirmations} confirmations)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('partners on three bridged Mosquitto brokers (one per organisation)', function () {
  this.timeout(60000);
  const brokers: Mosquitto[] = [];
  let relay: Relay | undefined;
  let t: ReturnType<typeof tmpDir> | undefined;
  let partners: Partner[] = [];
  const P = (n: string): Partner => partners.find((p) => p.name === n)!;

  before(async function () {
    if (!findMosquitto() && process.env.BOT_TEST_BROKER !== 'mosquitto') {
      console.log('      (skipped: Mosquitto is not installed, and aedes has no bridge: apt-get install mosquitto)');
      this.skip();
    }
    const hub = await Mosquitto.start({ bridge: '' }); // Mosquitto whatever BOT_TEST_BROKER says: the bridges' remote
    brokers.push(hub);
    relay = new Relay(await freePort(), hub.port);
    await relay.open();
    // B bridges through the relay (the link the test cuts), C straight to the hub.
    brokers.push(await Mosquitto.start({ bridge: bridgeSection(`127.0.0.1:${relay.port}`, 'b') }));
    brokers.push(await Mosquitto.start({ bridge: bridgeSection(`127.0.0.1:${hub.port}`, 'c') }));
    t = tmpDir('bot-bridged-');
    partners = ['A', 'B', 'C'].map((name) => newPartner(name, t!.dir));
    await Promise.all(partners.map((p, i) => spawnPartner(p, partners, brokers[i].url)));
  });

  after(async () => {
    await Promise.all(partners.map((p) => kill(p))); // exited before their folders are removed
    await relay?.cut();
    for (const b of brokers) await b.close();
    t?.cleanup();
  });

  it('confirms across the bridges: every ledger is cosigned by both partners on the other brokers', async () => {
    for (const p of partners) {
      const i = await append(p);
      const others = partners.filter((q) => q !== p).map((q) => q.did);
      const s = await waitFor(p, i, (x) => x.status === 'confirmed' && x.confirmations === 3, 'confirmed by both others', 15000);
      assert.deepEqual(new Set(s.witnesses.map((w) => w.did)), new Set(others));
    }
  });

  it("one bridge cut: B's entries stay sealed, A's confirm through C; restored: B's confirm again with no manual action, within the bound", async () => {
    await relay!.cut();
    const a = await append(P('A'));
    const sa = await waitFor(P('A'), a, (x) => x.status === 'confirmed', 'confirmed', 15000);
    assert.deepEqual(
      sa.witnesses.map((w) => w.did),
      [P('C').did],
    );
    const b = await append(P('B'));
    await waitFor(P('B'), b, (x) => x.status === 'sealed', 'sealed', 5000);
    await new Promise((r) => setTimeout(r, 1500)); // several checkpoint rounds: still nobody can cosign it
    assert.equal(((await call(P('B'), 'status', { index: b })) as Status).status, 'sealed');

    const restored = Date.now();
    await relay!.open();
    await waitFor(P('B'), b, (x) => x.status === 'confirmed', 'confirmed after the bridge came back', RESUME_BOUND_MS);
    const took = Date.now() - restored;
    assert.ok(took <= RESUME_BOUND_MS, `resumed after ${took} ms`);
    // And B witnesses A again: A's entry appended during the cut ends up cosigned by B too.
    await waitFor(P('A'), a, (x) => x.witnesses.some((w) => w.did === P('B').did), "B's cosignature", RESUME_BOUND_MS);
    const a2 = await append(P('A'));
    await waitFor(P('A'), a2, (x) => x.confirmations === 3, 'confirmed by B and C', 15000);
  });
});
