/**
 * The test side of a child process answering commands over IPC ({id, cmd, …args} →
 * {id, result | error: {code, message}}), as test/consensus-child.ts and
 * test/confidential-child.ts do: one call helper for the tests that drive such children.
 */
import type { ChildProcess } from 'node:child_process';

/** Send the child a command and resolve with its answer (within ms, default the helper's). */
export type ChildCall = (cmd: string, args?: Record<string, unknown>, ms?: number) => Promise<unknown>;

/**
 * Answer calls to proc, named name in errors: a call rejects with the child's error (its code
 * kept), when the child exits, or after ms without an answer; one to a child no longer connected
 * rejects at once.
 */
export function childRpc(proc: ChildProcess, name: string, defaultMs: number): ChildCall {
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  proc.on('message', (m: { id: number; result?: unknown; error?: { code?: string; message: string } }) => {
    const c = calls.get(m.id);
    if (!c) return;
    calls.delete(m.id);
    if (m.error) c.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    else c.resolve(m.result);
  });
  proc.on('exit', () => {
    for (const c of calls.values()) c.reject(new Error(`${name} exited`));
    calls.clear();
  });
  return (cmd, args = {}, ms = defaultMs) => {
    if (!proc.connected) return Promise.reject(new Error(`${name} is not running`));
    const id = next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        calls.delete(id);
        reject(new Error(`${name} did not answer ${cmd} within ${ms} ms`));
      }, ms);
      calls.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      proc.send({ id, cmd, ...args });
    });
  };
}
