/* Error codes shared by every module.
 *
 * Functions return 0 or one of the negative SWARM_E* codes below; the detail
 * for a human goes into an error message buffer the caller owns (see
 * errmsg_printf). Library errors (libuv, OpenSSL, SQLite, nghttp2) are
 * translated into these codes once, at the boundary where they are met.
 *
 * Error messages, one convention (raft's): a function that can explain a
 * failure takes `char *errmsg` last, a buffer of SWARM_ERRMSG_SIZE bytes the
 * caller owns (no size argument), and fills it with errmsg_printf(errmsg,
 * SWARM_ERRMSG_SIZE, ...) or adds context with errmsg_wrapf on the way up.
 * The text is for a human and never parsed; the code is what callers test.
 *
 * Allocation policy of the daemon (swarmd and every library it links):
 * every allocation is checked, and a failed one fails the operation that
 * needed it with SWARM_ENOMEM (an RPC answers RESOURCE_EXHAUSTED "out of
 * memory"), undoing what that operation did so far; nothing aborts. A
 * manager holds the cluster's state and other nodes' sessions: one request
 * too big for the memory left must not take those down. Where there is no
 * caller to fail (a callback, a timer), the work is dropped with a log line
 * and retried by its owner's next tick. swarmctl, a one-shot command, exits
 * instead (cli_oom in cli/format.h). Growable arrays use common/vec.h. */
#ifndef SWARM_COMMON_ERR_H
#define SWARM_COMMON_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* 1024: the longest messages are swarmctl's, Docker-worded usage errors
 * ("\"swarmctl service create\" requires at least 1 argument.\nSee ...
 * Usage: ...") and Go template errors quoting the template; a server's
 * message relayed by swarmctl fits too. */
#define SWARM_ERRMSG_SIZE 1024

#define SWARM_ERRORS(X)                                                   \
    X(SWARM_ENOMEM, -1, "out of memory")                                  \
    X(SWARM_EINVAL, -2, "invalid argument")                               \
    X(SWARM_EIO, -3, "I/O error")                                         \
    X(SWARM_ENOTFOUND, -4, "not found")                                   \
    X(SWARM_EEXIST, -5, "already exists")                                 \
    X(SWARM_ECONFLICT, -6, "version conflict")                            \
    X(SWARM_ENOLEADER, -7, "no leader")                                   \
    X(SWARM_ENOTLEADER, -8, "not the leader")                             \
    X(SWARM_ECORRUPT, -9, "corrupt data")                                 \
    X(SWARM_EPROTO, -10, "protocol error")                                \
    X(SWARM_ETLS, -11, "TLS error")                                       \
    X(SWARM_EPERM, -12, "permission denied")                              \
    X(SWARM_ESTATE, -13, "wrong state")                                   \
    X(SWARM_ETIMEDOUT, -14, "timed out")                                  \
    X(SWARM_ECANCELED, -15, "canceled")                                   \
    X(SWARM_EUNAVAIL, -16, "unavailable")                                 \
    X(SWARM_EAMBIGUOUS, -17, "ambiguous")                                 \
    X(SWARM_ETOKEN, -18, "invalid join token")                            \
    X(SWARM_ECRYPTO, -19, "cryptography error")                           \
    X(SWARM_ESQL, -20, "database error")                                  \
    X(SWARM_ERAFT, -21, "raft error")

enum {
#define SWARM_ERR_ENUM(name, value, text) name = value,
    SWARM_ERRORS(SWARM_ERR_ENUM)
#undef SWARM_ERR_ENUM
};

/* Static text for a SWARM_E* code (or "unknown error"). */
const char *swarm_strerror(int rv);

/* Write a formatted message into buf (SWARM_ERRMSG_SIZE bytes or `size`).
 * Does nothing when buf is NULL. */
void errmsg_printf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message in buf: "<fmt>: <old message>". */
void errmsg_wrapf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
