/* nghttp2 glue shared by server.c and client.c: the session never touches a
 * socket; bytes go in with h2_recv and out with h2_flush, which may be
 * called from anywhere (inside an nghttp2 callback it is postponed until
 * the session call returns, since nghttp2 forbids re-entering it). */
#ifndef SWARM_API_H2_H
#define SWARM_API_H2_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>

#include "tls.h"

struct h2_io {
    nghttp2_session *session;
    struct tls_conn *tls;
    bool in_session; /* inside nghttp2_session_mem_recv/mem_send */
    bool want_flush;
};

#define H2_NV(name, value)                                               \
    {                                                                    \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1,         \
            strlen(value), NGHTTP2_NV_FLAG_NONE                          \
    }

/* Feed received bytes to the session, then flush. Returns 0, or
 * SWARM_EPROTO with a message when the peer broke the protocol (the caller
 * closes the connection). */
int h2_recv(struct h2_io *io, const uint8_t *buf, size_t len, char *errmsg);
/* Write out everything the session wants to send. 0 or SWARM_EPROTO. */
int h2_flush(struct h2_io *io);
/* True when the session has nothing left to do (GOAWAY exchanged and no
 * active streams, or a fatal error): time to close the connection. */
bool h2_finished(const struct h2_io *io);

#endif
