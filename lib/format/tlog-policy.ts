/**
 * c2sp.org/tlog-policy text: `log <vkey> [<url>]`, `witness <name> <vkey> [<url>]`,
 * `group <name> <k|all|any> <member>…`, `quorum <name|none>`, `#` comments
 * (docs/design.md "Witness policy": importable and exportable).
 *
 * parsePolicy / formatPolicy handle the general format (nested groups included) and
 * policySatisfied evaluates it. importPolicy / exportPolicy convert to and from the flat
 * QuorumPolicy a ledger uses: one log, and either `quorum none` or one group of all the
 * witnesses with threshold k, which is a QuorumPolicy with quorum 1 + k (tlog-policy counts
 * witnesses only; the ledger's quorum also counts the operator's own signature).
 *
 * Errors are FormatError E_NOTE with the line number (E_TOO_LARGE above the size limit).
 */
import { toHex } from './bytes';
import { FormatError } from '../errors';
import { NoteVerifier, SIG_COSIGNATURE_V1, SIG_ED25519 } from './note';
import { QuorumPolicy } from '../consortium/quorum';

/** Largest policy text accepted, in characters (tlog-policy "Implementation limits"). */
export const MAX_POLICY_CHARS = 64 * 1024;
/** Most logs, witnesses and groups each (tlog-policy "Implementation limits": at least 32). */
export const MAX_POLICY_ITEMS = 64;

/** A `log` line (tlog-policy "Defining a log"). */
export interface PolicyLog {
  verifier: NoteVerifier;
  url?: string;
}

/** A `witness` line (tlog-policy "Defining a witness"). */
export interface PolicyWitness {
  /** The policy-local name (not necessarily the vkey's key name). */
  name: string;
  verifier: NoteVerifier;
  url?: string;
}

/** A `group` line (tlog-policy "Defining a witness group"). */
export interface PolicyGroup {
  name: string;
  /** `all` (k = n), `any` (k = 1) or k with 1 ≤ k ≤ n. */
  threshold: 'all' | 'any' | number;
  /** Names of witnesses or earlier groups, each at most once. */
  members: string[];
}

/** A whole policy (tlog-policy "What is a policy?"). */
export interface TlogPolicy {
  logs: PolicyLog[];
  witnesses: PolicyWitness[];
  groups: PolicyGroup[];
  /** A witness or group name, or `none`. */
  quorum: string;
}

const WS = /[ \t]+/;

function err(line: number, msg: string): FormatError {
  return new FormatError('E_NOTE', line > 0 ? `policy line ${line}: ${msg}` : `policy: ${msg}`);
}

/** k of a group: all → n, any → 1 (tlog-policy "Defining a witness group"). */
export function groupThreshold(g: PolicyGroup): number {
  return g.threshold === 'all' ? g.members.length : g.threshold === 'any' ? 1 : g.threshold;
}

function parseVkey(line: number, text: string, type: number, what: string): NoteVerifier {
  let v: NoteVerifier;
  try {
    v = NoteVerifier.parse(text);
  } catch (e) {
    throw err(line, `${what} key is not a valid vkey: ${(e as Error).message}`);
  }
  if (v.type !== type) throw err(line, `${what} key must have signature type 0x0${type} (tlog-${type === SIG_ED25519 ? 'checkpoint' : 'cosignature'})`);
  return v;
}

/**
 * Parse policy text (tlog-policy "Policy file syntax and structure"): space/tab separated
 * items, blank and `#` lines ignored, names defined before use and unique in one namespace,
 * `none` reserved, duplicate keys refused, exactly one quorum line, only tab and newline as
 * control characters. A missing final newline is tolerated.
 */
export function parsePolicy(text: string): TlogPolicy {
  if (typeof text !== 'string') throw err(0, 'must be text');
  if (text.length > MAX_POLICY_CHARS) throw new FormatError('E_TOO_LARGE', `policy is larger than ${MAX_POLICY_CHARS} characters`);
  const logs: PolicyLog[] = [];
  const witnesses: PolicyWitness[] = [];
  const groups: PolicyGroup[] = [];
  const names = new Map<string, 'witness' | 'group'>();
  const logKeys = new Set<string>();
  const witnessKeys = new Set<string>();
  let quorum: string | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    const bad = /[\x00-\x08\x0a-\x1f\x7f]/.exec(raw);
    if (bad)
      throw err(
        n,
        bad[0] === '\r'
          ? 'carriage return (CRLF line endings) is not allowed; use LF'
          : `control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0')} is not allowed`,
      );
    const t = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (t === '' || t.startsWith('#')) return;
    const f = t.split(WS);
    const define = (name: string, kind: 'witness' | 'group'): void => {
      if (name === 'none') throw err(n, '"none" is predefined and cannot be defined');
      if (names.has(name)) throw err(n, `name ${JSON.stringify(name)} is already defined`);
      names.set(name, kind);
    };
    switch (f[0]) {
      case 'log': {
        if (f.length < 2 || f.length > 3) throw err(n, 'expected "log <vkey> [<url>]"');
        const v = parseVkey(n, f[1], SIG_ED25519, 'log');
        const k = toHex(v.publicKey.bytes);
        if (logKeys.has(k)) throw err(n, 'duplicate log: the same public key is already listed');
        logKeys.add(k);
        if (logs.length >= MAX_POLICY_ITEMS) throw err(n, `more than ${MAX_POLICY_ITEMS} logs`);
        logs.push(f.length === 3 ? { verifier: v, url: f[2] } : { verifier: v });
        return;
      }
      case 'witness': {
        if (f.length < 3 || f.length > 4) throw err(n, 'expected "witness <name> <vkey> [<url>]"');
        const v = parseVkey(n, f[2], SIG_COSIGNATURE_V1, 'witness');
        const k = toHex(v.publicKey.bytes);
        if (witnessKeys.has(k)) throw err(n, 'duplicate witness: the same public key is already listed');
        define(f[1], 'witness');
        witnessKeys.add(k);
        if (witnesses.length >= MAX_POLICY_ITEMS) throw err(n, `more than ${MAX_POLICY_ITEMS} witnesses`);
        witnesses.push(f.length === 4 ? { name: f[1], verifier: v, url: f[3] } : { name: f[1], verifier: v });
        return;
      }
      case 'group': {
        if (f.length < 4) throw err(n, 'expected "group <name> <k|all|any> <name>..." with at least one member');
        const members = f.slice(3);
        const seen = new Set<string>();
        for (const m of members) {
          if (m === 'none') throw err(n, '"none" cannot be a group member');
          if (!names.has(m)) throw err(n, `member ${JSON.stringify(m)} is not defined on an earlier line`);
          if (seen.has(m)) throw err(n, `member ${JSON.stringify(m)} is listed twice`);
          seen.add(m);
        }
        let threshold: PolicyGroup['threshold'];
        if (f[2] === 'all' || f[2] === 'any') threshold = f[2];
        else if (/^[1-9][0-9]{0,5}$/.test(f[2])) {
          threshold = Number(f[2]);
          if (threshold > members.length) throw err(n, `threshold ${threshold} is above the ${members.length} member(s)`);
        } else throw err(n, `threshold must be "all", "any" or a decimal from 1 to ${members.length}`);
        define(f[1], 'group');
        if (groups.length >= MAX_POLICY_ITEMS) throw err(n, `more than ${MAX_POLICY_ITEMS} groups`);
        groups.push({ name: f[1], threshold, members });
        return;
      }
      case 'quorum': {
        if (f.length !== 2) throw err(n, 'expected "quorum <name>"');
        if (quorum !== undefined) throw err(n, 'a policy has exactly one quorum line');
        if (f[1] !== 'none' && !names.has(f[1])) throw err(n, `quorum ${JSON.stringify(f[1])} is not defined on an earlier line`);
        quorum = f[1];
        return;
      }
      default:
        throw err(n, `unknown keyword ${JSON.stringify(f[0]).slice(0, 40)}: expected log, witness, group or quorum`);
    }
  });
  if (quorum === undefined) throw err(0, 'no quorum line (use "quorum none" to require no cosignatures)');
  return { logs, witnesses, groups, quorum };
}

/** Policy text in tlog-policy syntax: logs, witnesses, groups, then the quorum line (tlog-policy "Example policy"). */
export function formatPolicy(p: TlogPolicy): string {
  const out: string[] = [];
  for (const l of p.logs) out.push(l.url ? `log ${l.verifier} ${l.url}` : `log ${l.verifier}`);
  for (const w of p.witnesses) out.push(w.url ? `witness ${w.name} ${w.verifier} ${w.url}` : `witness ${w.name} ${w.verifier}`);
  for (const g of p.groups) out.push(`group ${g.name} ${g.threshold} ${g.members.join(' ')}`);
  out.push(`quorum ${p.quorum}`);
  const text = out.join('\n') + '\n';
  parsePolicy(text); // what we write must read back
  return text;
}

/** Whether the named witnesses' cosignatures satisfy the policy's quorum (tlog-policy "Defining a witness group"). */
export function policySatisfied(p: TlogPolicy, cosigned: Iterable<string>): boolean {
  if (p.quorum === 'none') return true;
  const have = new Set(cosigned);
  const groups = new Map(p.groups.map((g) => [g.name, g]));
  const memo = new Map<string, boolean>();
  const ok = (name: string): boolean => {
    const hit = memo.get(name);
    if (hit !== undefined) return hit;
    const g = groups.get(name);
    const r = g ? g.members.filter(ok).length >= groupThreshold(g) : have.has(name);
    memo.set(name, r);
    return r;
  };
  return ok(p.quorum);
}

/**
 * Convert policy text to the ledger's flat QuorumPolicy
 * (docs/design.md "Witness set and quorum"): the log named origin (or the only log), all witnesses as the set, and the quorum
 * `none` (→ 1), one witness that is the whole set (→ 2), or a group of exactly all witnesses
 * with threshold k (→ 1 + k). Anything else is refused as not flat.
 */
export function importPolicy(text: string, origin?: string): QuorumPolicy {
  const p = parsePolicy(text);
  let log: PolicyLog | undefined;
  if (origin !== undefined) {
    log = p.logs.find((l) => l.verifier.name === origin);
    if (!log) throw err(0, `no log line for origin ${JSON.stringify(origin)}`);
  } else {
    if (p.logs.length !== 1) throw err(0, `expected exactly one log line, found ${p.logs.length}`);
    log = p.logs[0];
  }
  const all = p.witnesses.map((w) => w.name);
  let quorum: number;
  if (p.quorum === 'none') quorum = 1;
  else {
    const g = p.groups.find((x) => x.name === p.quorum);
    const members = g ? g.members : [p.quorum];
    if (g && g.members.some((m) => p.groups.some((x) => x.name === m)))
      throw err(0, `quorum group ${g.name} has nested groups: only a flat group of all witnesses is supported`);
    const missing = all.filter((w) => !members.includes(w));
    if (missing.length > 0) throw err(0, `witness ${missing[0]} is not in the quorum ${p.quorum}: a ledger's quorum counts all of its witnesses`);
    quorum = 1 + (g ? groupThreshold(g) : 1);
  }
  return QuorumPolicy.create({
    origin: log.verifier.name,
    operator: log.verifier,
    witnesses: p.witnesses.map((w) => (w.url === undefined ? { key: w.verifier } : { key: w.verifier, url: w.url })),
    quorum,
  });
}

/**
 * The flat QuorumPolicy as tlog-policy text: `log`, one `witness` line per member (named by
 * its cosigner key name), and a group of all witnesses with threshold quorum − 1, or
 * `quorum none` when the operator's signature alone suffices (tlog-policy "Example policy").
 */
export function exportPolicy(q: QuorumPolicy): string {
  const used = new Set<string>(['none']);
  const witnesses: PolicyWitness[] = q.witnesses.map((w, i) => {
    const name = used.has(w.name) ? `witness-${i + 1}` : w.name;
    used.add(name);
    return w.url === undefined ? { name, verifier: w.verifier } : { name, verifier: w.verifier, url: w.url };
  });
  const k = q.quorum - 1;
  const groups: PolicyGroup[] = [];
  let quorum = 'none';
  if (k > 0) {
    let g = 'partners';
    for (let i = 2; used.has(g); i++) g = `partners-${i}`;
    groups.push({ name: g, threshold: k, members: witnesses.map((w) => w.name) });
    quorum = g;
  }
  return formatPolicy({ logs: [{ verifier: q.log }], witnesses, groups, quorum });
}
