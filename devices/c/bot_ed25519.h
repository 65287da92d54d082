/*
 * The Ed25519 primitive bot_device.c uses (RFC 8032 section 5.1, pure Ed25519, no prehash),
 * as a two-function port: implement these for another library (Monocypher, a secure
 * element) and link that file instead of bot_ed25519_sodium.c. Both return 0 on success.
 */
#ifndef BOT_ED25519_H
#define BOT_ED25519_H

#include <stddef.h>
#include <stdint.h>

/* The 32-byte public key of a 32-byte secret seed (RFC 8032 section 5.1.5). */
int bot_ed25519_public_key(uint8_t pk[32], const uint8_t seed[32]);
/* The 64-byte signature of msg (RFC 8032 section 5.1.6); pk is the seed's public key. */
int bot_ed25519_sign(uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t seed[32], const uint8_t pk[32]);

#endif
