/* nghttp2 glue shared by server.c and client.c: the session never touches a
 * socket; bytes go in with h2_recv and out with h2_flush, which may be
 * called from anywhere (inside an nghttp2 callback it is postponed until
 * the session call returns, since nghttp2 forbids re-entering it). */
#ifndef SWARM_API_H2_H
#define SWARM_API_H2_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>

#include "tls.h"

/* A server session looks at frame boundaries of what it receives (only the
 * 9-byte frame headers, never payloads) to drop one thing nghttp2 would end
 * the connection for: RST_STREAM on a stream the client never opened.
 * grpc-core clients send it when a call's deadline passes before its
 * HEADERS were written (seen with grpc-python 1.51 and a 1 us timeout);
 * RFC 9113 makes it a connection error, which would fail every other call on
 * the connection, so swarmd ignores it as grpc-core's own server does. */
struct h2_scan {
    bool on;
    uint8_t preface_left;   /* client connection preface bytes to pass */
    uint8_t hdr[9];         /* the frame header being read */
    uint8_t hdr_len;
    bool dropping;          /* the current frame's payload is skipped */
    uint32_t payload_left;  /* bytes of the current frame's payload */
    uint32_t max_stream;    /* highest stream ID a client HEADERS opened */
    uint64_t dropped;       /* RST_STREAM frames ignored */
};

struct h2_io {
    nghttp2_session *session;
    struct tls_conn *tls;
    bool in_session; /* inside nghttp2_session_mem_recv/mem_send */
    bool want_flush;
    struct h2_scan scan;
};

#define H2_NV(name, value)                                               \
    {                                                                    \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1,         \
            strlen(value), NGHTTP2_NV_FLAG_NONE                          \
    }

/* Turn on the server side's frame scan (struct h2_scan) before any byte is
 * received. */
void h2_scan_server(struct h2_io *io);
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
