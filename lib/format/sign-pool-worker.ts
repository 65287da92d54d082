/**
 * Signing worker thread of lib/format/sign-pool.ts: receives the signer's 32-byte seed once (a
 * transferred ArrayBuffer, zeroed here once the key is made), then batches of canonical
 * envelope messages, and answers each batch with its Ed25519 signatures (RFC 8032), 64 bytes
 * each, in the batch's order. The seed is never logged or sent back.
 */
import { parentPort } from 'node:worker_threads';
import { Identity } from './identity';

/** The first message: the seed, transferred. */
export interface KeyMessage {
  type: 'key';
  seed: ArrayBuffer;
}
/** A batch: messages concatenated in `data`, message i ending at `ends[i]`. */
export interface BatchMessage {
  type: 'batch';
  id: number;
  data: ArrayBuffer;
  ends: Uint32Array;
}
/** The answer to a batch: n × 64 signature bytes, or why the batch could not be signed. */
export interface BatchReply {
  id: number;
  sigs?: ArrayBuffer;
  error?: string;
}

let identity: Identity | undefined;

parentPort?.on('message', (m: KeyMessage | BatchMessage) => {
  if (m.type === 'key') {
    const seed = new Uint8Array(m.seed);
    identity = Identity.fromSeed(seed); // copies the seed into its private field
    seed.fill(0);
    return;
  }
  if (!identity) {
    parentPort?.postMessage({ id: m.id, error: 'the signing worker has no key' } satisfies BatchReply);
    return;
  }
  const data = new Uint8Array(m.data);
  const sigs = new Uint8Array(m.ends.length * 64);
  let start = 0;
  for (let i = 0; i < m.ends.length; i++) {
    sigs.set(identity.sign(data.subarray(start, m.ends[i])), i * 64);
    start = m.ends[i];
  }
  parentPort?.postMessage({ id: m.id, sigs: sigs.buffer } satisfies BatchReply, [sigs.buffer]);
});
