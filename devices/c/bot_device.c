/*
 * bot_device: canonical envelope bytes of the device profile (docs/device-profile.md) and
 * their Ed25519 signature. C99; no heap, no OS call, no global mutable state. The only
 * library functions used are memcpy, memmove, memcmp and strlen.
 */
#include <string.h>

#include "bot_device.h"
#include "bot_ed25519.h"

#define DOMAIN "bot-envelope-v1\n"
#define DOMAIN_LEN 16u
/* `"sig":"` + 86 base64url characters + `",` */
#define SIG_MEMBER_LEN 95u
#define SIG_B64_LEN 86u
#define MAX_KEY_LEN 64u
#define MAX_KIND_LEN 32u
#define MAX_TOPIC_LEN 4096u

/* ---- a bounded writer ---------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t cap;
  size_t len;
  int err;
} writer;

static void put(writer *w, const char *s, size_t n) {
  if (w->err) return;
  if (n > w->cap - w->len) {
    w->err = BOT_E_SPACE;
    return;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void put_str(writer *w, const char *s) { put(w, s, strlen(s)); }

static void put_ch(writer *w, char c) { put(w, &c, 1); }

/* Decimal digits of v, no leading zeros (RFC 8785 section 3.2.2.3 for integers below 2^53). */
static void put_u64(writer *w, uint64_t v) {
  char d[20];
  size_t n = 0;
  do {
    d[sizeof d - 1 - n] = (char)('0' + (int)(v % 10u));
    v /= 10u;
    n++;
  } while (v != 0);
  put(w, d + sizeof d - n, n);
}

static void put_i64(writer *w, int64_t v) {
  if (v < 0) {
    put_ch(w, '-');
    put_u64(w, (uint64_t)(-(v + 1)) + 1u);
  } else {
    put_u64(w, (uint64_t)v);
  }
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* RFC 4648 section 4 (padded) with B64, or section 5 unpadded with B64URL. */
static void put_base64(writer *w, const uint8_t *b, size_t n, const char *alphabet, int pad) {
  size_t i;
  char q[4];
  for (i = 0; i + 3 <= n; i += 3) {
    uint32_t x = ((uint32_t)b[i] << 16) | ((uint32_t)b[i + 1] << 8) | b[i + 2];
    q[0] = alphabet[(x >> 18) & 63];
    q[1] = alphabet[(x >> 12) & 63];
    q[2] = alphabet[(x >> 6) & 63];
    q[3] = alphabet[x & 63];
    put(w, q, 4);
  }
  if (n - i == 1) {
    uint32_t x = (uint32_t)b[i] << 16;
    q[0] = alphabet[(x >> 18) & 63];
    q[1] = alphabet[(x >> 12) & 63];
    q[2] = q[3] = '=';
    put(w, q, pad ? 4 : 2);
  } else if (n - i == 2) {
    uint32_t x = ((uint32_t)b[i] << 16) | ((uint32_t)b[i + 1] << 8);
    q[0] = alphabet[(x >> 18) & 63];
    q[1] = alphabet[(x >> 12) & 63];
    q[2] = alphabet[(x >> 6) & 63];
    q[3] = '=';
    put(w, q, pad ? 4 : 3);
  }
}

/* ---- UTF-8 and strings --------------------------------------------------------------- */

/*
 * Decode one code point of well-formed UTF-8 (RFC 3629 section 4: no overlong form, no
 * surrogate, nothing above U+10FFFF). Returns its length in bytes, or 0 when ill-formed.
 */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
  uint8_t b = s[0];
  uint8_t lo = 0x80, hi = 0xBF;
  size_t len, i;
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
    *cp = b & 0x1Fu;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    *cp = b & 0x0Fu;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F; /* U+D800..U+DFFF are surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    *cp = b & 0x07u;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (i = 1; i < len; i++) {
    uint8_t c = s[i];
    if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF)) return 0;
    *cp = (*cp << 6) | (c & 0x3Fu);
  }
  return len;
}

/* A JSON string as RFC 8785 section 3.2.2.2 writes it: only '"', '\' and U+0000..U+001F escaped. */
static int put_json_string(writer *w, const char *s, size_t n) {
  static const char HEX[] = "0123456789abcdef";
  const uint8_t *u = (const uint8_t *)s;
  size_t i = 0, run = 0;
  put_ch(w, '"');
  while (i < n) {
    uint32_t cp;
    size_t len = utf8_next(u + i, n - i, &cp);
    if (len == 0) return BOT_E_UTF8;
    if (cp >= 0x20 && cp != '"' && cp != '\\') {
      i += len;
      continue;
    }
    put(w, s + run, i - run); /* the literal run before this character */
    switch (cp) {
      case '"': put(w, "\\\"", 2); break;
      case '\\': put(w, "\\\\", 2); break;
      case '\b': put(w, "\\b", 2); break;
      case '\t': put(w, "\\t", 2); break;
      case '\n': put(w, "\\n", 2); break;
      case '\f': put(w, "\\f", 2); break;
      case '\r': put(w, "\\r", 2); break;
      default: {
        char e[6] = {'\\', 'u', '0', '0', HEX[cp >> 4], HEX[cp & 15u]};
        put(w, e, 6);
      }
    }
    i += 1;
    run = i;
  }
  put(w, s + run, n - run);
  put_ch(w, '"');
  return w->err;
}

/*
 * A topic name under the profile: 1..4096 bytes of well-formed UTF-8 without controls
 * (U+0000..U+001F, U+007F..U+009F), non-characters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF) or
 * the wildcards '+' and '#' (MQTT 3.1.1 sections 1.5.3 and 4.7).
 */
static int check_topic(const char *t, size_t n) {
  const uint8_t *u = (const uint8_t *)t;
  size_t i = 0;
  if (n == 0 || n > MAX_TOPIC_LEN) return BOT_E_TOPIC;
  while (i < n) {
    uint32_t cp;
    size_t len = utf8_next(u + i, n - i, &cp);
    if (len == 0) return BOT_E_TOPIC;
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == '+' || cp == '#') return BOT_E_TOPIC;
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu) return BOT_E_TOPIC;
    i += len;
  }
  return BOT_OK;
}

/* kind: [a-z][a-z0-9_-]{0,31} */
static int check_kind(const char *k) {
  size_t i;
  if (k[0] < 'a' || k[0] > 'z') return BOT_E_KIND;
  for (i = 1; k[i] != '\0'; i++) {
    char c = k[i];
    if (i >= MAX_KIND_LEN) return BOT_E_KIND;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return BOT_E_KIND;
  }
  return BOT_OK;
}

/* ---- keys and did:key ---------------------------------------------------------------- */

/* base58btc (the Bitcoin alphabet) of n <= 34 bytes. */
static void put_base58(writer *w, const uint8_t *b, size_t n) {
  static const char ALPHABET[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  uint8_t digits[48]; /* ceil(34 * log(256) / log(58)) = 47 */
  size_t len = 0, i, j, zeros = 0;
  while (zeros < n && b[zeros] == 0) {
    put_ch(w, '1');
    zeros++;
  }
  for (i = zeros; i < n; i++) {
    uint32_t carry = b[i];
    for (j = 0; j < len; j++) {
      carry += (uint32_t)digits[j] << 8;
      digits[j] = (uint8_t)(carry % 58u);
      carry /= 58u;
    }
    while (carry != 0 && len < sizeof digits) {
      digits[len++] = (uint8_t)(carry % 58u);
      carry /= 58u;
    }
  }
  for (i = len; i > 0; i--) put_ch(w, ALPHABET[digits[i - 1]]);
}

int bot_key_from_seed(bot_key *k, const uint8_t seed[32]) {
  uint8_t multicodec[34];
  writer w;
  if (k == NULL || seed == NULL) return BOT_E_ARG;
  memcpy(k->seed, seed, 32);
  if (bot_ed25519_public_key(k->pk, k->seed) != 0) {
    bot_key_wipe(k);
    return BOT_E_CRYPTO;
  }
  multicodec[0] = 0xed; /* varint(0xed): Ed25519 public key */
  multicodec[1] = 0x01;
  memcpy(multicodec + 2, k->pk, 32);
  w.buf = k->did;
  w.cap = sizeof k->did - 1;
  w.len = 0;
  w.err = 0;
  put_str(&w, "did:key:z");
  put_base58(&w, multicodec, sizeof multicodec);
  k->did[w.len] = '\0';
  k->did_len = w.len;
  return w.err;
}

void bot_key_wipe(bot_key *k) {
  volatile uint8_t *p;
  size_t i;
  if (k == NULL) return;
  p = (volatile uint8_t *)k->seed;
  for (i = 0; i < sizeof k->seed; i++) p[i] = 0;
}

/* ---- payload objects ----------------------------------------------------------------- */

void bot_payload_begin(bot_payload *p, char *buf, size_t cap) {
  if (p == NULL) return;
  p->buf = buf;
  p->cap = buf == NULL ? 0 : cap;
  p->len = 0;
  p->last_key = 0;
  p->last_key_len = 0;
  p->closed = 0;
  p->err = p->cap < 2 ? BOT_E_SPACE : BOT_OK;
  if (p->err == BOT_OK) p->buf[p->len++] = '{';
}

/* Open a member: check the key and its order, write `,"key":`. Returns a writer positioned after it. */
static int member(bot_payload *p, const char *key, writer *w) {
  size_t n, i, m;
  int c;
  if (p == NULL) return BOT_E_ARG;
  if (p->err) return p->err;
  if (p->closed) return p->err = BOT_E_STATE;
  if (key == NULL) return p->err = BOT_E_ARG;
  for (n = 0; key[n] != '\0'; n++) {
    uint8_t b = (uint8_t)key[n];
    if (n >= MAX_KEY_LEN || b < 0x21 || b > 0x7E || b == '"' || b == '\\') return p->err = BOT_E_KEY;
  }
  if (n == 0) return p->err = BOT_E_KEY;
  if (p->last_key_len > 0) {
    m = n < p->last_key_len ? n : p->last_key_len;
    c = memcmp(key, p->buf + p->last_key, m);
    if (c < 0 || (c == 0 && n <= p->last_key_len)) return p->err = BOT_E_ORDER;
  }
  w->buf = p->buf;
  w->cap = p->cap - 1; /* room for the closing brace */
  w->len = p->len;
  w->err = 0;
  if (p->last_key_len > 0) put_ch(w, ',');
  put_ch(w, '"');
  i = w->len;
  put(w, key, n);
  put(w, "\":", 2);
  if (w->err) return p->err = w->err;
  p->last_key = i;
  p->last_key_len = n;
  return BOT_OK;
}

/* Close a member: keep what the writer wrote, or record its error. */
static int done(bot_payload *p, writer *w, int rc) {
  if (rc == BOT_OK) rc = w->err;
  if (rc != BOT_OK) return p->err = rc;
  p->len = w->len;
  return BOT_OK;
}

static int int_in_range(int64_t v) { return v >= -BOT_MAX_SAFE_INT && v <= BOT_MAX_SAFE_INT; }

int bot_payload_int(bot_payload *p, const char *key, int64_t v) {
  writer w;
  int rc = member(p, key, &w);
  if (rc != BOT_OK) return rc;
  if (!int_in_range(v)) return p->err = BOT_E_RANGE;
  put_i64(&w, v);
  return done(p, &w, BOT_OK);
}

int bot_payload_ints(bot_payload *p, const char *key, const int64_t *v, size_t n) {
  writer w;
  size_t i;
  int rc = member(p, key, &w);
  if (rc != BOT_OK) return rc;
  if (v == NULL && n > 0) return p->err = BOT_E_ARG;
  put_ch(&w, '[');
  for (i = 0; i < n; i++) {
    if (!int_in_range(v[i])) return p->err = BOT_E_RANGE;
    if (i > 0) put_ch(&w, ',');
    put_i64(&w, v[i]);
  }
  put_ch(&w, ']');
  return done(p, &w, BOT_OK);
}

int bot_payload_str(bot_payload *p, const char *key, const char *s, size_t len) {
  writer w;
  int rc = member(p, key, &w);
  if (rc != BOT_OK) return rc;
  if (s == NULL && len > 0) return p->err = BOT_E_ARG;
  return done(p, &w, put_json_string(&w, s == NULL ? "" : s, len));
}

int bot_payload_bool(bot_payload *p, const char *key, int v) {
  writer w;
  int rc = member(p, key, &w);
  if (rc != BOT_OK) return rc;
  put_str(&w, v ? "true" : "false");
  return done(p, &w, BOT_OK);
}

int bot_payload_null(bot_payload *p, const char *key) {
  writer w;
  int rc = member(p, key, &w);
  if (rc != BOT_OK) return rc;
  put_str(&w, "null");
  return done(p, &w, BOT_OK);
}

int bot_payload_end(bot_payload *p, size_t *len) {
  if (p == NULL) return BOT_E_ARG;
  if (p->err) return p->err;
  if (p->closed) return p->err = BOT_E_STATE;
  /* member() kept one byte free for this brace. */
  p->buf[p->len++] = '}';
  p->closed = 1;
  if (len != NULL) *len = p->len;
  return BOT_OK;
}

/* ---- envelopes ----------------------------------------------------------------------- */

int bot_envelope_sign(const bot_key *k, uint64_t seq, const bot_fields *f, char *out, size_t cap, size_t *len) {
  const char *kind;
  writer w;
  size_t signer_at, end, head, tail;
  uint8_t sig[64];
  int rc;
  if (k == NULL || f == NULL || out == NULL || len == NULL) return BOT_E_ARG;
  if (f->object != NULL && f->bytes != NULL) return BOT_E_ARG;
  if (f->object == NULL && f->bytes == NULL) return BOT_E_ARG;
  if (f->object != NULL && (f->object->err != BOT_OK || !f->object->closed)) return BOT_E_STATE;
  kind = f->kind == NULL ? "reading" : f->kind;
  rc = check_kind(kind);
  if (rc != BOT_OK) return rc;
  if (seq > (uint64_t)BOT_MAX_SAFE_INT || f->ts > (uint64_t)BOT_MAX_SAFE_INT) return BOT_E_RANGE;
  if (f->topic != NULL) {
    rc = check_topic(f->topic, f->topic_len);
    if (rc != BOT_OK) return rc;
  }

  /* "bot-envelope-v1\n" then the envelope without sig, its members in RFC 8785 order:
     enc, kind, payload, seq, signer, topic, ts, v. */
  w.buf = out;
  w.cap = cap;
  w.len = 0;
  w.err = 0;
  put(&w, DOMAIN, DOMAIN_LEN);
  put_ch(&w, '{');
  if (f->object == NULL) put_str(&w, "\"enc\":\"base64\",");
  put_str(&w, "\"kind\":\"");
  put_str(&w, kind);
  put_str(&w, "\",\"payload\":");
  if (f->object != NULL) {
    put(&w, f->object->buf, f->object->len);
  } else {
    put_ch(&w, '"');
    put_base64(&w, f->bytes, f->bytes_len, B64, 1);
    put_ch(&w, '"');
  }
  put_str(&w, ",\"seq\":");
  put_u64(&w, seq);
  put_ch(&w, ',');
  signer_at = w.len;
  put_str(&w, "\"signer\":\"");
  put(&w, k->did, k->did_len);
  put_ch(&w, '"');
  if (f->topic != NULL) {
    put_str(&w, ",\"topic\":");
    put_json_string(&w, f->topic, f->topic_len);
  }
  put_str(&w, ",\"ts\":");
  put_u64(&w, f->ts);
  put_str(&w, ",\"v\":1}");
  if (w.err) return cap >= BOT_MAX_ENVELOPE ? BOT_E_SIZE : w.err;
  end = w.len;
  /* The envelope with sig is the body plus the sig member. */
  if (end - DOMAIN_LEN + SIG_MEMBER_LEN > BOT_MAX_ENVELOPE) return BOT_E_SIZE;
  if (end - DOMAIN_LEN + SIG_MEMBER_LEN > cap) return BOT_E_SPACE;

  /* Ed25519 over the domain and the body (RFC 8032 section 5.1.6). */
  if (bot_ed25519_sign(sig, (const uint8_t *)out, end, k->seed, k->pk) != 0) return BOT_E_CRYPTO;

  /* Splice `"sig":"…",` in before "signer" and drop the domain prefix, in place. */
  head = signer_at - DOMAIN_LEN;
  tail = end - signer_at;
  memmove(out + head + SIG_MEMBER_LEN, out + signer_at, tail);
  memmove(out, out + DOMAIN_LEN, head);
  w.buf = out;
  w.cap = head + SIG_MEMBER_LEN;
  w.len = head;
  w.err = 0;
  put_str(&w, "\"sig\":\"");
  put_base64(&w, sig, sizeof sig, B64URL, 0);
  put(&w, "\",", 2);
  if (w.err || w.len != head + SIG_MEMBER_LEN) return BOT_E_CRYPTO; /* cannot happen: 86 characters */
  *len = head + SIG_MEMBER_LEN + tail;
  return BOT_OK;
}

/* ---- devices and their sequence ------------------------------------------------------ */

int bot_device_open(bot_device *d, const uint8_t seed[32], const bot_seq_store *store, uint32_t block) {
  uint64_t bound = 0;
  int rc;
  if (d == NULL || seed == NULL || store == NULL || store->load == NULL || store->save == NULL || block == 0) return BOT_E_ARG;
  rc = store->load(store->ctx, &bound);
  if (rc == 1) bound = 0;
  else if (rc != BOT_OK) return BOT_E_STORE;
  if (bound > (uint64_t)BOT_MAX_SAFE_INT + 1u) return BOT_E_RANGE;
  rc = bot_key_from_seed(&d->key, seed);
  if (rc != BOT_OK) return rc;
  d->store = store;
  d->next = bound;
  d->bound = bound;
  d->block = block;
  return BOT_OK;
}

int bot_device_sign(bot_device *d, const bot_fields *f, char *out, size_t cap, size_t *len, uint64_t *seq) {
  int rc;
  if (d == NULL || d->store == NULL) return BOT_E_ARG;
  if (d->next > (uint64_t)BOT_MAX_SAFE_INT) return BOT_E_RANGE;
  if (d->next >= d->bound) {
    /* Reserve the next block before using any of it: after a power cut, the device starts at
       the saved bound, above every seq it may have sent. */
    uint64_t limit = (uint64_t)BOT_MAX_SAFE_INT + 1u;
    uint64_t bound = limit - d->next < d->block ? limit : d->next + d->block;
    if (d->store->save(d->store->ctx, bound) != BOT_OK) return BOT_E_STORE;
    d->bound = bound;
  }
  rc = bot_envelope_sign(&d->key, d->next, f, out, cap, len);
  if (rc != BOT_OK) return rc;
  if (seq != NULL) *seq = d->next;
  d->next++;
  return BOT_OK;
}

void bot_device_close(bot_device *d) {
  if (d != NULL) bot_key_wipe(&d->key);
}

const char *bot_strerror(int code) {
  switch (code) {
    case BOT_OK: return "ok";
    case BOT_E_SPACE: return "buffer too small";
    case BOT_E_ORDER: return "payload keys must be added in ascending order, each once";
    case BOT_E_KEY: return "payload key must be 1-64 printable ASCII characters without '\"' or '\\'";
    case BOT_E_UTF8: return "string is not well-formed UTF-8";
    case BOT_E_RANGE: return "integer out of range (payload: |n| <= 2^53-1; seq, ts: 0..2^53-1)";
    case BOT_E_TOPIC: return "topic is not a legal MQTT topic name under the device profile";
    case BOT_E_KIND: return "kind must match [a-z][a-z0-9_-]{0,31}";
    case BOT_E_STORE: return "sequence store failed";
    case BOT_E_STATE: return "payload not closed, or used after an error";
    case BOT_E_SIZE: return "envelope above 65535 bytes";
    case BOT_E_CRYPTO: return "Ed25519 failed";
    case BOT_E_ARG: return "invalid argument";
    default: return "unknown error";
  }
}
