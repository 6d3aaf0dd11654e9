#include "h2.h"

#include <string.h>

#include "err.h"
#include "grpc.h"

int h2_flush(struct h2_io *io)
{
    struct grpc_buf out = {0};
    int rv = 0;
    if (io->session == NULL) {
        return 0;
    }
    if (io->in_session) {
        io->want_flush = true;
        return 0;
    }
    io->in_session = true;
    io->want_flush = false;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(io->session, &data);
        if (n < 0) {
            rv = SWARM_EPROTO;
            break;
        }
        if (n == 0) {
            break;
        }
        /* Coalesce frames into one write: one TLS record run, one syscall. */
        if (grpc_buf_append(&out, data, (size_t)n) != 0) {
            rv = SWARM_ENOMEM;
            break;
        }
    }
    io->in_session = false;
    io->want_flush = false;
    if (out.len > 0 && tls_conn_write(io->tls, out.data, out.len) != 0 &&
        rv == 0) {
        rv = SWARM_EIO;
    }
    grpc_buf_free(&out);
    return rv;
}

int h2_recv(struct h2_io *io, const uint8_t *buf, size_t len, char *errmsg)
{
    io->in_session = true;
    ssize_t n = nghttp2_session_mem_recv(io->session, buf, len);
    io->in_session = false;
    /* Even after an error nghttp2 may have queued a GOAWAY worth sending. */
    int rv = h2_flush(io);
    if (n < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "HTTP/2: %s",
                      nghttp2_strerror((int)n));
        return SWARM_EPROTO;
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "HTTP/2 send failed");
    }
    return rv;
}

bool h2_finished(const struct h2_io *io)
{
    return !nghttp2_session_want_read(io->session) &&
           !nghttp2_session_want_write(io->session);
}
