/**
 * One process of the multi-process confidential test (test/integration/confidential.test.ts):
 * the owner, a mirror or a partner, each with its own MQTT connection, run with
 * child_process.fork. Everything comes over IPC (seeds never on argv):
 *
 *   {cmd:'owner', seed, dir, url, origin}        a LedgerService with scope plant = plant/# (as bot-ledger runs it)
 *   {cmd:'grant', subject, enckey}               issue a read grant on plant/# and wrap the keys to enckey; result: grant id
 *   {cmd:'append', seed, from, n, marker}        n device readings on plant/… through LedgerService.append (sealed)
 *   {cmd:'checkpoint'}                           sign a checkpoint now; result: its size
 *   {cmd:'mirror', seed, dir, url, origin, did}  a LedgerService of its own mirroring the owner, serving partners as "m1"
 *   {cmd:'mirrorState'}                          the mirror's state
 *   {cmd:'partner', seed, url, origin, did}      a partner with an encryption key; result: its enckey envelope
 *   {cmd:'read', grant}                          PartnerClient.readOpen({topic: 'plant/#'}) trying the owner, then mirror m1
 *
 * Answers are {id, result} or {id, error:{code, message}}.
 */
import { fromHex } from '../lib/format/bytes';
import { signEnvelope } from '../lib/format/envelope';
import { Identity } from '../lib/format/identity';
import { LedgerService } from '../lib/service/ledger-service';
import { EncryptionKey } from '../lib/confidential/hpke';
import { encryptionKeyInput } from '../lib/confidential/keys';
import { issueGrant, newGrantId, parseGrantTerms } from '../lib/access/grants';
import { MqttLink } from '../lib/consortium/mqtt-link';
import { fallbackTransport, mirrorTransport, mqttTransport, PartnerClient } from '../lib/access/partner';

interface Msg {
  id: number;
  cmd: string;
  [k: string]: unknown;
}

let service: LedgerService | undefined;
let identity: Identity | undefined;
let seq = 0;
let partner: { id: Identity; key: EncryptionKey; link: MqttLink; origin: string; did: string; seq: number } | undefined;

const str = (v: unknown): string => String(v);

async function run(m: Msg): Promise<unknown> {
  switch (m.cmd) {
    case 'owner': {
      identity = Identity.fromSeed(fromHex(str(m.seed)));
      service = new LedgerService({
        dir: str(m.dir),
        origin: str(m.origin),
        identity,
        checkpointMs: 200,
        link: { url: str(m.url) },
        confidential: { scopes: [{ scope: 'plant', topics: ['plant/#'] }], nextSeq: () => seq++, encryptionKey: () => EncryptionKey.generate() },
      });
      service.on('error', (e) => process.stderr.write(`owner: ${(e as Error).message}\n`));
      service.start();
      await service.confidential();
      await service.consensus;
      return { did: identity.did };
    }
    case 'grant': {
      const s = service as LedgerService;
      const l = await s.lease.ledger;
      const terms = parseGrantTerms({
        id: newGrantId(),
        subject: str(m.subject),
        ledger: l.origin,
        actions: ['read'],
        scope: { signers: '*', topics: ['plant/#'] },
        expires: Date.now() + 3600e3,
      });
      await issueGrant(l, identity as Identity, () => seq++, terms);
      const owner = await s.confidential();
      const keys = await owner?.addReader(terms, m.enckey);
      return { grant: terms.id, keys };
    }
    case 'append': {
      const dev = Identity.fromSeed(fromHex(str(m.seed)));
      const from = Number(m.from);
      const out: number[] = [];
      for (let i = 0; i < Number(m.n); i++) {
        const r = signEnvelope(dev, {
          kind: 'reading',
          seq: from + i,
          ts: Date.now(),
          topic: `plant/line${i}/temp`,
          payload: { c: 20 + i, tag: str(m.marker) },
        });
        out.push((await (service as LedgerService).append(r.toJSON())).index);
      }
      return out;
    }
    case 'checkpoint':
      return (await (service as LedgerService).checkpointNow())?.size;
    case 'mirror': {
      identity = Identity.fromSeed(fromHex(str(m.seed)));
      service = new LedgerService({
        dir: str(m.dir),
        origin: 'example.com/mirror-node',
        identity,
        checkpointMs: 0,
        link: { url: str(m.url) },
        mirrored: [{ origin: str(m.origin), did: str(m.did) }],
        mirrorName: 'm1',
      });
      service.on('error', (e) => process.stderr.write(`mirror: ${(e as Error).message}\n`));
      service.start();
      await service.consensus;
      return true;
    }
    case 'mirrorState':
      return (service as LedgerService).mirrors()[0] ?? null;
    case 'partner': {
      const id = Identity.fromSeed(fromHex(str(m.seed)));
      const key = await EncryptionKey.generate();
      const link = new MqttLink({ url: str(m.url), reconnectMs: 100 });
      link.on('error', () => undefined);
      link.start();
      partner = { id, key, link, origin: str(m.origin), did: str(m.did), seq: 0 };
      return signEnvelope(id, encryptionKeyInput(key, partner.seq++, Date.now())).toJSON();
    }
    case 'read': {
      const p = partner as NonNullable<typeof partner>;
      const owner = { origin: p.origin, operator: p.did };
      const client = new PartnerClient({
        owner,
        grant: str(m.grant),
        identity: p.id,
        nextSeq: () => p.seq++,
        encryptionKey: p.key,
        transport: fallbackTransport([mqttTransport(p.link, owner, 1500), mirrorTransport(p.link, owner, 'm1', 5000)]),
      });
      const r = await client.readOpen({ topic: 'plant/#' });
      return { size: r.checkpoint.size, entries: r.entries.map((e) => ({ kind: e.leaf.kind, opened: e.opened ?? null, error: e.error ?? null })) };
    }
    default:
      throw new Error(`unknown command ${m.cmd}`);
  }
}

process.on('message', (m: Msg) => {
  run(m).then(
    (result) => process.send?.({ id: m.id, result }),
    (err: unknown) => process.send?.({ id: m.id, error: { code: (err as { code?: string }).code, message: (err as Error).message } }),
  );
});
