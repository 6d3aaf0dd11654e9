/* Join tokens: SWMTKN-1-<digest>-<secret>, where <digest> is the base36
 * SHA-256 of the root CA certificate (DER) zero-padded to 50 characters and
 * <secret> is base36 of 16 random bytes zero-padded to 25. The digest lets a
 * joining node check the root CA it fetched before sending anything secret;
 * the secret decides the role. Pure: no I/O. */
#ifndef SWARM_DAEMON_TOKEN_H
#define SWARM_DAEMON_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_PREFIX "SWMTKN-1-"
#define TOKEN_DIGEST_LEN 50
#define TOKEN_SECRET_LEN 25
#define TOKEN_LEN (sizeof(TOKEN_PREFIX) - 1 + TOKEN_DIGEST_LEN + 1 + TOKEN_SECRET_LEN)

struct token_parts {
    char digest[TOKEN_DIGEST_LEN + 1];
    char secret[TOKEN_SECRET_LEN + 1];
};

/* A new token for the root CA whose DER SHA-256 is `ca_digest` (32 bytes).
 * `out` holds TOKEN_LEN + 1 bytes. Returns 0 or a SWARM_E* code. */
int token_generate(const unsigned char ca_digest[32], char *out);

/* Split and validate the shape; SWARM_ETOKEN with the message "invalid join
 * token" (Docker's wording) when malformed, NULL or empty. */
int token_parse(const char *token, struct token_parts *out, char *errmsg);

/* True when the token's digest part names the root CA with DER SHA-256
 * `ca_digest`. */
bool token_matches_ca(const struct token_parts *t, const unsigned char ca_digest[32]);

/* Constant-time comparison of two whole tokens (only the lengths leak);
 * false if either is NULL. */
bool token_equal(const char *a, const char *b);

#endif
