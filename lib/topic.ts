/**
 * MQTT topic filters (MQTT 3.1.1 §4.7): `+` matches one level, `#` the rest (including the
 * parent level), `$`-topics are not matched by a leading wildcard.
 */
import { FormatError } from './errors';

/** Check a topic filter's syntax (MQTT 3.1.1 §4.7.1); throws FormatError E_QUERY. */
export function checkTopicFilter(filter: string): void {
  if (typeof filter !== 'string' || filter.length === 0 || filter.length > 4096 || filter.includes('\u0000')) {
    throw new FormatError('E_QUERY', 'a topic filter is a non-empty string of at most 4096 characters');
  }
  const levels = filter.split('/');
  levels.forEach((l, i) => {
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) throw new FormatError('E_QUERY', `"#" must be a whole last level in topic filter ${JSON.stringify(filter)}`);
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
