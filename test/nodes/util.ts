/**
 * Shared helpers of the Node-RED node tests: a typed view of node-red-node-test-helper, the
 * compiled node modules, and small waiting utilities.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A flow entry. */
export type FlowNode = { id: string; type: string; z?: string; wires?: string[][] } & Record<string, unknown>;
export type Credentials = Record<string, Record<string, string>>;
export type Msg = Record<string, unknown> & { payload?: unknown; error?: { code?: string; message?: string; source?: { id?: string } } };

/** A node instance as tests see it. */
export interface TestNode {
  id: string;
  type: string;
  receive(msg: Msg): void;
  on(event: 'input', cb: (msg: Msg) => void): void;
  on(event: string, cb: (call: { args: unknown[] }) => void): void;
  removeAllListeners(event?: string): void;
  [key: string]: unknown;
}

export interface HttpReply {
  status: number;
  body: unknown;
}
export interface HttpRequest extends PromiseLike<HttpReply> {
  send(body: unknown): HttpRequest;
  set(name: string, value: string): HttpRequest;
}

export interface TestHelper {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  settings(s: Record<string, unknown>): Record<string, unknown>;
  load(nodes: unknown[], flow: FlowNode[], creds?: Credentials): Promise<void>;
  unload(): Promise<void>;
  setFlows(flow: FlowNode[], type: 'full' | 'nodes' | 'flows', creds?: Credentials): Promise<void>;
  getNode(id: string): TestNode;
  request(): { get(url: string): HttpRequest; post(url: string): HttpRequest };
  log(): { args: unknown[][] };
  _redNodes: { getFlows(): unknown };
}

export const helper = require('node-red-node-test-helper') as TestHelper;
helper.init(require.resolve('node-red'));

/* The compiled node modules (dist/nodes), loaded the way Node-RED loads them. */
export const botIdentity = require('../../nodes/bot-identity') as unknown;
export const botLedger = require('../../nodes/bot-ledger') as unknown;
export const botSign = require('../../nodes/bot-sign') as unknown;
export const botVerify = require('../../nodes/bot-verify') as unknown;
export const botAppend = require('../../nodes/bot-append') as unknown;
export const botQuery = require('../../nodes/bot-query') as unknown;
export const ALL_NODES = [botIdentity, botLedger, botSign, botVerify, botAppend, botQuery];

/** A fresh user directory, set as Node-RED's userDir. */
export function freshUserDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bot-nr-'));
  helper.settings({ userDir: dir });
  return dir;
}

/**
 * Mocha hooks of a node test suite: a fresh user directory before each test (freshUserDir), the
 * flows unloaded and the directory removed after it. Returns the current test's directory.
 */
export function userDirPerTest(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = freshUserDir();
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

/** The next `n` messages a node receives (rejects after `ms`). */
export function nextMessages(node: TestNode, n: number, ms = 5000): Promise<Msg[]> {
  return new Promise((resolve, reject) => {
    const got: Msg[] = [];
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} messages at ${node.id} (got ${got.length})`)), ms);
    node.on('input', (msg: Msg) => {
      got.push(msg);
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

/** The next message a node receives. */
export async function nextMessage(node: TestNode, ms = 5000): Promise<Msg> {
  return (await nextMessages(node, 1, ms))[0] as Msg;
}

/** Resolves when no message arrives at the node within ms; rejects if one does. */
export function noMessage(node: TestNode, ms = 150): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    node.on('input', (msg: Msg) => {
      clearTimeout(timer);
      reject(new Error(`unexpected message at ${node.id}: ${JSON.stringify(msg.error ?? msg.payload)}`));
    });
  });
}

/** Every status a node shows from now on. */
export function statuses(node: TestNode): { fill?: string; shape?: string; text?: string }[] {
  const out: { fill?: string; shape?: string; text?: string }[] = [];
  node.on('call:status', (call: { args: unknown[] }) => out.push(call.args[0] as { text?: string }));
  return out;
}

/** Poll until cond() is true. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
