/**
 * Issue 11, defect 3, in a real Node-RED runtime over real HTTP: a request that reaches
 * bot-query through `http in` is always answered (`http response`), also when the query fails
 * (`?limit=abc` → 400 with the reason) or the node is not configured (500), never left hanging.
 * The flow is the shipped "Query with proofs" example.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { freePort } from '../helpers';
import { readExample } from './examples';
import { ALL_NODES, type FlowNode, freshUserDir, helper, nextMessages, until } from './util';

const httpIn = require('@node-red/nodes/core/network/21-httpin.js') as unknown;
const change = require('@node-red/nodes/core/function/15-change.js') as unknown;
const inject = require('@node-red/nodes/core/common/20-inject.js') as unknown;
const debug = require('@node-red/nodes/core/common/21-debug.js') as unknown;

/* The HTTP server of the test serves the runtime's httpNode app (the helper does not listen for it). */
let httpNode: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
const exposeHttp = (RED: {
  nodes: { createNode(n: unknown, d: unknown): void; registerType(t: string, f: unknown): void };
  httpNode: typeof httpNode;
}): void => {
  RED.nodes.registerType('expose-http', function (this: unknown, def: unknown) {
    RED.nodes.createNode(this, def);
    httpNode = RED.httpNode;
  });
};
const NODES = [...ALL_NODES, httpIn, change, inject, debug, exposeHttp];

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; entries?: unknown[]; checkpoint?: string | null };
}

describe('bot-query behind http in always answers (Node-RED, real HTTP)', function () {
  this.timeout(20000);
  let userDir: string;
  let server: http.Server;
  let base: string;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = http.createServer((req, res) => {
      if (httpNode) httpNode(req, res);
      else res.writeHead(503).end();
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    userDir = freshUserDir();
    httpNode = undefined;
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  /** GET a path; a hang fails the test after 4 s instead of waiting for mocha's timeout. */
  const get = async (p: string): Promise<Answer> => {
    const r = await fetch(`${base}${p}`, { signal: AbortSignal.timeout(4000) });
    return { status: r.status, body: (await r.json()) as Answer['body'] };
  };

  it('the query-with-proofs example answers ?limit=abc with 400 and the reason, and good queries with 200', async () => {
    const example = readExample('Query with proofs');
    const tab = example.find((n) => n.type === 'tab')?.id as string;
    const f: FlowNode[] = example.map((n) =>
      n.type === 'inject' ? { ...n, repeat: '', once: false } : n.type === 'bot-ledger' ? { ...n, dir: path.join(userDir, 'ex3') } : n,
    );
    f.push({ id: 'x', type: 'expose-http', z: tab });
    // A second endpoint whose bot-query has no ledger: a node that is not configured answers 500.
    f.push({ id: 'hin2', type: 'http in', z: tab, url: '/broken', method: 'get', upload: false, wires: [['q2']] });
    f.push({ id: 'q2', type: 'bot-query', z: tab, name: '', ledger: '', wires: [['hres2']] });
    f.push({ id: 'hres2', type: 'http response', z: tab, statusCode: '', headers: {} });
    f.push({ id: 'done', type: 'helper', z: tab });
    const append = f.find((n) => n.type === 'bot-append') as FlowNode;
    append.wires = [['done']];
    await helper.load(NODES, f);
    await until(() => httpNode !== undefined, 5000, 'the http app');
    const appended = nextMessages(helper.getNode('done'), 3, 10000);
    const sign = helper.getNode(f.find((n) => n.type === 'bot-sign')?.id as string);
    for (let i = 0; i < 3; i++) sign.receive({ payload: { bar: 2 + i / 10 }, topic: 'plant/boiler/pressure' });
    await appended;

    const bad = await get('/bot/query?limit=abc');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, 'E_QUERY');
    assert.match(String(bad.body.error?.message), /limit/);
    const badTopic = await get('/bot/query?topic=plant/%23/x');
    assert.equal(badTopic.status, 400);
    assert.equal(badTopic.body.error?.code, 'E_QUERY');
    const ok = await get('/bot/query?topic=plant/%23&limit=2');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.entries?.length, 2);
    const broken = await get('/broken');
    assert.equal(broken.status, 500);
    assert.ok(broken.body.error?.code, JSON.stringify(broken.body));
    // Still answers after the failures (nothing stuck), and no error reached the log as unanswered.
    assert.equal((await get('/bot/query?limit=1')).status, 200);
  });
});
