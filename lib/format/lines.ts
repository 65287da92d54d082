/**
 * The items of a multi-line text setting (a node's textarea, a CLI file of did:keys or topic
 * filters): one per line, or also comma-separated; blank lines and `#` comments skipped. And
 * the times such settings and request fields give (ms, numeric text or a date).
 *
 * Pure TypeScript, no Node-RED import.
 */

/** Non-empty, non-comment lines of a textarea setting (also comma-separated items when commas). */
export function lines(v: string | undefined, commas = false): string[] {
  return (v ?? '')
    .split(commas ? /\r?\n|,/ : /\r?\n/)
    .map((x) => x.trim())
    .filter((x) => x !== '' && !x.startsWith('#'));
}

/**
 * A time in a setting or a request field: ms since the epoch, numeric text or a date (Date.parse).
 * undefined when absent or empty, null when it is none of these (the caller throws its own error).
 */
export function timeValue(v: unknown): number | undefined | null {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v);
  if (typeof v === 'string' && !Number.isNaN(Date.parse(v))) return Date.parse(v);
  return null;
}
