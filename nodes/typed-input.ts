/**
 * The runtime side of the editor's typed inputs (`msg.` / `flow.` / `global.` / `env` / a
 * literal), shared by bot-sign, bot-verify and bot-consensus. Not a node: no .html, not in
 * node-red.nodes. Evaluation is Node-RED's own (RED.util.evaluateNodeProperty); `flow` and
 * `global` go through its callback form so persistent context stores work too.
 */
import type { NodeAPI, NodeMessage, RedNode } from './red-api';

/** The part of RED.util the typed inputs use. */
export interface RedUtil {
  evaluateNodeProperty(
    value: string,
    type: string,
    node: RedNode,
    msg: NodeMessage | undefined,
    callback?: (err: Error | null, result?: unknown) => void,
  ): unknown;
  getMessageProperty(msg: NodeMessage, expr: string): unknown;
  setMessageProperty(msg: NodeMessage, expr: string, value: unknown, createMissing?: boolean): boolean;
}

/** RED.util (Node-RED always provides it to node modules). */
export function redUtil(RED: NodeAPI): RedUtil {
  return (RED as NodeAPI & { util: RedUtil }).util;
}

/** A typed-input setting of a node: its value and type, with the type's fallback for old flows. */
export interface TypedSetting {
  value: string;
  type: string;
}

/** The setting `value`/`type` of a flow definition; a missing type (a flow saved before the option existed) gives `fallback`. */
export function typedSetting(value: unknown, type: unknown, fallback: TypedSetting): TypedSetting {
  if (typeof type !== 'string' || type === '') return fallback;
  return { value: typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value), type };
}

/** Whether evaluating this type may need a callback (context stores may be asynchronous). */
export function isAsyncType(type: string): boolean {
  return type === 'flow' || type === 'global' || type === 'jsonata';
}

/**
 * Evaluate a typed setting against a message: the value itself for synchronous types, a
 * Promise for context (flow, global) and JSONata. Errors of synchronous types are thrown.
 */
export function evaluate(RED: NodeAPI, node: RedNode, s: TypedSetting, msg: NodeMessage): unknown {
  const util = redUtil(RED);
  if (s.type === 'msg') return messageProperty(RED, msg, s.value);
  if (!isAsyncType(s.type)) return util.evaluateNodeProperty(s.value, s.type, node, msg);
  return new Promise<unknown>((resolve, reject) => {
    util.evaluateNodeProperty(s.value, s.type, node, msg, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** msg[expr] (e.g. `payload`, `mqtt.body`), undefined when it or a parent is missing. */
export function messageProperty(RED: NodeAPI, msg: NodeMessage, expr: string): unknown {
  if (expr === 'payload') return msg.payload; // the default, on the hot path
  try {
    return redUtil(RED).getMessageProperty(msg, expr);
  } catch (err) {
    if (err instanceof TypeError) return undefined; // a parent is missing
    throw err;
  }
}

/** Set msg[expr], creating missing parents. */
export function setMessageProperty(RED: NodeAPI, msg: NodeMessage, expr: string, value: unknown): void {
  if (expr === 'payload') {
    msg.payload = value;
    return;
  }
  redUtil(RED).setMessageProperty(msg, expr, value, true);
}

/** How a typed setting is shown in messages: `msg.topic`, `flow.kind`, `env MY_VAR`, `"text"`. */
export function describeSetting(s: TypedSetting): string {
  if (s.type === 'msg' || s.type === 'flow' || s.type === 'global') return `${s.type}.${s.value}`;
  if (s.type === 'env') return `env ${s.value}`;
  return JSON.stringify(s.value);
}
