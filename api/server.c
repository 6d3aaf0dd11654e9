/* gRPC server: listeners, HTTP/2 connections (nghttp2), calls.
 *
 * A call, happy path: HEADERS (validated: POST, content-type application/grpc
 * [+proto...], known path, role allowed, grpc-timeout parsed and a deadline
 * timer armed) -> DATA (one length-prefixed message, size-checked as soon as
 * the prefix arrives) -> END_STREAM -> request decoded -> handler runs ->
 * api_call_reply / api_call_send + api_call_finish -> response HEADERS,
 * DATA, trailers (grpc-status, grpc-message) -> stream closes -> call freed.
 *
 * Failure paths (each answered with a gRPC status, the connection survives):
 * - not POST: HTTP 405; bad content-type: HTTP 415 (both with grpc-status);
 * - unknown path: UNIMPLEMENTED; role refused: PERMISSION_DENIED, or
 *   UNAUTHENTICATED for a peer without certificate;
 * - compressed message: UNIMPLEMENTED; message over max_msg:
 *   RESOURCE_EXHAUSTED + RST_STREAM; truncated / missing / undecodable
 *   request: INTERNAL or INVALID_ARGUMENT "could not decode request";
 * - deadline passes before the handler answers: DEADLINE_EXCEEDED is sent,
 *   the call is cancelled (on_cancel), the handler's later answer dropped;
 * - client RST_STREAM or connection loss: the call is cancelled; it stays
 *   allocated until its handler finishes it, so late answers are safe.
 * Protocol errors at the HTTP/2 level (bad preface, bad frames) are handled
 * by nghttp2 (GOAWAY) and end the connection only.
 *
 * Limits (api.h, API_ANON_* / API_PEER_*): a TLS connection over the total
 * cap, or over the cap of handshakes from its source, is closed as soon as
 * accepted; an anonymous one over its source's cap is closed after the
 * handshake, and at the anonymous total the one idle longest makes room (or
 * the newcomer is closed). The session advertises the peer class's stream
 * limit and windows; windows refill only while the connection's buffered
 * request bytes are within its budget (call.c). Response bytes held for a
 * connection (call buffers + TLS write queue) are kept within its response
 * budget by resetting the streams holding the most (call.c); a TLS write
 * queue over the budget closes the connection. A sweep closes connections
 * with no call that received nothing for the idle time, and those that took
 * no response bytes for as long. Requests beyond
 * API_DECODE_TURN_BYTES decoded in one loop turn wait for the next, the
 * connections with requests waiting taking turns (call.c).
 *
 * libuv keeps a spare file descriptor and, when accept() fails with EMFILE,
 * uses it to accept and close the connection, so a full table never makes the
 * listener spin; the caps keep TLS below the table's size so that it does
 * not fill in the first place.
 *
 * A call is freed when both its stream is gone (stream_done) and no handler
 * owns it (not dispatched, or handler_done). Calls never point at the
 * server, only at their connection, which clears call->conn when it goes:
 * so a call may outlive its connection and the server. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "err.h"
#include "grpc.h"
#include "h2.h"
#include "log.h"
#include "tls.h"
#include "vec.h"

#include "server_int.h"

static void server_maybe_done(struct api_server *s);
static void server_sweep_cb(uv_timer_t *t);
static void server_turn_end_cb(uv_check_t *h);
static void server_reap_cb(uv_timer_t *t);

/* ---------------------------------------------------------- connections */

static void conn_closed_cb(struct tls_conn *tls, void *data)
{
    struct server_conn *sc = data;
    struct api_server *s = sc->s;
    free(sc);
    s->open--;
    server_maybe_done(s);
}

static void conn_uncount(struct server_conn *sc)
{
    struct api_server *s = sc->s;
    if (sc->tls) {
        s->n_tls--;
        sc->tls = false;
    }
    if (sc->anon) {
        s->n_anon--;
        sc->anon = false;
    }
    sc->handshaking = false;
}

/* Connections from `src` that are anonymous (anon) or in their handshake. */
static size_t server_count_src(struct api_server *s, const char *src, bool anon)
{
    size_t n = 0;
    for (struct server_conn *c = s->conns; c != NULL; c = c->next) {
        if (!c->closing && (anon ? c->anon : c->handshaking) && strcmp(c->src, src) == 0) {
            n++;
        }
    }
    return n;
}

/* Refusals are logged at most every 10 s: a flood must not flood the log. */
static void server_log_refusal(struct api_server *s, const char *addr, const char *why)
{
    uint64_t now = uv_now(s->loop);
    s->refused++;
    if (s->refused_logged_at == 0 || now - s->refused_logged_at >= 10000) {
        log_warn("api", "refusing connection from %s: %s (%llu refused so far)", addr, why,
                 (unsigned long long)s->refused);
        s->refused_logged_at = now;
    }
}

static void conn_unlink(struct server_conn *sc)
{
    struct api_server *s = sc->s;
    if (sc->prev != NULL) {
        sc->prev->next = sc->next;
    } else {
        s->conns = sc->next;
    }
    if (sc->next != NULL) {
        sc->next->prev = sc->prev;
    }
}

void server_conn_close(struct server_conn *sc)
{
    if (sc->closing) {
        return;
    }
    assert(!sc->io.in_session);
    sc->closing = true;
    conn_unlink(sc);
    conn_uncount(sc);
    struct api_call *next;
    for (struct api_call *call = sc->calls; call != NULL; call = next) {
        next = call->next;
        call_conn_lost(call);
    }
    if (sc->io.session != NULL) {
        nghttp2_session_del(sc->io.session);
        sc->io.session = NULL;
    }
    tls_conn_close(sc->io.tls, conn_closed_cb, sc);
}

static struct log_limit conn_dropped_limit;

static void conn_read_cb(struct tls_conn *tls, int status, const uint8_t *buf,
                         size_t len, const char *errmsg, void *data)
{
    struct server_conn *sc = data;
    char em[SWARM_ERRMSG_SIZE];
    if (sc->closing) {
        return;
    }
    if (status != 0) {
        log_debug("api", "connection from %s: %s", sc->peer.addr, errmsg);
        server_conn_close(sc);
        return;
    }
    sc->last_read = uv_now(sc->s->loop);
    if (h2_recv(&sc->io, buf, len, em) != 0) {
        log_debug("api", "connection from %s: %s", sc->peer.addr, em);
        server_conn_close(sc);
        return;
    }
    /* Answers to what it sent (PING, SETTINGS) pile up too if it does not
     * read them. */
    if (sc->doomed == NULL && tls_conn_write_queued(sc->io.tls) > sc->lim->resp_budget) {
        sc->doomed = "its unread bytes exceed the response budget";
    }
    if (sc->doomed != NULL) {
        log_warn_limited(&conn_dropped_limit, "api", "closing the connection of %s: %s",
                         sc->peer.addr, sc->doomed);
        server_conn_close(sc);
        return;
    }
    if (h2_finished(&sc->io)) {
        server_conn_close(sc);
    }
}

void server_conn_doom(struct server_conn *sc, const char *why)
{
    if (sc->closing || sc->doomed != NULL) {
        return;
    }
    sc->doomed = why;
    uv_timer_start(&sc->s->reap, server_reap_cb, 0, 0);
}

static void server_reap_cb(uv_timer_t *t)
{
    struct api_server *s = t->data;
    struct server_conn *next;
    for (struct server_conn *sc = s->conns; sc != NULL; sc = next) {
        next = sc->next;
        if (sc->doomed == NULL || sc->closing) {
            continue;
        }
        if (sc->io.in_session) {
            uv_timer_start(&s->reap, server_reap_cb, 1, 0); /* not from in there */
            continue;
        }
        log_warn_limited(&conn_dropped_limit, "api", "closing the connection of %s: %s",
                         sc->peer.addr, sc->doomed);
        server_conn_close(sc);
    }
}

static int conn_start_h2(struct server_conn *sc)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        return SWARM_ENOMEM;
    }
    call_callbacks_set(cbs);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return SWARM_ENOMEM;
    }
    /* call.c gives window back as the bytes are consumed. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    h2_scan_server(&sc->io);
    int rv = nghttp2_session_server_new2(&sc->io.session, cbs, sc, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        sc->io.session = NULL;
        return SWARM_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, sc->lim->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, sc->lim->window},
    };
    nghttp2_submit_settings(sc->io.session, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(sc->io.session, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)sc->lim->conn_window);
    sc->last_read = uv_now(sc->s->loop);
    if (h2_flush(&sc->io) != 0 ||
        tls_conn_read_start(sc->io.tls, conn_read_cb, sc) != 0) {
        return SWARM_EIO;
    }
    return 0;
}

static const struct api_alpn *server_alpn_find(struct api_server *s,
                                               const char *proto)
{
    for (size_t i = 0; i < s->n_alpns; i++) {
        if (strcmp(s->alpns[i].proto, proto) == 0) {
            return &s->alpns[i];
        }
    }
    return NULL;
}

/* An anonymous peer within its source's cap takes a place among the
 * anonymous connections, if need be the place of the one idle longest. */
static bool conn_admit_anon(struct server_conn *sc)
{
    struct api_server *s = sc->s;
    if (server_count_src(s, sc->src, true) >= API_ANON_PER_SOURCE) {
        server_log_refusal(s, sc->peer.addr, "too many connections without certificate from "
                                             "this address");
        return false;
    }
    if (s->n_anon >= API_ANON_TOTAL) {
        struct server_conn *victim = NULL;
        for (struct server_conn *c = s->conns; c != NULL; c = c->next) {
            if (c->anon && !c->closing && c->calls == NULL && !c->io.in_session &&
                (victim == NULL || c->last_read < victim->last_read)) {
                victim = c;
            }
        }
        if (victim == NULL) {
            server_log_refusal(s, sc->peer.addr, "too many connections without certificate");
            return false;
        }
        log_debug("api", "closing idle connection from %s to make room", victim->peer.addr);
        server_conn_close(victim);
    }
    sc->anon = true;
    s->n_anon++;
    return true;
}
static struct log_limit cert_refused_limit;

static void conn_handshake_cb(struct tls_conn *tls, int status,
                              const char *errmsg, void *data)
{
    struct server_conn *sc = data;
    char em[SWARM_ERRMSG_SIZE];
    if (sc->closing) {
        return;
    }
    sc->handshaking = false;
    if (status != 0) {
        /* A client certificate that fails verification (expired, another
         * CA) is an audit event; other handshake failures (port scans,
         * clients giving up) are noise. */
        if (errmsg != NULL && strstr(errmsg, "certificate") != NULL) {
            log_warn_limited(&cert_refused_limit, "api",
                             "refusing TLS connection from %s: %s", sc->peer.addr, errmsg);
        } else {
            log_debug("api", "TLS from %s: %s", sc->peer.addr, errmsg);
        }
        server_conn_close(sc);
        return;
    }
    if (tls_conn_peer(tls, &sc->peer, em) != 0) {
        log_warn_limited(&cert_refused_limit, "api", "refusing %s: %s", sc->peer.addr, em);
        server_conn_close(sc);
        return;
    }
    sc->lim = api_server_limits(sc->s, sc->peer.role);
    const char *alpn = tls_conn_alpn(tls);
    const struct api_alpn *raw = NULL;
    if (alpn[0] != '\0' && strcmp(alpn, "h2") != 0) {
        raw = server_alpn_find(sc->s, alpn);
    }
    if (raw != NULL) {
        /* The raw protocol's owner takes the connection over. */
        struct api_server *s = sc->s;
        struct api_peer peer = sc->peer;
        conn_unlink(sc);
        conn_uncount(sc);
        free(sc);
        s->open--;
        raw->accept_cb(tls, &peer, raw->data);
        return;
    }
    if (sc->peer.role == API_ROLE_ANONYMOUS && !conn_admit_anon(sc)) {
        server_conn_close(sc);
        return;
    }
    if (conn_start_h2(sc) != 0) {
        server_conn_close(sc);
    }
}

static void server_connection_cb(uv_stream_t *stream, int status)
{
    struct listener *l = stream->data;
    struct api_server *s = l->s;
    char em[SWARM_ERRMSG_SIZE];
    if (s->shutting_down || status < 0) {
        return;
    }
    struct server_conn *sc = calloc(1, sizeof *sc);
    if (sc == NULL) {
        return;
    }
    sc->s = s;
    sc->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = sc;
    }
    s->conns = sc;
    s->open++;
    int rv = tls_conn_accept(stream, l->tls ? s->ctx : NULL, conn_handshake_cb,
                             sc, &sc->io.tls, em);
    if (rv != 0) {
        log_warn("api", "accept: %s", em);
        if (sc->io.tls == NULL) {
            conn_unlink(sc);
            free(sc);
            s->open--;
            return;
        }
        server_conn_close(sc);
        return;
    }
    if (!l->tls) {
        tls_conn_peer(sc->io.tls, &sc->peer, em);
        sc->lim = &s->peer_limits;
        if (conn_start_h2(sc) != 0) {
            server_conn_close(sc);
        }
        return;
    }
    snprintf(sc->peer.addr, sizeof sc->peer.addr, "%s",
             tls_conn_addr(sc->io.tls));
    snprintf(sc->src, sizeof sc->src, "%s", sc->peer.addr);
    char *colon = strrchr(sc->src, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    sc->last_read = uv_now(s->loop);
    sc->tls = true;
    s->n_tls++;
    if (s->n_tls > s->max_tls) {
        server_log_refusal(s, sc->peer.addr, "too many connections");
        server_conn_close(sc);
        return;
    }
    if (server_count_src(s, sc->src, false) >= API_HANDSHAKES_PER_SOURCE) {
        server_log_refusal(s, sc->peer.addr, "too many TLS handshakes from this address");
        server_conn_close(sc);
        return;
    }
    sc->handshaking = true;
}

/* --------------------------------------------------------------- server */

static int server_alpn_select_cb(SSL *ssl, const unsigned char **out,
                                 unsigned char *outlen, const unsigned char *in,
                                 unsigned inlen, void *arg)
{
    struct api_server *s = arg;
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, s->alpn_wire, s->alpn_wire_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

/* A peer that took none of the response bytes waiting for it (a zero
 * window, or a socket it does not read) for the idle time. */
static bool conn_stalled(struct server_conn *sc, uint64_t now)
{
    uint64_t idle = sc->lim->idle_ms;
    return idle > 0 && (tls_conn_write_stalled_ms(sc->io.tls) >= idle ||
                        (sc->queued > 0 && now - sc->out_at >= idle));
}

/* Close connections with no call that received nothing for their class's
 * idle time, and those that took no response bytes for as long (TLS only:
 * the control socket is this host's root). */
static void server_sweep_cb(uv_timer_t *t)
{
    struct api_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct server_conn *next;
    for (struct server_conn *sc = s->conns; sc != NULL; sc = next) {
        next = sc->next;
        if (!sc->closing && sc->tls && sc->lim != NULL && sc->io.session != NULL &&
            !sc->io.in_session && conn_stalled(sc, now)) {
            log_warn_limited(&conn_dropped_limit, "api",
                             "closing the connection of %s: it took no response bytes "
                             "for %llu ms", sc->peer.addr,
                             (unsigned long long)sc->lim->idle_ms);
            server_conn_close(sc);
            continue;
        }
        if (sc->closing || !sc->tls || sc->lim == NULL || sc->io.session == NULL ||
            sc->io.in_session || sc->calls != NULL || sc->lim->idle_ms == 0 ||
            now - sc->last_read < sc->lim->idle_ms) {
            continue;
        }
        log_debug("api", "closing idle connection from %s", sc->peer.addr);
        nghttp2_submit_goaway(sc->io.session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(sc->io.session),
                              NGHTTP2_NO_ERROR, (const uint8_t *)"idle", 4);
        h2_flush(&sc->io);
        server_conn_close(sc);
    }
}

/* The I/O of a loop turn is done: the next turn may decode afresh. */
static void server_turn_end_cb(uv_check_t *h)
{
    struct api_server *s = h->data;
    s->turn_bytes = 0;
}

struct api_server *api_server_new(uv_loop_t *loop, size_t max_msg)
{
    struct api_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->loop = loop;
    s->max_msg = max_msg ? max_msg : API_DEFAULT_MAX_MSG;
    s->tls_port = -1;
    s->alpn_wire[0] = 2;
    memcpy(s->alpn_wire + 1, "h2", 2);
    s->alpn_wire_len = 3;
    s->anon_limits = (struct api_limits){
        .max_msg = API_ANON_MAX_MSG,
        .max_streams = API_ANON_MAX_STREAMS,
        .window = API_ANON_WINDOW,
        .conn_window = API_ANON_MAX_STREAMS * API_ANON_WINDOW,
        .budget = API_ANON_MAX_STREAMS * (API_ANON_MAX_MSG + GRPC_PREFIX_LEN),
        .call_ms = API_ANON_CALL_MS,
        .idle_ms = API_ANON_IDLE_MS,
        .resp_budget = API_ANON_RESP_BUDGET,
    };
    s->peer_limits = (struct api_limits){
        .max_msg = s->max_msg,
        .max_streams = API_PEER_MAX_STREAMS,
        .window = API_PEER_WINDOW,
        .conn_window = API_PEER_CONN_WINDOW,
        .budget = API_PEER_BUDGET,
        .call_ms = 0,
        .idle_ms = API_PEER_IDLE_MS,
        .resp_budget = API_PEER_RESP_BUDGET,
    };
    s->max_tls = API_TLS_CONNS_MAX;
    s->turn_budget = API_DECODE_TURN_BYTES;
    uv_timer_init(loop, &s->grace);
    s->grace.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_idle_init(loop, &s->decode_idle);
    s->decode_idle.data = s;
    uv_check_init(loop, &s->turn_end);
    s->turn_end.data = s;
    uv_timer_init(loop, &s->reap);
    s->reap.data = s;
    s->open = SERVER_HANDLES;
    uv_timer_start(&s->sweep, server_sweep_cb, SERVER_SWEEP_MS, SERVER_SWEEP_MS);
    uv_unref((uv_handle_t *)&s->sweep);
    uv_check_start(&s->turn_end, server_turn_end_cb);
    uv_unref((uv_handle_t *)&s->turn_end);
    return s;
}

void api_server_set_decode_budget(struct api_server *s, size_t bytes)
{
    s->turn_budget = bytes;
}

struct api_limits *api_server_limits(struct api_server *s, enum api_role role)
{
    return role == API_ROLE_ANONYMOUS ? &s->anon_limits : &s->peer_limits;
}

int api_server_register(struct api_server *s,
                        const ProtobufCServiceDescriptor *service,
                        const char *method, unsigned roles, api_handler_cb cb,
                        void *data)
{
    const ProtobufCMethodDescriptor *m = NULL;
    for (unsigned i = 0; i < service->n_methods; i++) {
        if (strcmp(service->methods[i].name, method) == 0) {
            m = &service->methods[i];
        }
    }
    if (m == NULL) {
        return SWARM_EINVAL;
    }
    if (vec_grow(s->routes, s->cap_routes, s->n_routes + 1) != 0) {
        return SWARM_ENOMEM;
    }
    struct api_route *r = &s->routes[s->n_routes];
    size_t n = strlen(service->name) + strlen(method) + 3;
    r->path = malloc(n);
    if (r->path == NULL) {
        return SWARM_ENOMEM;
    }
    snprintf(r->path, n, "/%s/%s", service->name, method);
    r->input = m->input;
    r->roles = roles;
    r->cb = cb;
    r->data = data;
    s->n_routes++;
    return 0;
}

int api_server_add_alpn(struct api_server *s, const char *proto,
                        void (*accept_cb)(struct tls_conn *conn,
                                          const struct api_peer *peer,
                                          void *data),
                        void *data)
{
    size_t n = strlen(proto);
    if (n == 0 || n >= sizeof s->alpns[0].proto || strcmp(proto, "h2") == 0 ||
        s->alpn_wire_len + 1 + n > sizeof s->alpn_wire) {
        return SWARM_EINVAL;
    }
    if (server_alpn_find(s, proto) != NULL) {
        return SWARM_EEXIST;
    }
    if (vec_grow(s->alpns, s->cap_alpns, s->n_alpns + 1) != 0) {
        return SWARM_ENOMEM;
    }
    struct api_alpn *a = &s->alpns[s->n_alpns++];
    memcpy(a->proto, proto, n + 1);
    a->accept_cb = accept_cb;
    a->data = data;
    s->alpn_wire[s->alpn_wire_len++] = (unsigned char)n;
    memcpy(s->alpn_wire + s->alpn_wire_len, proto, n);
    s->alpn_wire_len += (unsigned)n;
    return 0;
}

static int listener_new(struct api_server *s, bool tls, struct listener **out)
{
    struct listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return SWARM_ENOMEM;
    }
    l->s = s;
    l->tls = tls;
    if (tls) {
        uv_tcp_init(s->loop, &l->h.tcp);
    } else {
        uv_pipe_init(s->loop, &l->h.pipe, 0);
    }
    l->h.handle.data = l;
    l->next = s->listeners;
    s->listeners = l;
    s->open++;
    *out = l;
    return 0;
}

static void listener_close_cb(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct api_server *s = l->s;
    free(l);
    s->open--;
    server_maybe_done(s);
}

static void listener_drop(struct api_server *s, struct listener *l)
{
    s->listeners = l->next;
    uv_close(&l->h.handle, listener_close_cb);
}

int api_server_listen_unix(struct api_server *s, const char *path,
                           char *errmsg)
{
    struct listener *l;
    struct stat st;
    int rv;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "%s exists and is not a socket", path);
            return SWARM_EEXIST;
        }
        unlink(path); /* stale socket of a previous run */
    }
    rv = listener_new(s, false, &l);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return rv;
    }
    /* Never let the socket exist with a wider mode, even for a moment. */
    mode_t old = umask(0177);
    rv = uv_pipe_bind(&l->h.pipe, path);
    umask(old);
    if (rv == 0) {
        chmod(path, 0600);
        rv = uv_listen(&l->h.stream, 128, server_connection_cb);
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "listen on %s: %s", path,
                      uv_strerror(rv));
        listener_drop(s, l);
        return SWARM_EIO;
    }
    return 0;
}

/* Raise the soft descriptor limit to the hard one and keep TLS connections
 * API_FD_RESERVE below it. */
static void server_fd_cap(struct api_server *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t cur = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = cur;
        }
    }
    s->max_tls = API_TLS_CONNS_MAX;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < API_TLS_CONNS_MAX + API_FD_RESERVE) {
        s->max_tls = rl.rlim_cur > 2 * API_FD_RESERVE ? rl.rlim_cur - API_FD_RESERVE
                                                      : rl.rlim_cur / 2;
    }
    log_debug("api", "at most %zu TLS connections (descriptor limit %llu)", s->max_tls,
              (unsigned long long)rl.rlim_cur);
}

int api_server_listen_tls(struct api_server *s, const char *addr,
                          SSL_CTX *ctx, char *errmsg)
{
    struct sockaddr_storage sa;
    struct listener *l;
    if (tls_addr_parse(addr, &sa) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid listen address \"%s\" (want IP:PORT)", addr);
        return SWARM_EINVAL;
    }
    int rv = listener_new(s, true, &l);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return rv;
    }
    rv = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen(&l->h.stream, 128, server_connection_cb);
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "listen on %s: %s", addr,
                      uv_strerror(rv));
        listener_drop(s, l);
        return SWARM_EIO;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&bound, &len) == 0) {
        s->tls_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    api_server_set_tls_ctx(s, ctx);
    server_fd_cap(s);
    return 0;
}

void api_server_set_tls_ctx(struct api_server *s, SSL_CTX *ctx)
{
    SSL_CTX_up_ref(ctx);
    /* The old context keeps its callback: handshakes still running on it
     * must negotiate h2 too, and the server outlives them. */
    SSL_CTX_set_alpn_select_cb(ctx, server_alpn_select_cb, s);
    SSL_CTX_free(s->ctx);
    s->ctx = ctx;
}

void api_server_close_tls(struct api_server *s)
{
    struct listener **pp = &s->listeners;
    struct server_conn *sc, *next;
    while (*pp != NULL) {
        struct listener *l = *pp;
        if (l->tls) {
            *pp = l->next;
            uv_close(&l->h.handle, listener_close_cb);
        } else {
            pp = &l->next;
        }
    }
    /* Connections inside an nghttp2 callback close when it returns; this is
     * called from handlers on other connections (the control socket). */
    for (sc = s->conns; sc != NULL; sc = next) {
        next = sc->next;
        if (tls_conn_is_tls(sc->io.tls) && !sc->io.in_session) {
            server_conn_close(sc);
        }
    }
    SSL_CTX_free(s->ctx);
    s->ctx = NULL;
    s->tls_port = -1;
}

void api_server_set_authorize(struct api_server *s, api_authorize_cb cb, void *data)
{
    s->authorize = cb;
    s->authorize_data = data;
}

void api_server_recheck(struct api_server *s, const char *node_id)
{
    struct server_conn *sc, *next;
    char msg[SWARM_ERRMSG_SIZE];
    if (s->authorize == NULL) {
        return;
    }
    for (sc = s->conns; sc != NULL; sc = next) {
        next = sc->next;
        if (sc->closing || sc->granted == 0 || sc->io.in_session ||
            (node_id != NULL && strcmp(sc->peer.node_id, node_id) != 0)) {
            continue;
        }
        struct api_peer peer = sc->peer;
        msg[0] = '\0';
        enum api_status st = s->authorize(&peer, s->authorize_data, msg);
        if (st == API_OK && (unsigned)peer.role >= sc->granted) {
            sc->granted = peer.role;
            continue;
        }
        log_warn("api", "closing the connection of %s (node \"%s\"): %s", sc->peer.addr,
                 sc->peer.node_id, st != API_OK ? msg : "its node lost the manager role");
        server_conn_close(sc);
    }
}

int api_server_tls_port(const struct api_server *s)
{
    return s->tls_port;
}

static void server_free(struct api_server *s)
{
    void (*done)(void *) = s->done;
    void *data = s->done_data;
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].path);
    }
    free(s->routes);
    free(s->alpns);
    if (s->ctx != NULL) {
        SSL_CTX_set_alpn_select_cb(s->ctx, NULL, NULL);
        SSL_CTX_free(s->ctx);
    }
    free(s);
    if (done != NULL) {
        done(data);
    }
}

static void server_handle_close_cb(uv_handle_t *h)
{
    struct api_server *s = h->data;
    if (--s->open == 0) {
        server_free(s);
    }
}

static void server_maybe_done(struct api_server *s)
{
    /* Only the server's own handles left: close them, and free from the
     * last close callback. */
    if (s->shutting_down && s->open == SERVER_HANDLES &&
        !uv_is_closing((uv_handle_t *)&s->grace)) {
        uv_close((uv_handle_t *)&s->grace, server_handle_close_cb);
        uv_close((uv_handle_t *)&s->sweep, server_handle_close_cb);
        uv_close((uv_handle_t *)&s->decode_idle, server_handle_close_cb);
        uv_close((uv_handle_t *)&s->turn_end, server_handle_close_cb);
        uv_close((uv_handle_t *)&s->reap, server_handle_close_cb);
    }
}

static void server_grace_cb(uv_timer_t *t)
{
    struct api_server *s = t->data;
    while (s->conns != NULL) {
        server_conn_close(s->conns);
    }
    server_maybe_done(s);
}

void api_server_shutdown(struct api_server *s, uint64_t grace_ms,
                         void (*done)(void *data), void *data)
{
    if (s->shutting_down) {
        return;
    }
    s->shutting_down = true;
    s->done = done;
    s->done_data = data;
    while (s->listeners != NULL) {
        listener_drop(s, s->listeners);
    }
    struct server_conn *next;
    for (struct server_conn *sc = s->conns; sc != NULL; sc = next) {
        next = sc->next;
        if (sc->io.session == NULL) {
            server_conn_close(sc);
            continue;
        }
        nghttp2_submit_goaway(sc->io.session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(sc->io.session),
                              NGHTTP2_NO_ERROR, NULL, 0);
        if (sc->io.in_session) {
            h2_flush(&sc->io); /* postponed: checked again after recv */
        } else if (h2_flush(&sc->io) != 0 || h2_finished(&sc->io)) {
            server_conn_close(sc);
        }
    }
    uv_timer_start(&s->grace, server_grace_cb, grace_ms, 0);
    server_maybe_done(s);
}
