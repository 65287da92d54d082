/**
 * The Node-RED runtime the flow benchmarks load their flows into (node-red-node-test-helper,
 * a real runtime), and `unspy`, which takes the helper's call-recording spies off a loaded flow
 * so a benchmark does not pay for them (bench/flow.ts, bench/devices.ts).
 */

/** A node of the loaded flow, as a benchmark drives it. */
export interface TestNode {
  receive(msg: Record<string, unknown>): void;
  on(event: 'input', cb: (msg: unknown) => void): void;
}

/** The parts of node-red-node-test-helper the benchmarks use. */
export interface Helper {
  init(runtime: string): void;
  settings(s: Record<string, unknown>): void;
  load(nodes: unknown[], flow: Record<string, unknown>[], creds?: Record<string, Record<string, string>>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): TestNode;
  /** The helper's sinon sandbox: it spies on every Node method call, which a benchmark must not pay for. */
  _sandbox: { restore(): void };
  /** Node-RED's Node.prototype, whose methods the helper replaces with spies while a flow loads. */
  _NodePrototype: { send: unknown };
}

/** The helper, initialised with this package's Node-RED. */
export const helper = require('node-red-node-test-helper') as Helper;
helper.init(require.resolve('node-red'));

/**
 * Remove the helper's call-recording spies from the loaded flow: restoring the sandbox puts
 * Node.prototype's methods back, but Node-RED copies `send` onto every wired node when the
 * node is made (Node.updateWires: `this.send = Node.prototype.send`), so the nodes `ids` would
 * keep sending through the spy (sinon records every call: about half of two change nodes' time).
 */
export function unspy(ids: string[]): void {
  helper._sandbox.restore();
  for (const id of ids) {
    const n = helper.getNode(id) as unknown as { send?: unknown; _wireCount?: number } | null;
    if (n && Object.prototype.hasOwnProperty.call(n, 'send') && (n._wireCount ?? 0) > 0) n.send = helper._NodePrototype.send;
  }
}
