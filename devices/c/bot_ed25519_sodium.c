/*
 * bot_ed25519.h on libsodium (crypto_sign_seed_keypair, crypto_sign_detached: RFC 8032
 * Ed25519). libsodium's signing allocates nothing and makes no OS call; the application
 * calls sodium_init() once at start-up, as libsodium asks.
 */
#include <string.h>

#include <sodium.h>

#include "bot_ed25519.h"

int bot_ed25519_public_key(uint8_t pk[32], const uint8_t seed[32]) {
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  int rc = crypto_sign_seed_keypair(pk, sk, seed);
  sodium_memzero(sk, sizeof sk);
  return rc == 0 ? 0 : -1;
}

int bot_ed25519_sign(uint8_t sig[64], const uint8_t *msg, size_t len, const uint8_t seed[32], const uint8_t pk[32]) {
  /* libsodium's secret key is seed || public key. */
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  int rc;
  memcpy(sk, seed, 32);
  memcpy(sk + 32, pk, 32);
  rc = crypto_sign_detached(sig, NULL, msg, (unsigned long long)len, sk);
  sodium_memzero(sk, sizeof sk);
  return rc == 0 ? 0 : -1;
}
