/* TLS over libuv with memory BIOs.
 *
 * Ciphertext read from the socket goes into `rbio`; OpenSSL's output lands
 * in `wbio` and is flushed to the socket after every OpenSSL call that may
 * produce some (handshake, SSL_write, SSL_read, SSL_shutdown).
 *
 * Client dial: happy path connect -> ClientHello -> handshake done ->
 * handshake cb(0). Failure paths: connect error (cb with "connection
 * refused"...), handshake error (cb with "TLS handshake failed: ..."), EOF
 * during the handshake, timeout (SWARM_ETIMEDOUT). tls_conn_close at any
 * point cancels everything and suppresses the handshake cb.
 *
 * Plaintext arriving before tls_conn_read_start stays in OpenSSL (TLS) or in
 * the kernel (unix socket) and is delivered from a zero timer after it. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define TLS_HANDSHAKE_TIMEOUT_MS 10000
#define TLS_CLOSE_TIMEOUT_MS 1000
#define TLS_READ_BUF 65536

struct tls_write_req {
    uv_write_t req;
    struct tls_conn *conn;
    size_t len;
    char data[];
};

struct tls_conn {
    uv_loop_t *loop;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t timer; /* dial/handshake timeout, then close fallback */
    uv_timer_t defer; /* delivers data that arrived before read_start */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    SSL *ssl; /* NULL: plaintext */
    BIO *rbio;
    BIO *wbio;
    bool connected;
    bool handshake_done;
    bool failed;
    bool sock_dead; /* the socket itself failed: nothing more to flush */
    bool closing;
    bool handles_closing;
    bool uv_reading;
    int handles_open;
    int eof_status; /* socket error/EOF seen while no reader was set */
    char eof_msg[128];
    tls_handshake_cb hs_cb;
    void *hs_data;
    tls_read_cb read_cb;
    void *read_data;
    tls_close_cb close_cb;
    void *close_data;
    size_t pending;
    uint64_t write_progress_at; /* uv_now() of the last write completed, or
                                 * of the first one queued behind none */
    X509 *peer_cert;
    char alpn[32];
    char addr[64];
    char rbuf[TLS_READ_BUF];
};

static void tls_flush(struct tls_conn *c);
static void tls_pump(struct tls_conn *c);

static void tls_ssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, size, "%s", r ? r : "protocol error");
    ERR_clear_error();
}

static void tls_handshake_fail(struct tls_conn *c, int rv, const char *msg)
{
    tls_handshake_cb cb = c->hs_cb;
    c->failed = true;
    uv_timer_stop(&c->timer);
    c->hs_cb = NULL;
    if (cb != NULL) {
        cb(c, rv, msg, c->hs_data);
    }
}

static void tls_handshake_ok(struct tls_conn *c)
{
    tls_handshake_cb cb = c->hs_cb;
    c->handshake_done = true;
    uv_timer_stop(&c->timer);
    if (c->ssl != NULL) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        c->peer_cert = SSL_get1_peer_certificate(c->ssl);
        SSL_get0_alpn_selected(c->ssl, &p, &n);
        if (n >= sizeof c->alpn) {
            n = 0;
        }
        memcpy(c->alpn, p, n);
        c->alpn[n] = '\0';
    }
    c->hs_cb = NULL;
    if (cb != NULL) {
        cb(c, 0, NULL, c->hs_data);
    }
}

static void tls_do_handshake(struct tls_conn *c)
{
    char msg[SWARM_ERRMSG_SIZE];
    char reason[256];
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    tls_flush(c);
    if (r == 1) {
        tls_handshake_ok(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return;
    }
    long v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        ERR_clear_error();
        snprintf(msg, sizeof msg,
                 "TLS handshake failed: certificate verify failed (%s)",
                 X509_verify_cert_error_string(v));
    } else {
        tls_ssl_reason(reason, sizeof reason);
        snprintf(msg, sizeof msg, "TLS handshake failed: %s", reason);
    }
    tls_handshake_fail(c, SWARM_ETLS, msg);
}

static void tls_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct tls_conn *c = h->data;
    buf->base = c->rbuf;
    buf->len = sizeof c->rbuf;
}

/* An end of stream: to the reader if there is one, else kept for later. */
static void tls_deliver_eof(struct tls_conn *c, int rv, const char *msg)
{
    tls_read_cb cb = c->read_cb;
    c->failed = true;
    if (cb == NULL) {
        c->eof_status = rv;
        snprintf(c->eof_msg, sizeof c->eof_msg, "%s", msg);
        return;
    }
    c->read_cb = NULL;
    cb(c, rv, NULL, 0, msg, c->read_data);
}

static void tls_read_cb_uv(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tls_conn *c = s->data;
    char msg[128];
    if (c->closing || n == 0) {
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        c->uv_reading = false;
        c->sock_dead = true;
        if (n == UV_EOF) {
            snprintf(msg, sizeof msg, "connection closed by peer");
        } else {
            snprintf(msg, sizeof msg, "read: %s", uv_strerror((int)n));
        }
        if (c->ssl != NULL && !c->handshake_done) {
            char m2[192];
            snprintf(m2, sizeof m2, "TLS handshake failed: %s", msg);
            tls_handshake_fail(c, SWARM_EIO, m2);
            return;
        }
        if (c->ssl != NULL && c->read_cb != NULL) {
            tls_pump(c); /* whatever was decrypted before the EOF */
        }
        if (!c->closing && !c->failed) {
            tls_deliver_eof(c, SWARM_EIO, msg);
        }
        return;
    }
    if (c->ssl == NULL) {
        if (c->read_cb != NULL) {
            c->read_cb(c, 0, (const uint8_t *)buf->base, (size_t)n, NULL,
                       c->read_data);
        }
        return;
    }
    BIO_write(c->rbio, buf->base, (int)n);
    if (!c->handshake_done) {
        tls_do_handshake(c);
        if (c->closing || !c->handshake_done) {
            return;
        }
    }
    if (c->read_cb != NULL) {
        tls_pump(c);
    }
}

/* Decrypt and deliver everything OpenSSL can give now. */
static void tls_pump(struct tls_conn *c)
{
    char msg[300];
    char reason[256];
    while (!c->closing && c->read_cb != NULL) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->rbuf, sizeof c->rbuf);
        if (r > 0) {
            c->read_cb(c, 0, (const uint8_t *)c->rbuf, (size_t)r, NULL,
                       c->read_data);
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        tls_flush(c);
        if (e == SSL_ERROR_WANT_READ) {
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            tls_deliver_eof(c, SWARM_EIO, "connection closed by peer");
        } else {
            tls_ssl_reason(reason, sizeof reason);
            snprintf(msg, sizeof msg, "TLS error: %s", reason);
            tls_deliver_eof(c, SWARM_ETLS, msg);
        }
        return;
    }
    if (!c->closing) {
        tls_flush(c);
    }
}

static void tls_write_cb(uv_write_t *req, int status)
{
    struct tls_write_req *w = (struct tls_write_req *)req;
    struct tls_conn *c = w->conn;
    c->pending -= w->len;
    c->write_progress_at = uv_now(c->loop);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        c->sock_dead = true;
    }
    if (status < 0 && !c->closing && !c->failed) {
        char msg[128];
        snprintf(msg, sizeof msg, "write: %s", uv_strerror(status));
        tls_deliver_eof(c, SWARM_EIO, msg);
    }
}

static int tls_write_raw(struct tls_conn *c, const void *data, size_t len,
                         BIO *from)
{
    struct tls_write_req *w = malloc(sizeof *w + len);
    if (w == NULL) {
        return SWARM_ENOMEM;
    }
    w->conn = c;
    w->len = len;
    if (uv_stream_get_write_queue_size(&c->h.stream) == 0) {
        c->write_progress_at = uv_now(c->loop);
    }
    if (from != NULL) {
        BIO_read(from, w->data, (int)len);
    } else {
        memcpy(w->data, data, len);
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rv = uv_write(&w->req, &c->h.stream, &b, 1, tls_write_cb);
    if (rv != 0) {
        free(w);
        return SWARM_EIO;
    }
    c->pending += len;
    return 0;
}

static void tls_flush(struct tls_conn *c)
{
    if (c->ssl == NULL || !c->connected || c->handles_closing) {
        return;
    }
    size_t n = BIO_ctrl_pending(c->wbio);
    if (n > 0) {
        tls_write_raw(c, NULL, n, c->wbio);
    }
}

static struct tls_conn *tls_conn_alloc(uv_loop_t *loop, bool tcp)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->loop = loop;
    if (tcp) {
        uv_tcp_init(loop, &c->h.tcp);
        /* RPCs are small request/answer exchanges: without this, Nagle and
         * delayed ACKs add ~40 ms to a call. libuv applies it to the socket
         * once it exists (connect or accept). */
        uv_tcp_nodelay(&c->h.tcp, 1);
    } else {
        uv_pipe_init(loop, &c->h.pipe, 0);
    }
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->h.handle.data = c;
    c->timer.data = c;
    c->defer.data = c;
    c->handles_open = 3;
    return c;
}

static int tls_ssl_setup(struct tls_conn *c, SSL_CTX *ctx, char *errmsg)
{
    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        c->ssl = NULL;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "SSL_new failed");
        return SWARM_ETLS;
    }
    /* An empty memory BIO means "try again later", not EOF. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    return 0;
}

static void tls_timeout_cb(uv_timer_t *t)
{
    struct tls_conn *c = t->data;
    char msg[128];
    if (c->closing) {
        return;
    }
    snprintf(msg, sizeof msg, "timed out connecting to %s", c->addr);
    tls_handshake_fail(c, SWARM_ETIMEDOUT, msg);
}

int tls_conn_accept(uv_stream_t *server, SSL_CTX *ctx, tls_handshake_cb cb,
                    void *data, struct tls_conn **out, char *errmsg)
{
    bool tcp = server->type == UV_TCP;
    struct tls_conn *c = tls_conn_alloc(server->loop, tcp);
    if (c == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    *out = c;
    int rv = uv_accept(server, &c->h.stream);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "accept: %s",
                      uv_strerror(rv));
        return SWARM_EIO; /* the caller closes */
    }
    c->connected = true;
    snprintf(c->addr, sizeof c->addr, "unix");
    if (tcp) {
        struct sockaddr_storage sa;
        int len = sizeof sa;
        char ip[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
            if (sa.ss_family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
                uv_ip6_name(s6, ip, sizeof ip);
                port = ntohs(s6->sin6_port);
            } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
                uv_ip4_name(s4, ip, sizeof ip);
                port = ntohs(s4->sin_port);
            }
        }
        snprintf(c->addr, sizeof c->addr, "%s:%d", ip, port);
    }
    if (ctx == NULL) {
        c->handshake_done = true;
        return 0;
    }
    rv = tls_ssl_setup(c, ctx, errmsg);
    if (rv != 0) {
        return rv;
    }
    SSL_set_accept_state(c->ssl);
    c->hs_cb = cb;
    c->hs_data = data;
    uv_timer_start(&c->timer, tls_timeout_cb, TLS_HANDSHAKE_TIMEOUT_MS, 0);
    uv_read_start(&c->h.stream, tls_alloc_cb, tls_read_cb_uv);
    c->uv_reading = true;
    return 0;
}

static void tls_connect_cb(uv_connect_t *req, int status)
{
    struct tls_conn *c = req->data;
    char msg[160];
    if (c->closing) {
        return;
    }
    if (status < 0) {
        snprintf(msg, sizeof msg, "%s", uv_strerror(status));
        tls_handshake_fail(c, SWARM_EUNAVAIL, msg);
        return;
    }
    c->connected = true;
    if (c->ssl == NULL) {
        tls_handshake_ok(c);
        return;
    }
    uv_read_start(&c->h.stream, tls_alloc_cb, tls_read_cb_uv);
    c->uv_reading = true;
    tls_do_handshake(c);
}

int tls_addr_parse(const char *addr, struct sockaddr_storage *sa)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= sizeof host) {
        return SWARM_EINVAL;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535) {
        return SWARM_EINVAL;
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0) {
        return 0;
    }
    return SWARM_EINVAL;
}

int tls_conn_dial(uv_loop_t *loop, const char *addr, SSL_CTX *ctx,
                  const char *server_name, const char *const *alpn,
                  uint64_t timeout_ms, tls_handshake_cb cb, void *data,
                  struct tls_conn **out, char *errmsg)
{
    struct sockaddr_storage sa;
    unsigned char wire[256];
    size_t wl = 0;
    int rv;
    if (tls_addr_parse(addr, &sa) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid address \"%s\" (want IP:PORT)", addr);
        return SWARM_EINVAL;
    }
    for (size_t i = 0; alpn != NULL && alpn[i] != NULL; i++) {
        size_t n = strlen(alpn[i]);
        if (n == 0 || n > 255 || wl + 1 + n > sizeof wire) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid ALPN list");
            return SWARM_EINVAL;
        }
        wire[wl++] = (unsigned char)n;
        memcpy(wire + wl, alpn[i], n);
        wl += n;
    }
    struct tls_conn *c = tls_conn_alloc(loop, true);
    if (c == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    rv = tls_ssl_setup(c, ctx, errmsg);
    if (rv != 0) {
        goto err_after_alloc;
    }
    SSL_set_connect_state(c->ssl);
    if (server_name != NULL && (!SSL_set_tlsext_host_name(c->ssl, server_name) ||
                                !SSL_set1_host(c->ssl, server_name))) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid server name");
        rv = SWARM_EINVAL;
        goto err_after_alloc;
    }
    if (wl > 0 && SSL_set_alpn_protos(c->ssl, wire, (unsigned)wl) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "cannot set ALPN");
        rv = SWARM_ETLS;
        goto err_after_alloc;
    }
    c->hs_cb = cb;
    c->hs_data = data;
    c->connect_req.data = c;
    rv = uv_tcp_connect(&c->connect_req, &c->h.tcp, (struct sockaddr *)&sa,
                        tls_connect_cb);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "connect %s: %s", addr,
                      uv_strerror(rv));
        rv = SWARM_EUNAVAIL;
        goto err_after_alloc;
    }
    uv_timer_start(&c->timer, tls_timeout_cb,
                   timeout_ms ? timeout_ms : TLS_HANDSHAKE_TIMEOUT_MS, 0);
    *out = c;
    return 0;

err_after_alloc:
    c->hs_cb = NULL;
    tls_conn_close(c, NULL, NULL);
    return rv;
}

int tls_conn_dial_unix(uv_loop_t *loop, const char *path,
                       tls_handshake_cb cb, void *data,
                       struct tls_conn **out, char *errmsg)
{
    struct tls_conn *c = tls_conn_alloc(loop, false);
    if (c == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    snprintf(c->addr, sizeof c->addr, "unix");
    c->hs_cb = cb;
    c->hs_data = data;
    c->connect_req.data = c;
    uv_pipe_connect(&c->connect_req, &c->h.pipe, path, tls_connect_cb);
    *out = c;
    return 0;
}

static void tls_defer_cb(uv_timer_t *t)
{
    struct tls_conn *c = t->data;
    if (c->closing || c->read_cb == NULL) {
        return;
    }
    if (c->ssl != NULL) {
        tls_pump(c);
    }
    if (!c->closing && c->eof_status != 0 && c->read_cb != NULL) {
        int rv = c->eof_status;
        c->eof_status = 0;
        tls_deliver_eof(c, rv, c->eof_msg);
    }
}

int tls_conn_read_start(struct tls_conn *c, tls_read_cb cb, void *data)
{
    if (c->closing) {
        return SWARM_ESTATE;
    }
    c->read_cb = cb;
    c->read_data = data;
    if (c->eof_status == 0 && !c->uv_reading) {
        uv_read_start(&c->h.stream, tls_alloc_cb, tls_read_cb_uv);
        c->uv_reading = true;
    }
    if (c->ssl != NULL || c->eof_status != 0) {
        uv_timer_start(&c->defer, tls_defer_cb, 0, 0);
    }
    return 0;
}

void tls_conn_read_stop(struct tls_conn *c)
{
    c->read_cb = NULL;
    /* Stop pulling from the socket too, so that a paused reader pushes back
     * on its peer through TCP instead of piling bytes up in the BIO. The
     * handshake still needs its reads. */
    if (c->uv_reading && (c->ssl == NULL || c->handshake_done)) {
        uv_read_stop(&c->h.stream);
        c->uv_reading = false;
    }
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
    if (c->closing || c->failed || !c->connected) {
        return SWARM_EIO;
    }
    if (len == 0) {
        return 0;
    }
    if (c->ssl == NULL) {
        return tls_write_raw(c, buf, len, NULL);
    }
    ERR_clear_error();
    /* A memory BIO never pushes back, so SSL_write takes it all. */
    int r = SSL_write(c->ssl, buf, (int)len);
    if (r <= 0 || (size_t)r != len) {
        ERR_clear_error();
        return SWARM_ETLS;
    }
    tls_flush(c);
    return 0;
}

size_t tls_conn_pending(const struct tls_conn *c)
{
    return c->pending;
}

size_t tls_conn_write_queued(const struct tls_conn *c)
{
    return uv_stream_get_write_queue_size(&c->h.stream);
}

uint64_t tls_conn_write_stalled_ms(const struct tls_conn *c)
{
    if (uv_stream_get_write_queue_size(&c->h.stream) == 0) {
        return 0;
    }
    return uv_now(c->loop) - c->write_progress_at;
}

static void tls_handle_close_cb(uv_handle_t *h)
{
    struct tls_conn *c = h->data;
    if (--c->handles_open > 0) {
        return;
    }
    tls_close_cb cb = c->close_cb;
    if (cb != NULL) {
        cb(c, c->close_data);
    }
    X509_free(c->peer_cert);
    SSL_free(c->ssl);
    free(c);
}

static void tls_close_handles(struct tls_conn *c)
{
    if (c->handles_closing) {
        return;
    }
    c->handles_closing = true;
    uv_close(&c->h.handle, tls_handle_close_cb);
    uv_close((uv_handle_t *)&c->timer, tls_handle_close_cb);
    uv_close((uv_handle_t *)&c->defer, tls_handle_close_cb);
}

static void tls_shutdown_cb(uv_shutdown_t *req, int status)
{
    tls_close_handles(req->data);
}

static void tls_close_timeout_cb(uv_timer_t *t)
{
    tls_close_handles(t->data);
}

void tls_conn_close(struct tls_conn *c, tls_close_cb cb, void *data)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    c->hs_cb = NULL;
    c->read_cb = NULL;
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->defer);
    if (!c->connected || c->sock_dead) {
        tls_close_handles(c);
        return;
    }
    if (c->ssl != NULL && c->handshake_done && !c->failed) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        tls_flush(c);
    }
    /* Let queued writes (a GOAWAY, an alert) reach the peer, but not for
     * longer than a moment: a peer that does not read cannot hold us. */
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->h.stream, tls_shutdown_cb) != 0) {
        tls_close_handles(c);
        return;
    }
    uv_timer_start(&c->timer, tls_close_timeout_cb, TLS_CLOSE_TIMEOUT_MS, 0);
}

X509 *tls_conn_peer_cert(const struct tls_conn *c)
{
    return c->peer_cert;
}

const char *tls_conn_addr(const struct tls_conn *c)
{
    return c->addr;
}

const char *tls_conn_alpn(const struct tls_conn *c)
{
    return c->alpn;
}

bool tls_conn_is_tls(const struct tls_conn *c)
{
    return c->ssl != NULL;
}

static void tls_name_field(X509_NAME *name, int nid, char *out, size_t size)
{
    out[0] = '\0';
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0) {
        return;
    }
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int n = ASN1_STRING_length(s);
    if (n < 0 || (size_t)n >= size) {
        return;
    }
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
    out[n] = '\0';
}

int tls_conn_peer(const struct tls_conn *c, struct api_peer *out,
                  char *errmsg)
{
    char ou[64];
    memset(out, 0, sizeof *out);
    snprintf(out->addr, sizeof out->addr, "%s", c->addr);
    if (c->ssl == NULL) {
        out->role = API_ROLE_LOCAL;
        return 0;
    }
    if (c->peer_cert == NULL) {
        out->role = API_ROLE_ANONYMOUS;
        return 0;
    }
    /* The context verifies during the handshake; this guards against a
     * context configured with SSL_VERIFY_NONE. */
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "client certificate not verified");
        return SWARM_EPERM;
    }
    X509_NAME *name = X509_get_subject_name(c->peer_cert);
    tls_name_field(name, NID_organizationalUnitName, ou, sizeof ou);
    tls_name_field(name, NID_commonName, out->node_id, sizeof out->node_id);
    tls_name_field(name, NID_organizationName, out->cluster_id,
                   sizeof out->cluster_id);
    if (strcmp(ou, API_OU_MANAGER) == 0) {
        out->role = API_ROLE_MANAGER;
    } else if (strcmp(ou, API_OU_WORKER) == 0) {
        out->role = API_ROLE_WORKER;
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "client certificate has unknown role \"%s\"", ou);
        return SWARM_EPERM;
    }
    return 0;
}
