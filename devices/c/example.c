/*
 * A device on Linux: its key in a file (the secret seed never leaves it; only the did:key is
 * printed), its seq bound in another file, and simulated readings printed as envelopes, one
 * JSON text per line, ready for `mosquitto_pub -l -t TOPIC`.
 *
 *   example keygen KEYFILE                       new seed (hex, mode 0600), prints its did:key
 *   example did KEYFILE                          prints the did:key of a key file
 *   example sign KEYFILE SEQFILE TOPIC [COUNT [BLOCK]]
 *                                                prints COUNT envelopes (default 1) of kind
 *                                                "reading"; BLOCK seq numbers are reserved per
 *                                                write of SEQFILE (default 16)
 *
 * Only this file touches the OS (files, clock, random numbers); bot_device.c does not.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bot_device.h"

static int fail(const char *what, int code) {
  fprintf(stderr, "example: %s: %s\n", what, code < 0 ? bot_strerror(code) : strerror(errno));
  return 1;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Read a 32-byte seed written as 64 hex digits (trailing newline allowed). */
static int read_seed(const char *file, uint8_t seed[32]) {
  char text[80];
  size_t n, i;
  struct stat st;
  FILE *f = fopen(file, "r");
  if (f == NULL) return -1;
  if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
    fclose(f);
    fprintf(stderr, "example: %s is readable by others; chmod 600 it\n", file);
    return -2;
  }
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) n--;
  if (n != 64) return -2;
  for (i = 0; i < 32; i++) {
    int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return -2;
    seed[i] = (uint8_t)(hi * 16 + lo);
  }
  sodium_memzero(text, sizeof text);
  return 0;
}

/* ---- the seq store: a file holding the bound, replaced atomically ------------------------ */

static int file_load(void *ctx, uint64_t *bound) {
  const char *file = (const char *)ctx;
  char text[32];
  char *end;
  size_t n;
  unsigned long long v;
  FILE *f = fopen(file, "r");
  if (f == NULL) return errno == ENOENT ? 1 : BOT_E_STORE;
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  errno = 0;
  v = strtoull(text, &end, 10);
  if (errno != 0 || end == text || (*end != '\0' && *end != '\n')) return BOT_E_STORE;
  *bound = (uint64_t)v;
  return BOT_OK;
}

/* Write SEQFILE.tmp, fsync it, rename it over SEQFILE, fsync the folder: the bound is durable when this returns 0. */
static int file_save(void *ctx, uint64_t bound) {
  const char *file = (const char *)ctx;
  char tmp[4096], text[32];
  int fd, len, ok;
  if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp) return BOT_E_STORE;
  len = snprintf(text, sizeof text, "%llu\n", (unsigned long long)bound);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return BOT_E_STORE;
  ok = write(fd, text, (size_t)len) == len && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, file) != 0) return BOT_E_STORE;
  /* And the folder, so that the rename itself survives a power cut. */
  {
    char *slash = strrchr(tmp, '/');
    if (slash == NULL) strcpy(tmp, ".");
    else if (slash == tmp) tmp[1] = '\0';
    else *slash = '\0';
    fd = open(tmp, O_RDONLY);
    if (fd < 0) return BOT_E_STORE;
    ok = fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
  }
  return ok ? BOT_OK : BOT_E_STORE;
}

static int keygen(const char *file) {
  uint8_t seed[32];
  char hex[65];
  bot_key k;
  int fd, rc;
  randombytes_buf(seed, sizeof seed);
  sodium_bin2hex(hex, sizeof hex, seed, sizeof seed);
  hex[64] = '\n';
  fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return fail(file, 1);
  rc = write(fd, hex, 65) == 65 && fsync(fd) == 0;
  rc = close(fd) == 0 && rc;
  sodium_memzero(hex, sizeof hex);
  if (!rc) return fail(file, 1);
  rc = bot_key_from_seed(&k, seed);
  sodium_memzero(seed, sizeof seed);
  if (rc != BOT_OK) return fail("key", rc);
  printf("%s\n", k.did);
  bot_key_wipe(&k);
  return 0;
}

static int sign(const char *keyfile, const char *seqfile, const char *topic, long count, long block) {
  static char out[BOT_MAX_ENVELOPE];
  char obj[256];
  uint8_t seed[32];
  bot_seq_store store;
  bot_device dev;
  long i;
  int rc = read_seed(keyfile, seed);
  if (rc == -1) return fail(keyfile, 1);
  if (rc != 0) return fail(keyfile, BOT_E_ARG);
  store.ctx = (void *)seqfile;
  store.load = file_load;
  store.save = file_save;
  rc = bot_device_open(&dev, seed, &store, (uint32_t)block);
  sodium_memzero(seed, sizeof seed);
  if (rc != BOT_OK) return fail("open", rc);
  for (i = 0; i < count; i++) {
    struct timespec now;
    bot_payload p;
    bot_fields f;
    size_t len;
    static const char unit[] = "\xc2\xb0" "C"; /* °C */
    clock_gettime(CLOCK_REALTIME, &now);
    /* Keys in ascending order: centi_celsius < n < sensor < unit. */
    bot_payload_begin(&p, obj, sizeof obj);
    bot_payload_int(&p, "centi_celsius", 1950 + (i * 37) % 150);
    bot_payload_int(&p, "n", i);
    bot_payload_str(&p, "sensor", "example", 7);
    bot_payload_str(&p, "unit", unit, sizeof unit - 1);
    rc = bot_payload_end(&p, NULL);
    if (rc != BOT_OK) break;
    memset(&f, 0, sizeof f);
    f.topic = topic;
    f.topic_len = strlen(topic);
    f.ts = (uint64_t)now.tv_sec * 1000u + (uint64_t)(now.tv_nsec / 1000000);
    f.object = &p;
    rc = bot_device_sign(&dev, &f, out, sizeof out, &len, NULL);
    if (rc != BOT_OK) break;
    fwrite(out, 1, len, stdout);
    fputc('\n', stdout);
  }
  bot_device_close(&dev);
  if (fflush(stdout) != 0) return fail("stdout", 1);
  return rc == BOT_OK ? 0 : fail("sign", rc);
}

int main(int argc, char **argv) {
  if (sodium_init() < 0) return fail("sodium_init", BOT_E_CRYPTO);
  if (argc == 3 && strcmp(argv[1], "keygen") == 0) return keygen(argv[2]);
  if (argc == 3 && strcmp(argv[1], "did") == 0) {
    uint8_t seed[32];
    bot_key k;
    int rc = read_seed(argv[2], seed);
    if (rc != 0) return fail(argv[2], rc == -1 ? 1 : BOT_E_ARG);
    rc = bot_key_from_seed(&k, seed);
    sodium_memzero(seed, sizeof seed);
    if (rc != BOT_OK) return fail("key", rc);
    printf("%s\n", k.did);
    bot_key_wipe(&k);
    return 0;
  }
  if (argc >= 5 && argc <= 7 && strcmp(argv[1], "sign") == 0) {
    long count = argc >= 6 ? strtol(argv[5], NULL, 10) : 1;
    long block = argc >= 7 ? strtol(argv[6], NULL, 10) : 16;
    if (count < 0 || block < 1 || block > 1000000) return fail("COUNT or BLOCK", BOT_E_ARG);
    return sign(argv[2], argv[3], argv[4], count, block);
  }
  fprintf(stderr,
          "usage: example keygen KEYFILE\n"
          "       example did KEYFILE\n"
          "       example sign KEYFILE SEQFILE TOPIC [COUNT [BLOCK]]\n");
  return 2;
}
