/* Who may see the visualizer (`swarmd --web-addr`, `--web-token`). Pure.
 *
 * The page shows the whole swarm (nodes, addresses, services, images) and
 * has no other authentication, so a web address outside loopback needs a
 * token: a shared secret given on the command line or in a file, sent once
 * as ?token= (the server then sets a cookie) or on every request as
 * "Authorization: Bearer TOKEN". Compared in constant time. */
#ifndef SWARM_DAEMON_WEBAUTH_H
#define SWARM_DAEMON_WEBAUTH_H

#include <stdbool.h>
#include <stddef.h>

#define WEBAUTH_TOKEN_MIN 16
#define WEBAUTH_TOKEN_MAX 256
#define WEBAUTH_COOKIE "swarmd_web_token"

/* True when addr ("IP:PORT", IPv4, already validated) is on 127.0.0.0/8. */
bool webauth_addr_is_loopback(const char *addr);

/* A token is WEBAUTH_TOKEN_MIN to WEBAUTH_TOKEN_MAX characters from
 * [A-Za-z0-9._~+/=-] (safe in a URL query, a cookie and a header).
 * 0, or SWARM_EINVAL with a message saying what is wrong. */
int webauth_token_check(const char *token, char *errmsg);

/* Does `got` (NULL: nothing sent) equal `want`? The time taken does not
 * depend on where they differ, nor on want's length. */
bool webauth_token_equal(const char *want, const char *got);

/* The token sent in an "Authorization: Bearer TOKEN" header value, or NULL. */
const char *webauth_bearer(const char *authorization);

#endif
