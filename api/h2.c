#include "h2.h"

#include <string.h>

#include "err.h"
#include "grpc.h"

#define H2_WRITE_CHUNK (256u << 10)

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
        /* Coalesce frames into few writes (one TLS record run, one syscall
         * each), in chunks: a flush of many MiB must not be copied whole
         * twice more on its way to the socket. */
        if (grpc_buf_append(&out, data, (size_t)n) != 0) {
            rv = SWARM_ENOMEM;
            break;
        }
        if (out.len >= H2_WRITE_CHUNK) {
            if (tls_conn_write(io->tls, out.data, out.len) != 0) {
                rv = SWARM_EIO;
                break;
            }
            out.len = 0;
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

#define H2_FRAME_HEADERS 0x1
#define H2_FRAME_RST_STREAM 0x3

void h2_scan_server(struct h2_io *io)
{
    io->scan = (struct h2_scan){.on = true, .preface_left = NGHTTP2_CLIENT_MAGIC_LEN};
}

static ssize_t h2_feed(struct h2_io *io, const uint8_t *buf, size_t len)
{
    if (len == 0) {
        return 0;
    }
    return nghttp2_session_mem_recv(io->session, buf, len);
}

/* Pass `buf` to nghttp2 but for RST_STREAM frames on idle client streams
 * (see h2.h). Returns what nghttp2_session_mem_recv returned last (< 0 on a
 * fatal error). */
static ssize_t h2_scan_recv(struct h2_io *io, const uint8_t *buf, size_t len)
{
    struct h2_scan *sc = &io->scan;
    size_t i = 0;
    while (i < len) {
        size_t n;
        ssize_t rv;
        if (sc->preface_left > 0 || sc->payload_left > 0) {
            /* A run of bytes that passes (or is skipped) as it is. */
            size_t left = sc->preface_left > 0 ? sc->preface_left : sc->payload_left;
            n = len - i < left ? len - i : left;
            if (sc->preface_left > 0) {
                sc->preface_left -= (uint8_t)n;
            } else {
                sc->payload_left -= (uint32_t)n;
            }
            if (!sc->dropping && (rv = h2_feed(io, buf + i, n)) < 0) {
                return rv;
            }
            i += n;
            continue;
        }
        n = sizeof sc->hdr - sc->hdr_len;
        if (len - i < n) {
            n = len - i;
        }
        memcpy(sc->hdr + sc->hdr_len, buf + i, n);
        sc->hdr_len += (uint8_t)n;
        i += n;
        if (sc->hdr_len < sizeof sc->hdr) {
            break;
        }
        sc->hdr_len = 0;
        uint32_t length = (uint32_t)sc->hdr[0] << 16 | (uint32_t)sc->hdr[1] << 8 | sc->hdr[2];
        uint8_t type = sc->hdr[3];
        uint32_t id = ((uint32_t)sc->hdr[5] << 24 | (uint32_t)sc->hdr[6] << 16 |
                       (uint32_t)sc->hdr[7] << 8 | sc->hdr[8]) & 0x7fffffffu;
        sc->payload_left = length;
        sc->dropping = type == H2_FRAME_RST_STREAM && id % 2 == 1 && id > sc->max_stream;
        if (sc->dropping) {
            sc->dropped++;
            continue;
        }
        if (type == H2_FRAME_HEADERS && id % 2 == 1 && id > sc->max_stream) {
            sc->max_stream = id;
        }
        if ((rv = h2_feed(io, sc->hdr, sizeof sc->hdr)) < 0) {
            return rv;
        }
    }
    return (ssize_t)len;
}

int h2_recv(struct h2_io *io, const uint8_t *buf, size_t len, char *errmsg)
{
    io->in_session = true;
    ssize_t n = io->scan.on ? h2_scan_recv(io, buf, len)
                            : nghttp2_session_mem_recv(io->session, buf, len);
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
