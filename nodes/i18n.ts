/**
 * The runtime's texts (node statuses) from the package's message catalogs, nodes/locales/<lang>/<node>.json
 * (docs/design.md "The editor plugin"): Node-RED's i18n in the runtime's language (`lang` in settings.js), and
 * the en-US text when Node-RED has none to give (node-red-node-test-helper's RED._ returns the key), so English
 * statuses stay the same with or without Node-RED's catalogs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The part of the RED object a node module gets that this uses: Node-RED's i18n function. */
export interface Translating {
  _?: (key: string, vars?: Record<string, unknown>) => unknown;
}

/** Values put in a text's `__name__` placeholders. */
export type TextVars = Record<string, string | number>;

const MODULE = '@blockchain-of-things/node-red';
const LOCALES = path.join(__dirname, 'locales');
const english = new Map<string, unknown>();

/** The en-US text of a key ("<node>.<path>"), from nodes/locales/en-US/<node>.json. */
function englishText(file: string, key: string): string | undefined {
  if (!english.has(file)) {
    const p = path.join(LOCALES, 'en-US', `${file}.json`);
    english.set(file, fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as unknown) : {});
  }
  const v = key.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), english.get(file));
  return typeof v === 'string' ? v : undefined;
}

/** `__name__` placeholders replaced as Node-RED's i18next does (prefix and suffix "__"). */
function fill(text: string, vars?: TextVars): string {
  return text.replace(/__(.+?)__/g, (all, name: string) => (vars && name in vars ? String(vars[name]) : all));
}

let translate: Translating['_'];

/**
 * Take Node-RED's i18n from the RED object a node module is given (each node module calls this once): any node set's
 * RED._ serves, since tr's keys name their namespace.
 */
export function useI18n(RED: Translating): void {
  if (typeof RED._ === 'function') translate = RED._.bind(RED);
}

/**
 * A node's text in the runtime's language: `key` is "<node type>.<path>" (e.g. "bot-append.status.appended"), looked
 * up in that node set's catalog whichever node asks; English from en-US when Node-RED has no text for it (or useI18n
 * was not called).
 */
export function tr(key: string, vars?: TextVars): string {
  const file = key.slice(0, key.indexOf('.'));
  const full = `${MODULE}/${file}:${key}`;
  let out: unknown;
  try {
    out = translate?.(full, vars);
  } catch {
    out = undefined;
  }
  if (typeof out === 'string' && out !== full && out !== key && out !== '') return out;
  return fill(englishText(file, key) ?? key, vars);
}
