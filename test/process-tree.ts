/** Process helpers of the demo launcher tests (Linux /proc): a launcher's children, and how long a stop takes. */
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

/** The pids of a process's children (Linux: /proc/<pid>/task/<tid>/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      out.push(...fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Whether a process is alive (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Send a launcher SIGINT (as Ctrl-C does) and measure until it and every child it had have
 * exited, up to ms; returns the time taken and the pids still running then (killed).
 */
export async function stopAndMeasure(child: ChildProcess, ms = 15000): Promise<{ took: number; left: number[]; children: number[] }> {
  const children = childPids(child.pid as number);
  const exited = child.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  const t0 = Date.now();
  child.kill('SIGINT');
  const end = t0 + ms;
  await Promise.race([exited, new Promise((r) => setTimeout(r, ms))]);
  while (children.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  const took = Date.now() - t0;
  const left = children.filter(alive);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  return { took, left, children };
}
