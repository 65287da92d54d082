/**
 * Audit worker thread: verifies envelope signatures of one chunk of leaves and that each
 * leaf is exactly its envelope's canonical (RFC 8785) form. See lib/store/audit.ts.
 */
import { parentPort } from 'node:worker_threads';
import { checkLeaves, type LeafTask } from './audit-leaves';

parentPort?.on('message', (task: LeafTask) => {
  parentPort?.postMessage({ id: task.id, result: checkLeaves(task) });
});
