/* Join tokens: see token.h for the format and why it has two parts. */
#include "token.h"

#include "err.h"
#include "id.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <string.h>

#define TOKEN_PREFIX_LEN (sizeof(TOKEN_PREFIX) - 1)

/* Docker prints this one message for every malformed token; users and
 * scripts know it, so we keep it verbatim. */
#define TOKEN_INVALID_MSG "invalid join token"

int token_generate(const unsigned char ca_digest[32], char *out)
{
    char digest[TOKEN_DIGEST_LEN + 1];
    char secret[TOKEN_SECRET_LEN + 1];
    unsigned char raw[16];

    if (random_bytes(raw, sizeof raw) != 0) {
        return SWARM_EIO;
    }
    /* 2^256 needs 50 base36 digits and 2^128 needs 25: these cannot fail,
     * but a width mistake must not produce a short token. */
    if (base36_encode(ca_digest, 32, TOKEN_DIGEST_LEN, digest) != 0 ||
        base36_encode(raw, sizeof raw, TOKEN_SECRET_LEN, secret) != 0) {
        return SWARM_EINVAL;
    }
    snprintf(out, TOKEN_LEN + 1, "%s%s-%s", TOKEN_PREFIX, digest, secret);
    return 0;
}

static bool token_is_base36(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) {
            return false;
        }
    }
    return true;
}

int token_parse(const char *token, struct token_parts *out, char *errmsg)
{
    /* Length first: it bounds every later read, and a whole-token length
     * check also rejects extra or missing dashes and parts. */
    if (token == NULL || strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN ||
        memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0) {
        goto err;
    }
    const char *digest = token + TOKEN_PREFIX_LEN;
    const char *secret = digest + TOKEN_DIGEST_LEN + 1;
    if (digest[TOKEN_DIGEST_LEN] != '-' || !token_is_base36(digest, TOKEN_DIGEST_LEN) ||
        !token_is_base36(secret, TOKEN_SECRET_LEN)) {
        goto err;
    }
    memcpy(out->digest, digest, TOKEN_DIGEST_LEN);
    out->digest[TOKEN_DIGEST_LEN] = '\0';
    memcpy(out->secret, secret, TOKEN_SECRET_LEN);
    out->secret[TOKEN_SECRET_LEN] = '\0';
    return 0;

err:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, TOKEN_INVALID_MSG);
    return SWARM_ETOKEN;
}

bool token_matches_ca(const struct token_parts *t, const unsigned char ca_digest[32])
{
    char want[TOKEN_DIGEST_LEN + 1];
    if (base36_encode(ca_digest, 32, TOKEN_DIGEST_LEN, want) != 0) {
        return false;
    }
    return CRYPTO_memcmp(t->digest, want, TOKEN_DIGEST_LEN) == 0;
}

bool token_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return false;
    }
    /* Lengths are not secret (every valid token has TOKEN_LEN characters);
     * only the content comparison must not stop at the first difference. */
    size_t na = strlen(a), nb = strlen(b);
    if (na != nb) {
        return false;
    }
    return CRYPTO_memcmp(a, b, na) == 0;
}
