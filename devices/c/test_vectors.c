/*
 * Test driver (not part of the signer): reads cases of test/vectors/device-profile.json,
 * transcribed by test/integration/device-signers.test.ts into lines on stdin, signs each
 * with bot_device, and prints one line per case: "ok NAME HEX" (the envelope's bytes) or
 * "err NAME CODE". Every value that can hold arbitrary bytes is hex with an 'x' prefix.
 *
 *   case NAME | seed xHEX | seq N | ts N | kind xHEX | topic xHEX | bytes xHEX
 *   int xKEY N | ints xKEY N... | str xKEY xHEX | bool xKEY 0|1 | null xKEY | end
 *
 * `test_vectors selftest` checks the seq store and the buffer bounds instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bot_device.h"

#define MAX_LINE (300 * 1024)
#define MAX_BYTES (100 * 1024)

static char line[MAX_LINE];
static char out[2 * BOT_MAX_ENVELOPE];
static char obj[2 * BOT_MAX_ENVELOPE];
static uint8_t bytes[MAX_BYTES];
static char kind[256], topic[8192], name[256];
static uint8_t seed[32];

/* Decode "xHEX" into buf; returns the length or -1. */
static long unhex(const char *t, void *buf, size_t cap) {
  size_t n, i;
  uint8_t *b = (uint8_t *)buf;
  if (t == NULL || t[0] != 'x') return -1;
  t++;
  n = strlen(t);
  if (n % 2 != 0 || n / 2 > cap) return -1;
  for (i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(t + 2 * i, "%2x", &v) != 1) return -1;
    b[i] = (uint8_t)v;
  }
  return (long)(n / 2);
}

static int die(const char *what) {
  fprintf(stderr, "test_vectors: bad input: %s\n", what);
  return 2;
}

/* ---- selftest: an in-memory store ----------------------------------------------------- */

typedef struct {
  int has;
  uint64_t bound;
  int saves;
  int fail_save;
} mem_store;

static int mem_load(void *ctx, uint64_t *bound) {
  mem_store *m = (mem_store *)ctx;
  if (!m->has) return 1;
  *bound = m->bound;
  return BOT_OK;
}

static int mem_save(void *ctx, uint64_t bound) {
  mem_store *m = (mem_store *)ctx;
  if (m->fail_save) return BOT_E_STORE;
  m->has = 1;
  m->bound = bound;
  m->saves++;
  return BOT_OK;
}

#define CHECK(c)                                                  \
  do {                                                            \
    if (!(c)) {                                                   \
      fprintf(stderr, "selftest failed line %d: %s\n", __LINE__, #c); \
      return 1;                                                   \
    }                                                             \
  } while (0)

static int selftest(void) {
  mem_store m = {0, 0, 0, 0};
  bot_seq_store store = {&m, mem_load, mem_save};
  bot_device d;
  bot_payload p;
  bot_fields f;
  uint8_t s[32] = {1};
  size_t len, full, cap;
  uint64_t seq = 99;
  int i;
  char small[8];

  /* Reservation: block 3, five envelopes: seq 0..4, two saves (bounds 3 and 6). */
  CHECK(bot_device_open(&d, s, &store, 3) == BOT_OK);
  bot_payload_begin(&p, obj, sizeof obj);
  CHECK(bot_payload_end(&p, NULL) == BOT_OK);
  memset(&f, 0, sizeof f);
  f.object = &p;
  f.ts = 1;
  for (i = 0; i < 5; i++) {
    CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_OK);
    CHECK(seq == (uint64_t)i);
  }
  CHECK(m.saves == 2 && m.bound == 6);
  /* After a "power cut", the device resumes at the saved bound, above every seq used. */
  CHECK(bot_device_open(&d, s, &store, 3) == BOT_OK);
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_OK && seq == 6);
  /* A failing store: no envelope, and the seq is not consumed. */
  m.fail_save = 1;
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_OK && seq == 7);
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_OK && seq == 8);
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_E_STORE);
  m.fail_save = 0;
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_OK && seq == 9);
  /* The last usable seq is 2^53 - 1. */
  m.bound = (uint64_t)BOT_MAX_SAFE_INT;
  CHECK(bot_device_open(&d, s, &store, 10) == BOT_OK);
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_OK && seq == (uint64_t)BOT_MAX_SAFE_INT);
  CHECK(m.bound == (uint64_t)BOT_MAX_SAFE_INT + 1u);
  CHECK(bot_device_sign(&d, &f, out, sizeof out, &len, &seq) == BOT_E_RANGE);
  bot_device_close(&d);

  /* Every output capacity below the envelope's size fails with BOT_E_SPACE and writes only within it. */
  CHECK(bot_key_from_seed(&d.key, s) == BOT_OK);
  f.topic = "a/b";
  f.topic_len = 3;
  CHECK(bot_envelope_sign(&d.key, 5, &f, out, sizeof out, &full) == BOT_OK);
  for (cap = 0; cap < full; cap++) {
    char *buf = (char *)malloc(cap == 0 ? 1 : cap); /* the test's heap, for ASan's bounds */
    CHECK(buf != NULL);
    CHECK(bot_envelope_sign(&d.key, 5, &f, buf, cap, &len) == BOT_E_SPACE);
    free(buf);
  }
  {
    char *buf = (char *)malloc(full);
    CHECK(buf != NULL);
    CHECK(bot_envelope_sign(&d.key, 5, &f, buf, full, &len) == BOT_OK && len == full && memcmp(buf, out, full) == 0);
    free(buf);
  }
  /* A payload buffer too small, an unclosed payload, a payload closed twice, misuse. */
  bot_payload_begin(&p, small, sizeof small); /* {"ab":1} is 8 bytes: it fits exactly */
  CHECK(bot_payload_int(&p, "ab", 1) == BOT_OK);
  CHECK(bot_payload_end(&p, &len) == BOT_OK && len == 8 && memcmp(small, "{\"ab\":1}", 8) == 0);
  bot_payload_begin(&p, small, sizeof small); /* {"abc":1} is not: no room for the brace */
  CHECK(bot_payload_int(&p, "abc", 1) == BOT_E_SPACE);
  CHECK(bot_payload_end(&p, NULL) == BOT_E_SPACE);
  bot_payload_begin(&p, obj, sizeof obj);
  CHECK(bot_payload_int(&p, "a", 1) == BOT_OK);
  f.object = &p;
  CHECK(bot_envelope_sign(&d.key, 5, &f, out, sizeof out, &len) == BOT_E_STATE);
  CHECK(bot_payload_end(&p, NULL) == BOT_OK);
  CHECK(bot_payload_end(&p, NULL) == BOT_E_STATE);
  f.bytes = (const uint8_t *)"x";
  CHECK(bot_envelope_sign(&d.key, 5, &f, out, sizeof out, &len) == BOT_E_ARG);
  bot_key_wipe(&d.key);
  printf("selftest ok\n");
  return 0;
}

/* ---- vector cases -------------------------------------------------------------------- */

int main(int argc, char **argv) {
  bot_payload p;
  bot_fields f;
  bot_key k;
  int have_topic = 0, have_bytes = 0, have_kind = 0, rc = BOT_OK;
  long bytes_len = 0, topic_len = 0, n;
  uint64_t seq = 0;
  if (sodium_init() < 0) return die("sodium_init");
  if (argc == 2 && strcmp(argv[1], "selftest") == 0) return selftest();
  while (fgets(line, sizeof line, stdin) != NULL) {
    char *cmd, *a, *b;
    size_t l = strlen(line);
    if (l > 0 && line[l - 1] == '\n') line[--l] = '\0';
    cmd = strtok(line, " ");
    if (cmd == NULL) continue;
    a = strtok(NULL, " ");
    b = strtok(NULL, " ");
    if (strcmp(cmd, "case") == 0) {
      if (a == NULL || strlen(a) >= sizeof name) return die("case");
      strcpy(name, a);
      have_topic = have_bytes = have_kind = 0;
      rc = BOT_OK;
      seq = 0;
      memset(&f, 0, sizeof f);
      bot_payload_begin(&p, obj, sizeof obj);
    } else if (strcmp(cmd, "seed") == 0) {
      if (unhex(a, seed, 32) != 32) return die("seed");
    } else if (strcmp(cmd, "seq") == 0) {
      seq = strtoull(a, NULL, 10);
    } else if (strcmp(cmd, "ts") == 0) {
      f.ts = strtoull(a, NULL, 10);
    } else if (strcmp(cmd, "kind") == 0) {
      n = unhex(a, kind, sizeof kind - 1);
      if (n < 0) return die("kind");
      kind[n] = '\0';
      have_kind = 1;
    } else if (strcmp(cmd, "topic") == 0) {
      topic_len = unhex(a, topic, sizeof topic);
      if (topic_len < 0) return die("topic");
      have_topic = 1;
    } else if (strcmp(cmd, "bytes") == 0) {
      bytes_len = unhex(a, bytes, sizeof bytes);
      if (bytes_len < 0) return die("bytes");
      have_bytes = 1;
    } else if (strcmp(cmd, "int") == 0 || strcmp(cmd, "ints") == 0 || strcmp(cmd, "str") == 0 || strcmp(cmd, "bool") == 0 ||
               strcmp(cmd, "null") == 0) {
      char key[256];
      n = unhex(a, key, sizeof key - 1);
      if (n < 0) return die("key");
      key[n] = '\0';
      if (strcmp(cmd, "int") == 0) {
        bot_payload_int(&p, key, strtoll(b, NULL, 10));
      } else if (strcmp(cmd, "ints") == 0) {
        int64_t v[64];
        size_t count = 0;
        char *t = b;
        while (t != NULL && count < 64) {
          v[count++] = strtoll(t, NULL, 10);
          t = strtok(NULL, " ");
        }
        bot_payload_ints(&p, key, v, count);
      } else if (strcmp(cmd, "str") == 0) {
        static char s[MAX_BYTES];
        long sl = unhex(b, s, sizeof s);
        if (sl < 0) return die("str");
        bot_payload_str(&p, key, s, (size_t)sl);
      } else if (strcmp(cmd, "bool") == 0) {
        bot_payload_bool(&p, key, b != NULL && b[0] == '1');
      } else {
        bot_payload_null(&p, key);
      }
    } else if (strcmp(cmd, "end") == 0) {
      size_t len = 0;
      rc = bot_key_from_seed(&k, seed);
      f.kind = have_kind ? kind : NULL;
      if (have_topic) {
        f.topic = topic;
        f.topic_len = (size_t)topic_len;
      }
      if (have_bytes) {
        f.bytes = bytes;
        f.bytes_len = (size_t)bytes_len;
      } else {
        if (rc == BOT_OK) rc = bot_payload_end(&p, NULL);
        f.object = &p;
      }
      if (rc == BOT_OK) rc = bot_envelope_sign(&k, seq, &f, out, sizeof out, &len);
      bot_key_wipe(&k);
      if (rc == BOT_OK) {
        size_t i;
        printf("ok %s ", name);
        for (i = 0; i < len; i++) printf("%02x", (unsigned char)out[i]);
        printf("\n");
      } else {
        printf("err %s %d\n", name, rc);
      }
    } else {
      return die(cmd);
    }
  }
  return 0;
}
