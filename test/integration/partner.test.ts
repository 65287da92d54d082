/**
 * Partner access end to end (docs/design.md "Partner access"): two Node-RED runtimes in their own
 * processes with this package, a real Mosquitto broker, flows deployed through the admin API
 * with their credentials.
 *
 *   A (owner)   its operator key; a ledger with the broker (answers requests on its rpc topic);
 *               POST /reading  → sign with A's device key → append
 *               POST /grant    → bot-grant (grant / revoke / list)
 *               POST /bot/request → bot-query (answer partner requests) → http response
 *   B (partner) its own key and ledger with the broker; two bot-partner configs for A's ledger,
 *               one over MQTT (through B's ledger connection), one over HTTP (through a proxy in
 *               this process that can tamper with answers);
 *               POST /read/{mqtt,http}   → bot-query (partner)
 *               POST /supply/{mqtt,http} → sign with B's key → bot-append (partner)
 *               Catch → http response {error:{code,message}} (422), so the test sees a supply's
 *               refusals; bot-query behind http in answers its own failures (nodes/http-answer.ts:
 *               403 for an access refusal, 502 for an owner's answer that did not verify).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { canonicalBytes, fromBase64, Identity, leafHash, NoteVerifier, openNote, parseCheckpoint, verifyInclusion } from '../../lib';
import { makeRequest } from '../../lib/access/access';
import { freePort, stopChild, tmpDir } from '../helpers';
import { Mosquitto } from '../mosquitto';

const { prepareUserDir } = require('../../../scripts/demo-lib.js') as { prepareUserDir(userDir: string, port: number): void };

const A_OP = Identity.generate();
const A_DEV = Identity.generate();
const B_ME = Identity.generate();
const A_ORIGIN = 'owner.example/a';
const B_ORIGIN = 'partner.example/b';
const SECRETS = [A_OP, A_DEV, B_ME].flatMap((id) => [
  id.exportSeed().toString('hex'),
  id.exportSeed().toString('base64'),
  id.exportSeed().toString('base64url'),
]);

type Flow = Record<string, unknown>[];
interface Runtime {
  base: string;
  child: ChildProcess;
  output: () => string;
}
interface Reply {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
}

async function startRuntime(dir: string): Promise<Runtime> {
  const port = await freePort();
  prepareUserDir(dir, port);
  let out = '';
  const child = spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', dir, '--settings', path.join(dir, 'settings.js')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { base: `http://127.0.0.1:${port}`, child, output: () => out };
}

async function waitUp(r: Runtime, ms = 30000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (r.child.exitCode !== null) throw new Error(`Node-RED exited:\n${r.output()}`);
    try {
      if ((await fetch(`${r.base}/settings`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((res) => setTimeout(res, 150));
  }
  throw new Error(`Node-RED did not start:\n${r.output()}`);
}

async function deploy(r: Runtime, flows: Flow): Promise<void> {
  const res = await fetch(`${r.base}/flows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
    body: JSON.stringify({ flows }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function post(url: string, body: unknown): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20000),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Reply['body'] };
  } catch {
    throw new Error(`HTTP ${res.status} ${url}: ${text}`);
  }
}

/** Retry a POST until `ok` accepts the reply (the runtime is deploying, MQTT connecting). */
async function postUntil(url: string, body: unknown, ok: (r: Reply) => boolean, ms = 15000): Promise<Reply> {
  const end = Date.now() + ms;
  let last: Reply | Error | undefined;
  while (Date.now() < end) {
    try {
      last = await post(url, body);
      if (ok(last)) return last;
    } catch (err) {
      last = err as Error;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no acceptable answer from ${url}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

/* Function nodes of the flows. */
const TOPIC_VALUE = 'msg.topic = msg.payload.topic; msg.payload = msg.payload.value; return msg;';
const RESULT = 'msg.payload = { payload: msg.payload, grant: msg.grant, ledger: msg.ledger }; return msg;';
const REFUSAL = 'msg.payload = { error: { code: msg.error && msg.error.code, message: msg.error && msg.error.message } }; msg.statusCode = 422; return msg;';

function httpChain(tab: string, name: string, url: string, chain: Record<string, unknown>[]): Flow {
  const ids = chain.map((_, i) => `${tab}-${name}-${i}`);
  return [
    { id: `${tab}-${name}-in`, type: 'http in', z: tab, url, method: 'post', upload: false, wires: [[ids[0]]] },
    ...chain.map((n, i) => ({ id: ids[i], z: tab, ...n, wires: [[ids[i + 1] ?? `${tab}-${name}-res`]] })),
    { id: `${tab}-${name}-res`, type: 'http response', z: tab, statusCode: '', headers: {} },
  ];
}

function catchToResponse(tab: string): Flow {
  return [
    { id: `${tab}-catch`, type: 'catch', z: tab, scope: null, uncaught: false, wires: [[`${tab}-refusal`]] },
    { id: `${tab}-refusal`, type: 'function', z: tab, func: REFUSAL, outputs: 1, wires: [[`${tab}-refusal-res`]] },
    { id: `${tab}-refusal-res`, type: 'http response', z: tab, statusCode: '', headers: {} },
  ];
}

function ownerFlow(broker: string): Flow {
  const z = 'a-tab';
  return [
    { id: z, type: 'tab', label: 'owner A' },
    { id: 'a-op', type: 'bot-identity', name: 'A operator', credentials: { secretKey: A_OP.exportSeed().toString('hex') } },
    { id: 'a-dev', type: 'bot-identity', name: 'A device', credentials: { secretKey: A_DEV.exportSeed().toString('hex') } },
    {
      id: 'a-ledger',
      type: 'bot-ledger',
      name: 'A',
      origin: A_ORIGIN,
      identity: 'a-op',
      dir: '',
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      broker,
      clientId: '',
      witnesses: '',
      quorum: '',
      witnessed: '',
    },
    ...httpChain(z, 'reading', '/reading', [
      { type: 'function', func: TOPIC_VALUE, outputs: 1 },
      { type: 'bot-sign', identity: 'a-dev', name: '' },
      { type: 'bot-append', ledger: 'a-ledger', name: '' },
      { type: 'function', func: RESULT, outputs: 1 },
    ]),
    ...httpChain(z, 'grant', '/grant', [
      { type: 'bot-grant', ledger: 'a-ledger', name: '', subject: '', actions: 'read', signers: '', topics: '', validDays: 30 },
      { type: 'function', func: RESULT, outputs: 1 },
    ]),
    ...httpChain(z, 'serve', '/bot/request', [{ type: 'bot-query', ledger: 'a-ledger', mode: 'serve', name: 'answer partners' }]),
    ...catchToResponse(z),
  ];
}

function partnerFlow(broker: string, grant: string, proxyUrl: string): Flow {
  const z = 'b-tab';
  const partner = { type: 'bot-partner', origin: A_ORIGIN, operator: A_OP.did, grant, identity: 'b-me', timeoutMs: 8000 };
  return [
    { id: z, type: 'tab', label: 'partner B' },
    { id: 'b-me', type: 'bot-identity', name: 'B', credentials: { secretKey: B_ME.exportSeed().toString('hex') } },
    {
      id: 'b-ledger',
      type: 'bot-ledger',
      name: 'B',
      origin: B_ORIGIN,
      identity: 'b-me',
      dir: '',
      checkpointMs: 0,
      checkpointEntries: 0,
      maxEntryBytes: 65536,
      broker,
      clientId: '',
      witnesses: '',
      quorum: '',
      witnessed: '',
    },
    { id: 'b-mqtt', name: 'A over MQTT', ...partner, via: 'mqtt', ledger: 'b-ledger' },
    { id: 'b-http', name: 'A over HTTP', ...partner, via: 'http', url: proxyUrl },
    ...(['mqtt', 'http'] as const).flatMap((via) => [
      ...httpChain(z, `read-${via}`, `/read/${via}`, [{ type: 'bot-query', mode: 'partner', partner: `b-${via}`, name: '' }]),
      ...httpChain(z, `supply-${via}`, `/supply/${via}`, [
        { type: 'function', func: TOPIC_VALUE, outputs: 1 },
        { type: 'bot-sign', identity: 'b-me', name: '' },
        { type: 'bot-append', mode: 'partner', partner: `b-${via}`, name: '' },
        { type: 'function', func: RESULT, outputs: 1 },
      ]),
    ]),
    ...catchToResponse(z),
  ];
}

/** What a proxy between B and A's HTTP endpoint does to read answers. */
type Tamper = 'none' | 'leaf' | 'proof';

describe('partner access between two Node-RED runtimes (MQTT and HTTP)', function () {
  this.timeout(90000);
  let t: ReturnType<typeof tmpDir>;
  let broker: Mosquitto | undefined;
  let A: Runtime | undefined;
  let B: Runtime | undefined;
  let proxy: http.Server | undefined;
  let tamper: Tamper = 'none';
  let grantId = '';
  let aSizeBefore = 0;

  before(async () => {
    t = tmpDir('bot-partner-');
    broker = await Mosquitto.start();
    [A, B] = await Promise.all([startRuntime(path.join(t.dir, 'a')), startRuntime(path.join(t.dir, 'b'))]);
    await Promise.all([waitUp(A), waitUp(B)]);
    await deploy(A, ownerFlow(broker.url));
    // The proxy between B and A's HTTP endpoint: passes requests on, alters answers on demand.
    const aBase = A.base;
    proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        fetch(`${aBase}${req.url ?? '/'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
          .then(async (r) => {
            const body = (await r.json()) as { entries?: { leaf: { payload: unknown }; proof: string[] }[] };
            if (tamper !== 'none' && body.entries && body.entries.length > 0) {
              const e = body.entries[0];
              if (tamper === 'leaf') e.leaf.payload = { i: 'forged' };
              else {
                const h = Buffer.from(e.proof[0], 'base64');
                h[0] ^= 1;
                e.proof[0] = h.toString('base64');
              }
            }
            res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          })
          .catch((err: Error) => res.writeHead(502).end(err.message));
      });
    });
    const proxyPort = await freePort();
    await new Promise<void>((r) => proxy?.listen(proxyPort, '127.0.0.1', r));

    // A: readings, then a grant to B (read + append), whose id B's bot-partner needs.
    for (const topic of ['plant/1/temp', 'plant/1/hum', 'plant/2/temp', 'plant/2/hum']) {
      const r = await postUntil(`${A.base}/reading`, { topic, value: { c: 20 } }, (x) => x.status === 200);
      assert.equal((r.body.ledger as { origin: string }).origin, A_ORIGIN);
    }
    const g = await post(`${A.base}/grant`, {
      op: 'grant',
      subject: B_ME.did,
      actions: ['read', 'append'],
      scope: { signers: [A_DEV.did, B_ME.did], topics: ['plant/+/temp', 'supply/#'] },
    });
    assert.equal(g.status, 200, JSON.stringify(g.body));
    grantId = (g.body.grant as { id: string }).id;
    assert.equal((g.body.payload as { kind: string }).kind, 'grant');
    await deploy(B, partnerFlow(broker.url, grantId, `http://127.0.0.1:${proxyPort}/bot/request`));
  });

  after(async () => {
    await Promise.all([stopChild(A?.child), stopChild(B?.child)]);
    if (proxy) {
      proxy.closeAllConnections();
      await new Promise((r) => proxy?.close(r));
    }
    await broker?.close();
    t?.cleanup();
  });

  const aEntries = async (): Promise<{ index: number; leaf: { signer: string; topic?: string; payload: unknown } }[]> => {
    const r = await fetch(`${A?.base}/bot-ledger/ledgers/a-ledger/entries?limit=100`);
    return ((await r.json()) as { entries: { index: number; leaf: { signer: string; topic?: string; payload: unknown } }[] }).entries;
  };

  /** Check a verified read as B output it, again, with nothing but the owner's key. */
  function checkRead(body: Reply['body']): number[] {
    const v = body as unknown as {
      checkpoint: { origin: string; size: number; note: string };
      entries: { index: number; leaf: { signer: string; topic: string }; leafHash: string }[];
    };
    assert.equal(v.checkpoint.origin, A_ORIGIN);
    const cp = parseCheckpoint(openNote(v.checkpoint.note, [NoteVerifier.ed25519(A_ORIGIN, A_OP.publicKey)]).text);
    assert.equal(cp.size, v.checkpoint.size);
    for (const e of v.entries) {
      assert.equal(e.leafHash, leafHash(canonicalBytes(e.leaf as never)).toString('base64'));
      assert.match(e.leaf.topic, /^(plant\/\d+\/temp|supply\/.*)$/, 'only in-scope entries');
    }
    return v.entries.map((e) => e.index);
  }

  for (const via of ['mqtt', 'http'] as const) {
    it(`reads only in-scope entries, all verified, over ${via.toUpperCase()}`, async () => {
      const r = await postUntil(`${B?.base}/read/${via}`, {}, (x) => x.status === 200, 20000);
      assert.deepEqual(checkRead(r.body), [0, 2]);
      const one = await post(`${B?.base}/read/${via}`, { topic: 'plant/2/#' });
      assert.equal(one.status, 200, JSON.stringify(one.body));
      assert.deepEqual(checkRead(one.body), [2]);
    });

    it(`is refused outside the grant's scope (E_SCOPE) over ${via.toUpperCase()}`, async () => {
      const r = await post(`${B?.base}/read/${via}`, { topic: 'plant/1/hum' });
      assert.equal(r.status, 403, 'bot-query behind http in answers its failure itself (nodes/http-answer.ts)');
      assert.equal(r.body.error?.code, 'E_SCOPE', JSON.stringify(r.body));
      const s = await post(`${B?.base}/read/${via}`, { signer: A_OP.did });
      assert.equal(s.body.error?.code, 'E_SCOPE', JSON.stringify(s.body));
    });
  }

  it("supplies entries under the append grant (in A's ledger, receipt returned) and is refused out-of-scope supply", async () => {
    aSizeBefore = (await aEntries()).length;
    const got: number[] = [];
    for (const via of ['mqtt', 'http'] as const) {
      const r = await post(`${B?.base}/supply/${via}`, { topic: `supply/tank/${via}`, value: { litres: 3 } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const receipt = r.body.ledger as { origin: string; index: number; leafHash: string; proof: string[]; checkpoint: { note: string } };
      assert.equal(receipt.origin, A_ORIGIN);
      assert.equal(receipt.leafHash, leafHash(canonicalBytes(r.body.payload as never)).toString('base64'));
      // The receipt is evidence: its proof leads to a checkpoint signed by A's operator, checked here with nothing else.
      const cp = parseCheckpoint(openNote(receipt.checkpoint.note, [NoteVerifier.ed25519(A_ORIGIN, A_OP.publicKey)]).text);
      verifyInclusion(
        receipt.index,
        cp.size,
        fromBase64(receipt.leafHash, 'leaf hash'),
        receipt.proof.map((h) => fromBase64(h, 'proof hash')),
        cp.root,
      );
      got.push(receipt.index);
    }
    let entries = await aEntries();
    assert.equal(entries.length, aSizeBefore + 2);
    for (const [k, i] of got.entries()) {
      const e = entries.find((x) => x.index === i);
      assert.equal(e?.leaf.signer, B_ME.did);
      assert.equal(e?.leaf.topic, `supply/tank/${k === 0 ? 'mqtt' : 'http'}`);
    }
    for (const via of ['mqtt', 'http'] as const) {
      const r = await post(`${B?.base}/supply/${via}`, { topic: 'elsewhere/tank', value: { litres: 4 } });
      assert.equal(r.status, 422);
      assert.equal(r.body.error?.code, 'E_SCOPE', JSON.stringify(r.body));
    }
    entries = await aEntries();
    assert.equal(entries.length, aSizeBefore + 2, 'nothing appended out of scope');
    // B reads back what it supplied.
    const back = await post(`${B?.base}/read/mqtt`, { topic: 'supply/#' });
    assert.deepEqual(checkRead(back.body), got);
  });

  for (const kind of ['leaf', 'proof'] as const) {
    it(`detects a tampered answer (altered ${kind}): ${kind === 'leaf' ? 'E_SIGNATURE' : 'E_PROOF'} naming the entry, no output`, async () => {
      tamper = kind;
      try {
        const r = await post(`${B?.base}/read/http`, {});
        assert.equal(r.status, 502, JSON.stringify(r.body)); // the owner's (upstream) answer did not verify
        assert.equal(r.body.error?.code, kind === 'leaf' ? 'E_SIGNATURE' : 'E_PROOF', JSON.stringify(r.body));
        assert.match(r.body.error?.message ?? '', /(^|: )entry #0: /);
        assert.ok(!('entries' in r.body), 'nothing of the answer came out');
      } finally {
        tamper = 'none';
      }
      assert.equal((await post(`${B?.base}/read/http`, {})).status, 200, 'the untampered answer still verifies');
    });
  }

  it('is refused after revocation (E_REVOKED) over MQTT and HTTP, for reads and supplies', async () => {
    const r = await post(`${A?.base}/grant`, { op: 'revoke', grant: grantId });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const list = await post(`${A?.base}/grant`, { op: 'list' });
    assert.deepEqual(
      (list.body.payload as { id: string; status: string }[]).map((g) => [g.id, g.status]),
      [[grantId, 'revoked']],
    );
    const size = (await aEntries()).length;
    for (const via of ['mqtt', 'http'] as const) {
      const read = await post(`${B?.base}/read/${via}`, {});
      assert.equal(read.status, 403);
      assert.equal(read.body.error?.code, 'E_REVOKED', JSON.stringify(read.body));
      const supply = await post(`${B?.base}/supply/${via}`, { topic: 'supply/late', value: 1 });
      assert.equal(supply.body.error?.code, 'E_REVOKED', JSON.stringify(supply.body));
    }
    assert.equal((await aEntries()).length, size, 'nothing appended after revocation');
    // A's endpoint directly, as a partner without Node-RED: refused with 403, the same request again 409.
    const req = makeRequest(B_ME, 1e12, { op: 'read', grant: grantId }).toJSON();
    const first = await post(`${A?.base}/bot/request`, req);
    assert.equal(first.status, 403);
    assert.equal(first.body.error?.code, 'E_REVOKED');
    const again = await post(`${A?.base}/bot/request`, req);
    assert.equal(again.status, 409);
    assert.equal(again.body.error?.code, 'E_REPLAY');
  });

  it('the example flows work as their comments say: the owner grants, the reader supplies and reads', async () => {
    const example = (f: string): Flow => JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../examples', f), 'utf8')) as Flow;
    const key = (id: Identity): Record<string, unknown> => ({ credentials: { secretKey: id.exportSeed().toString('hex') } });
    // Owner: the broker of this test, the partner's did:key in the grant node (step 1 of its comments).
    const owner = example('Partner access - owner.json').map((n) =>
      n.type === 'bot-ledger'
        ? { ...n, broker: broker?.url }
        : n.id === 'po-grant'
          ? { ...n, subject: B_ME.did }
          : n.type === 'bot-identity'
            ? { ...n, ...key(A_OP) }
            : n,
    );
    await deploy(A as Runtime, owner);
    /** Click an inject node (404 while a deploy is still starting the flows). */
    const inject = async (r: Runtime | undefined, id: string): Promise<void> => {
      const end = Date.now() + 10000;
      for (;;) {
        const res = await fetch(`${r?.base}/inject/${id}`, { method: 'POST' });
        if (res.status === 200) return;
        if (res.status !== 404 || Date.now() > end) assert.fail(`inject ${id}: HTTP ${res.status} ${await res.text()}`);
        await new Promise((ok) => setTimeout(ok, 100));
      }
    };
    const ownerEntries = async (): Promise<{ index: number; leaf: { kind: string; signer: string; topic?: string; payload: Record<string, unknown> } }[]> => {
      const r = await fetch(`${A?.base}/bot-ledger/ledgers/po-ledger/entries?limit=1000`);
      return r.ok ? ((await r.json()) as { entries: [] }).entries : [];
    };
    const waitFor = async <T>(what: string, f: () => Promise<T | undefined>): Promise<T> => {
      const end = Date.now() + 15000;
      while (Date.now() < end) {
        const v = await f();
        if (v !== undefined) return v;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for ${what}\n${A?.output()}\n${B?.output()}`);
    };
    await waitFor('the owner ledger', async () => ((await fetch(`${A?.base}/bot-ledger/ledgers/po-ledger/entries`)).ok ? true : undefined));
    await inject(A, 'po-grant-in');
    const grant = await waitFor('the grant entry', async () => (await ownerEntries()).find((e) => e.leaf.kind === 'grant'));
    assert.equal(grant.leaf.signer, A_OP.did);
    // Reader: the owner's did:key and grant id in both bot-partner nodes (step 1 of its comments).
    const reader = example('Partner access - reader.json').map((n) =>
      n.type === 'bot-ledger'
        ? { ...n, broker: broker?.url }
        : n.type === 'bot-partner'
          ? { ...n, operator: A_OP.did, grant: grant.leaf.payload.id, url: n.via === 'http' ? `${A?.base}/bot/request` : n.url }
          : n.type === 'bot-identity'
            ? { ...n, ...key(B_ME) }
            : n.type === 'debug'
              ? { ...n, console: true }
              : n,
    );
    await deploy(B as Runtime, reader);
    // Click "supply a reading" (again every 2 s while the reader's MQTT connection comes up).
    let clicked = 0;
    const supplied = await waitFor('the supplied entry in the owner ledger', async () => {
      if (Date.now() - clicked > 2000) {
        clicked = Date.now();
        await inject(B, 'pr-supply-in');
      }
      return (await ownerEntries()).find((e) => e.leaf.signer === B_ME.did);
    });
    assert.equal(supplied.leaf.topic, 'supply/tank');
    await waitFor('a temperature reading', async () => ((await ownerEntries()).some((e) => e.leaf.topic === 'plant/1/temp') ? true : undefined));
    const before = B?.output().length ?? 0; // (a click before the MQTT connection was up was refused: E_CLOSED)
    await inject(B, 'pr-read-in');
    await inject(B, 'pr-read-http-in');
    const log = await waitFor('two verified reads in the reader log', async () => {
      const out = B?.output().slice(before) ?? '';
      return (out.match(/\[debug:verified entries\]/g) ?? []).length >= 2 ? out : undefined;
    });
    assert.ok(!/\[debug:refused \/ not verified\]/.test(log), log);
    assert.match(log, /origin"?:\s*['"]example\.com\/owner['"]/);
  });

  it("never shows a secret key in either runtime's log", () => {
    for (const r of [A, B]) for (const s of SECRETS) assert.ok(!r?.output().includes(s), 'a secret leaked into a Node-RED log');
    assert.ok(!/\[error\] \[bot-(ledger|grant)/.test(A?.output() ?? ''), A?.output());
    // Each request got exactly one answer: a refused read or supply never also reached the http response of its success path.
    for (const r of [A, B]) assert.ok(!/No response object|headers after they are sent/i.test(r?.output() ?? ''), r?.output());
    if (process.env.BOT_SHOW_LOGS) console.log(A?.output(), B?.output());
  });
});
