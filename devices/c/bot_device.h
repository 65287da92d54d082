/*
 * bot_device: a reference signer of Blockchain of Things envelopes for devices, in C99.
 *
 * It writes the canonical bytes of an envelope of the device profile
 * (docs/device-profile.md) into a buffer the caller provides, signs them with Ed25519
 * (RFC 8032) over "bot-envelope-v1\n" followed by those bytes, and returns the envelope
 * JSON a gateway's bot-verify node accepts. No heap, no OS call, no global state: the
 * secret seed, the output buffer, the clock (ts) and the store of the sequence number are
 * all the caller's. The Ed25519 primitive is behind bot_ed25519.h (bot_ed25519_sodium.c
 * implements it with libsodium).
 *
 * Every function returns BOT_OK (0) or a negative BOT_E_* code; on an error nothing that
 * was written to the output buffer is an envelope.
 */
#ifndef BOT_DEVICE_H
#define BOT_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes. */
#define BOT_OK 0
#define BOT_E_SPACE (-1)   /* the caller's buffer is too small */
#define BOT_E_ORDER (-2)   /* a payload key is not above the previous one (order, or duplicate) */
#define BOT_E_KEY (-3)     /* a payload key is empty, longer than 64 bytes, or not printable ASCII without '"' and '\' */
#define BOT_E_UTF8 (-4)    /* a string is not well-formed UTF-8 (RFC 3629) */
#define BOT_E_RANGE (-5)   /* an integer outside the profile's range (seq, ts: 0..2^53-1; payload: |n| <= 2^53-1) */
#define BOT_E_TOPIC (-6)   /* not a legal MQTT topic name under the profile */
#define BOT_E_KIND (-7)    /* kind does not match [a-z][a-z0-9_-]{0,31} */
#define BOT_E_STORE (-8)   /* the sequence store failed to load or save */
#define BOT_E_STATE (-9)   /* a payload used before bot_payload_end, or after an error */
#define BOT_E_SIZE (-10)   /* the envelope would exceed BOT_MAX_ENVELOPE bytes */
#define BOT_E_CRYPTO (-11) /* the Ed25519 primitive failed */
#define BOT_E_ARG (-12)    /* a NULL pointer or contradictory fields */

/* Largest envelope, in bytes: the ledger's default entry limit (65535: a tlog-tiles
 * entry bundle gives each entry a uint16 length). */
#define BOT_MAX_ENVELOPE 65535u
/* Largest integer the profile carries: 2^53 - 1 (I-JSON, RFC 7493 section 2.2). */
#define BOT_MAX_SAFE_INT 9007199254740991LL
/* Room for a did:key ("did:key:z" + base58btc of 34 bytes) and its NUL. */
#define BOT_DID_CAP 64
/* Bytes an envelope needs beyond its payload and topic (kind, did:key, numbers, sig, punctuation), with margin. */
#define BOT_ENVELOPE_OVERHEAD 400u

/* An Ed25519 key pair and its did:key. Wipe it with bot_key_wipe when done. */
typedef struct {
  uint8_t seed[32];
  uint8_t pk[32];
  char did[BOT_DID_CAP];
  size_t did_len;
} bot_key;

/* Derive the public key and did:key (multicodec 0xed01, base58btc) from a 32-byte RFC 8032 seed. */
int bot_key_from_seed(bot_key *k, const uint8_t seed[32]);
/* Overwrite the key's secret with zeros. */
void bot_key_wipe(bot_key *k);

/*
 * A JSON object payload, written member by member in ascending key order (byte order; keys
 * are ASCII, so this is RFC 8785's UTF-16 order). Errors are sticky: once a call failed,
 * every later call returns the same code, so a caller may check only bot_payload_end.
 */
typedef struct {
  char *buf;
  size_t cap;
  size_t len;
  size_t last_key;     /* offset in buf of the previous key's text */
  size_t last_key_len; /* 0: no member yet */
  int err;
  int closed;
} bot_payload;

/* Start an empty object in buf (at least 2 bytes). */
void bot_payload_begin(bot_payload *p, char *buf, size_t cap);
/* Add an integer member; |v| <= 2^53 - 1. */
int bot_payload_int(bot_payload *p, const char *key, int64_t v);
/* Add an array of n integers (n may be 0). */
int bot_payload_ints(bot_payload *p, const char *key, const int64_t *v, size_t n);
/* Add a string member: len bytes of well-formed UTF-8 (NUL and other controls allowed, escaped). */
int bot_payload_str(bot_payload *p, const char *key, const char *s, size_t len);
/* Add true (v != 0) or false. */
int bot_payload_bool(bot_payload *p, const char *key, int v);
/* Add null. */
int bot_payload_null(bot_payload *p, const char *key);
/* Close the object; *len (optional) receives its length in bytes. */
int bot_payload_end(bot_payload *p, size_t *len);

/* What an envelope carries besides signer, seq and sig. Exactly one payload form. */
typedef struct {
  const char *kind;    /* NUL-terminated; NULL means "reading" */
  const char *topic;   /* MQTT topic name, topic_len bytes of UTF-8; NULL means no topic */
  size_t topic_len;
  uint64_t ts;         /* milliseconds since the Unix epoch, from the device's clock */
  const bot_payload *object; /* a payload closed with bot_payload_end, or NULL */
  const uint8_t *bytes;      /* binary payload, carried as base64 with "enc":"base64"; used when object is NULL */
  size_t bytes_len;
} bot_fields;

/*
 * Write the signed envelope for this seq into out (cap bytes: the envelope's size is
 * enough; BOT_MAX_ENVELOPE always is) and set *len to its length. The result is the JSON text to
 * publish: the RFC 8785 canonical bytes of the whole envelope, no NUL added.
 */
int bot_envelope_sign(const bot_key *k, uint64_t seq, const bot_fields *f, char *out, size_t cap, size_t *len);

/*
 * Where the sequence number lives across reboots (flash, NVS, EEPROM, a file): the caller's.
 * The stored value is a bound: every seq used so far is below it. load returns BOT_OK with
 * the value, 1 when nothing was ever stored, or a negative code; save returns BOT_OK only
 * once the value is durable (it will be read back after a power cut).
 */
typedef struct {
  void *ctx;
  int (*load)(void *ctx, uint64_t *bound);
  int (*save)(void *ctx, uint64_t bound);
} bot_seq_store;

/* A device: its key and its sequence, reserved `block` numbers at a time (1 = a store write per envelope). */
typedef struct {
  bot_key key;
  const bot_seq_store *store;
  uint64_t next;
  uint64_t bound;
  uint32_t block;
} bot_device;

/* Open a device: derive its key from the seed and read its sequence bound from the store. */
int bot_device_open(bot_device *d, const uint8_t seed[32], const bot_seq_store *store, uint32_t block);
/*
 * Sign the next envelope: takes the next seq (saving a new bound to the store first when the
 * reserved block is used up, so a seq is never used twice, even across a power cut), then
 * bot_envelope_sign. *seq (optional) receives the seq used.
 */
int bot_device_sign(bot_device *d, const bot_fields *f, char *out, size_t cap, size_t *len, uint64_t *seq);
/* Wipe the device's key. */
void bot_device_close(bot_device *d);

/* A short English name of a BOT_* code, for logs. */
const char *bot_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
