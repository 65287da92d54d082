/**
 * The items of a multi-line text setting (a node's textarea, a CLI file of did:keys or topic
 * filters): one per line, or also comma-separated; blank lines and `#` comments skipped.
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
