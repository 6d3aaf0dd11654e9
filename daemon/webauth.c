/* See webauth.h. */
#include "webauth.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "err.h"

bool webauth_addr_is_loopback(const char *addr)
{
    char ip[ADDR_STRLEN];
    int port;
    struct in_addr a;
    addr_split(addr, ip, &port);
    return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int webauth_token_check(const char *token, char *errmsg)
{
    size_t n = strlen(token);
    if (n < WEBAUTH_TOKEN_MIN || n > WEBAUTH_TOKEN_MAX) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "the web token must be %d to %d characters long (it has %zu); "
                      "make one with `openssl rand -hex 16`",
                      WEBAUTH_TOKEN_MIN, WEBAUTH_TOKEN_MAX, n);
        return SWARM_EINVAL;
    }
    if (strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-") != n) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "the web token may only hold letters, digits and . _ ~ + / = -");
        return SWARM_EINVAL;
    }
    return 0;
}

/* Digests of equal length: CRYPTO_memcmp then reveals neither where the
 * strings differ nor how long the secret is. */
bool webauth_token_equal(const char *want, const char *got)
{
    unsigned char a[32], b[32];
    unsigned int la = 0, lb = 0;
    if (got == NULL || want == NULL) {
        return false;
    }
    if (EVP_Digest(want, strlen(want), a, &la, EVP_sha256(), NULL) != 1 ||
        EVP_Digest(got, strlen(got), b, &lb, EVP_sha256(), NULL) != 1 || la != lb) {
        return false;
    }
    return CRYPTO_memcmp(a, b, la) == 0;
}

const char *webauth_bearer(const char *authorization)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0) {
        return NULL;
    }
    authorization += 7;
    while (*authorization == ' ') {
        authorization++;
    }
    return authorization;
}
