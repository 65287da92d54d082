/**
 * Loose local types for the part of the Node-RED runtime API these nodes use: messages,
 * statuses, node instances, the RED object and the admin app's requests and responses.
 * Types only; not a node (it has no .html and is not in node-red.nodes).
 */

/** A message as Node-RED passes it between nodes. */
export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  topic?: unknown;
  [key: string]: unknown;
}

/** A node status (dot/ring and a short text); `{}` clears it. */
export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFn = (msg: NodeMessage | (NodeMessage | null)[] | null) => void;
export type DoneFn = (err?: Error) => void;
export type InputHandler = (msg: NodeMessage, send: SendFn, done: DoneFn) => void;
export type CloseHandler = (removed: boolean, done: () => void) => void;

/** The properties every node definition (flow JSON entry) has. */
export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
}

/** A node instance, after RED.nodes.createNode. */
export interface RedNode {
  readonly id: string;
  readonly type: string;
  name?: string;
  credentials?: Record<string, string | undefined>;
  on(event: 'input', cb: InputHandler): void;
  on(event: 'close', cb: CloseHandler): void;
  status(s: NodeStatus): void;
  error(err: unknown, msg?: NodeMessage): void;
  warn(m: unknown): void;
  log(m: unknown): void;
  send(msg: NodeMessage | (NodeMessage | null)[] | null): void;
}

/** The bits of an Express request / response the admin endpoints use. */
export interface AdminRequest {
  body?: unknown;
  params: Record<string, string | undefined>;
  query: Record<string, unknown>;
}
export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
}
export type AdminHandler = (req: AdminRequest, res: AdminResponse, next: () => void) => void;

export interface HttpAdmin {
  get(route: string, ...handlers: AdminHandler[]): void;
  post(route: string, ...handlers: AdminHandler[]): void;
}

/** A node constructor, called by Node-RED with `new` and the node's flow definition. */
export type NodeConstructor = (this: never, def: never) => void;

/** A credentials declaration for registerType. */
export interface CredentialsDef {
  [name: string]: { type: 'text' | 'password' };
}

/** The RED object handed to a node module. */
export interface NodeAPI {
  nodes: {
    createNode(node: object, def: NodeDef): void;
    getNode(id: string): unknown;
    registerType(type: string, ctor: NodeConstructor, opts?: { credentials?: CredentialsDef }): void;
  };
  settings: { userDir?: string; [key: string]: unknown };
  /** Node-RED's i18n: the text of a catalog key in the runtime's language (nodes/i18n.ts tr uses it). */
  _?: (key: string, vars?: Record<string, unknown>) => unknown;
  httpAdmin?: HttpAdmin;
  auth?: { needsPermission(permission: string): AdminHandler };
}
