/**
 * MQTT topic names and filters (MQTT 3.1.1 §4.7): `+` matches one level, `#` the rest
 * (including the parent level), `$`-topics are not matched by a leading wildcard. Topic names
 * are checked here before anything is published to them (checkTopicName), and text a peer
 * controls is made printable here before it reaches a log line (printable).
 */
import { FormatError } from '../errors';

/** Largest topic name, in UTF-8 bytes: an MQTT UTF-8 string has a 16-bit length (MQTT 3.1.1 §1.5.3). */
export const MAX_TOPIC_BYTES = 65535;

/**
 * Code points a topic name must not hold: controls U+0000–U+001F and U+007F–U+009F (\p{Cc}),
 * lone surrogates (\p{Cs}: not well-formed UTF-8) and non-characters (U+FDD0–U+FDEF,
 * U+xFFFE, U+xFFFF) — MQTT 3.1.1 §1.5.3: U+0000 and surrogates MUST NOT appear, the others
 * SHOULD NOT and a broker may close the connection over them (Mosquitto does) — and the
 * wildcards `+` and `#` (§4.7.1: filters only).
 */
const NOT_IN_TOPIC_NAME = /[\p{Cc}\p{Cs}\p{Noncharacter_Code_Point}+#]/u;

/** Why a string is not a topic name every broker accepts (MQTT 3.1.1 §1.5.3, §4.7), or undefined when it is one. */
export function topicNameProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return 'a topic name must be a string';
  if (topic.length === 0) return 'a topic name must not be empty (MQTT 3.1.1 §4.7.3)';
  // Each UTF-16 unit is at least one UTF-8 byte: the byte count is needed only below the limit.
  if (topic.length > MAX_TOPIC_BYTES || Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) {
    return `a topic name must be at most ${MAX_TOPIC_BYTES} bytes of UTF-8 (MQTT 3.1.1 §1.5.3)`;
  }
  const bad = NOT_IN_TOPIC_NAME.exec(topic);
  if (!bad) return undefined;
  if (bad[0] === '+' || bad[0] === '#') return 'a topic name must not contain the wildcards "+" or "#" (MQTT 3.1.1 §4.7.1)';
  return `a topic name must not contain ${escapeChar(bad[0])} (controls, lone surrogates and non-characters: MQTT 3.1.1 §1.5.3)`;
}

/**
 * Check that a string is a legal MQTT topic name before publishing to it (MQTT 3.1.1 §1.5.3,
 * §4.7): a broker closes the connection of a client that publishes to an illegal one. Throws
 * FormatError E_QUERY naming it in printable, truncated form.
 */
export function checkTopicName(topic: unknown, what = 'topic'): asserts topic is string {
  const problem = topicNameProblem(topic);
  if (problem !== undefined) {
    throw new FormatError('E_QUERY', `${what} ${typeof topic === 'string' ? printable(topic, 60) : typeof topic}: ${problem}`);
  }
}

/** Characters escapeUnprintable escapes: controls, surrogates, non-characters, format (bidi, zero-width) and line/paragraph separators. */
const UNPRINTABLE = /[\p{Cc}\p{Cs}\p{Cf}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}]/gu;
/** And printable also the quote and backslash, so that its quoted text cannot seem to end early. */
const UNPRINTABLE_QUOTED = /[\p{Cc}\p{Cs}\p{Cf}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}\\"]/gu;

function escapeChar(c: string): string {
  if (c === '\\' || c === '"') return `\\${c}`;
  const cp = c.codePointAt(0) ?? 0;
  return cp > 0xffff ? `\\u{${cp.toString(16).toUpperCase()}}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Text a peer controls (a topic, a method name), made safe for one log line: in double
 * quotes, at most max characters of it, controls, other invisible or line-breaking
 * characters, quotes and backslashes escaped (\uXXXX, \", \\), and the full length told when cut.
 */
export function printable(text: string, max = 80): string {
  const cut = text.length > max;
  const shown = (cut ? text.slice(0, max) : text).replace(UNPRINTABLE_QUOTED, escapeChar);
  return `"${shown}"${cut ? `… (${text.length} characters)` : ''}`;
}

/** Text (e.g. an error message a peer sent) with controls, invisible and line-breaking characters escaped as \uXXXX, for one log line. */
export function escapeUnprintable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/** Check a topic filter's syntax (MQTT 3.1.1 §4.7.1); throws FormatError E_QUERY. */
export function checkTopicFilter(filter: string): void {
  if (typeof filter !== 'string' || filter.length === 0 || filter.length > 4096 || filter.includes('\u0000')) {
    throw new FormatError('E_QUERY', 'a topic filter is a non-empty string of at most 4096 characters');
  }
  const levels = filter.split('/');
  levels.forEach((l, i) => {
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1))
      throw new FormatError('E_QUERY', `"#" must be a whole last level in topic filter ${JSON.stringify(filter)}`);
    if (l.includes('+') && l !== '+') throw new FormatError('E_QUERY', `"+" must be a whole level in topic filter ${JSON.stringify(filter)}`);
  });
}

/** True when the filter has no wildcard, so it names exactly one topic. */
export function isExactTopic(filter: string): boolean {
  return !/[+#]/.test(filter);
}

/** Whether an MQTT topic name matches a topic filter (MQTT 3.1.1 §4.7). */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
