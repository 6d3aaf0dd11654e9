/* The visualizer's server (webd.h).
 *
 * A request: the token is checked (query, cookie or bearer header) ->
 * "/" gets the page (after ?token=, a redirect to "/" that sets the
 * cookie), "/api/state" a fresh rendering, "/api/events" a stream.
 * A stream: a client with the current state queued -> MHD calls
 * sse_read_cb whenever it can write -> frames are copied out; an empty
 * queue suspends the connection -> push() (a store change after
 * WEBD_COALESCE_MS, the tick) renders, and when the text differs from the
 * last frame queues a new one to every client and resumes the suspended
 * ones -> MHD writes on its next run.
 * Failures: a wrong or missing token: 401; a 17th stream: 503; a rendering
 * that fails: logged, the clients keep the last state; a client gone: MHD
 * frees its response (sse_free_cb), which drops the client; webd_close ends
 * every stream (resuming the suspended ones, as MHD requires) before MHD
 * stops. */
#include "webd.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "httpd.h"
#include "log.h"
#include "webauth.h"
#include "webfeed.h"

/* The page, embedded at build time from web/index.html (web/embed.py). */
extern const char webd_page[];
extern const size_t webd_page_len;

#define WEBD_SSE_BLOCK (16 * 1024)
#define WEBD_CSP                                                                       \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "      \
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "         \
    "frame-ancestors 'none'"

struct webd_client {
    struct webd *w;
    struct MHD_Connection *conn;
    struct webfeed_queue q;
    bool suspended;
    bool ended; /* webd closing: end the stream at the next read */
    struct webd_client *prev, *next;
};

struct webd {
    struct httpd *http;
    uv_timer_t push_timer; /* coalesces store changes */
    uv_timer_t tick;       /* what the store does not write; keepalives */
    int open_handles;
    uint64_t last_keepalive;
    char addr[ADDR_STRLEN];
    char token[WEBAUTH_TOKEN_MAX + 1]; /* "": none */
    webd_render_cb render;
    void *render_data;
    struct webd_client *clients;
    unsigned n_clients;
    char *last; /* the text of the last frame pushed */
    size_t last_len;
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

/* ------------------------------------------------------------- streams */

static void client_resume(struct webd_client *c)
{
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

/* Queue m to every client; wake the sleeping ones. `kick`: run MHD now
 * (never from inside one of MHD's callbacks: there, the resumed
 * connections are served on MHD's next run, which its wakeup triggers). */
static void broadcast(struct webd *w, struct webfeed_msg *m, bool only_idle, bool kick)
{
    for (struct webd_client *c = w->clients; c != NULL; c = c->next) {
        if (!only_idle || webfeed_queue_empty(&c->q)) {
            webfeed_queue_push(&c->q, m);
            client_resume(c);
        }
    }
    if (kick) {
        httpd_kick(w->http);
    }
}

/* Every client has been sent w->last. Make `json` (taken) the state: when
 * it differs from w->last, queue it to every client. */
static void publish(struct webd *w, char *json, size_t len, bool kick)
{
    struct webfeed_msg *m;
    if (w->last != NULL && len == w->last_len && memcmp(json, w->last, len) == 0) {
        free(json);
        return;
    }
    if ((m = webfeed_msg_new("state", json, len)) == NULL) {
        free(json);
        return;
    }
    free(w->last);
    w->last = json;
    w->last_len = len;
    broadcast(w, m, false, kick);
    webfeed_msg_unref(m);
}

/* Render, and publish when the state changed. */
static void push(struct webd *w)
{
    char *json = NULL;
    size_t len = 0;
    int rv = w->render(w->render_data, &json, &len);
    if (rv != 0) {
        log_warn("web", "rendering the swarm's state failed: %s", swarm_strerror(rv));
        return;
    }
    publish(w, json, len, true);
}

static ssize_t sse_read_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct webd_client *c = cls;
    size_t n;
    if (c->ended) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = webfeed_queue_read(&c->q, buf, max);
    if (n > 0) {
        return (ssize_t)n;
    }
    /* Nothing to say: sleep until push() or a keepalive wakes us. */
    c->suspended = true;
    MHD_suspend_connection(c->conn);
    return 0;
}

static void sse_free_cb(void *cls)
{
    struct webd_client *c = cls;
    struct webd *w = c->w;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (--w->n_clients == 0) {
        /* Nobody holds it: the next client starts from a fresh rendering. */
        free(w->last);
        w->last = NULL;
    }
    webfeed_queue_clear(&c->q);
    free(c);
}

static enum MHD_Result serve_events(struct webd *w, struct MHD_Connection *conn)
{
    struct webd_client *c;
    struct webfeed_msg *m;
    struct MHD_Response *r;
    enum MHD_Result rv;
    char *json = NULL;
    size_t len = 0;
    if (w->n_clients >= WEBD_SSE_MAX) {
        return httpd_queue_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "too many live clients (at most 16): close another page "
                                "of this swarm and reload\n");
    }
    if (w->render(w->render_data, &json, &len) != 0) {
        return httpd_queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "cannot render the swarm's state\n");
    }
    if ((c = calloc(1, sizeof *c)) == NULL) {
        free(json);
        return httpd_queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    c->w = w;
    c->conn = conn;
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, WEBD_SSE_BLOCK, sse_read_cb, c,
                                          sse_free_cb);
    if (r == NULL) {
        free(json);
        free(c);
        return MHD_NO;
    }
    c->next = w->clients;
    if (w->clients != NULL) {
        w->clients->prev = c;
    }
    w->clients = c;
    w->n_clients++;
    /* The state as it is now, first (the stream alone is enough): to
     * everyone if it moved since the last frame, else to this one. */
    publish(w, json, len, false);
    if (webfeed_queue_empty(&c->q) && w->last != NULL &&
        (m = webfeed_msg_new("state", w->last, w->last_len)) != NULL) {
        webfeed_queue_push(&c->q, m);
        webfeed_msg_unref(m);
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rv = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r); /* MHD keeps it (and c) until the stream ends */
    return rv;
}

/* ------------------------------------------------------------ requests */

static enum MHD_Result queue_buffer(struct MHD_Connection *conn, unsigned code, const char *ctype,
                                    void *body, size_t len, enum MHD_ResponseMemoryMode mode,
                                    const char *cookie)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result rv;
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE) {
            free(body);
        }
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "Content-Security-Policy", WEBD_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (cookie != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    rv = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rv;
}

/* 0: allowed; 1: allowed by ?token= (set the cookie); -1: refused. */
static int authorize(struct webd *w, struct MHD_Connection *conn)
{
    const char *q, *cookie, *bearer;
    if (w->token[0] == '\0') {
        return 0;
    }
    q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, WEBAUTH_COOKIE);
    bearer = webauth_bearer(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    if (webauth_token_equal(w->token, q)) {
        return 1;
    }
    return webauth_token_equal(w->token, cookie) || webauth_token_equal(w->token, bearer) ? 0 : -1;
}

static enum MHD_Result answer_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct webd *w = cls;
    char cookie[sizeof WEBAUTH_COOKIE + WEBAUTH_TOKEN_MAX + 64];
    char *json = NULL;
    size_t len = 0;
    int auth;
    if (w->closing) {
        return MHD_NO;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return httpd_queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                "method not allowed: this page is read-only\n");
    }
    if ((auth = authorize(w, conn)) < 0) {
        return httpd_queue_text(conn, MHD_HTTP_UNAUTHORIZED,
                                "unauthorized: open this page with ?token=TOKEN (the token given "
                                "to swarmd --web-token), or send \"Authorization: Bearer TOKEN\"\n");
    }
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict", WEBAUTH_COOKIE,
             w->token);
    if (strcmp(url, "/") == 0) {
        if (auth == 1) {
            /* Out of the address bar (and history) once it is a cookie. */
            struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            enum MHD_Result rv;
            if (r == NULL) {
                return MHD_NO;
            }
            MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, "/");
            MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
            MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
            rv = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, r);
            MHD_destroy_response(r);
            return rv;
        }
        return queue_buffer(conn, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)webd_page,
                            webd_page_len, MHD_RESPMEM_PERSISTENT, NULL);
    }
    if (strcmp(url, "/api/state") == 0) {
        if (w->render(w->render_data, &json, &len) != 0) {
            return httpd_queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                    "cannot render the swarm's state\n");
        }
        return queue_buffer(conn, MHD_HTTP_OK, "application/json", json, len, MHD_RESPMEM_MUST_FREE,
                            auth == 1 ? cookie : NULL);
    }
    if (strcmp(url, "/api/events") == 0) {
        return serve_events(w, conn);
    }
    return httpd_queue_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
}

/* ------------------------------------------------------------ timers */

static void push_timer_cb(uv_timer_t *t)
{
    struct webd *w = t->data;
    if (!w->closing && w->n_clients > 0) {
        push(w);
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct webd *w = t->data;
    uint64_t now = uv_now(t->loop);
    if (w->closing || w->n_clients == 0) {
        return;
    }
    push(w);
    if (now - w->last_keepalive >= WEBD_KEEPALIVE_MS) {
        struct webfeed_msg *m = webfeed_msg_new(NULL, NULL, 0);
        w->last_keepalive = now;
        if (m != NULL) {
            broadcast(w, m, true, true);
            webfeed_msg_unref(m);
        }
    }
}

void webd_changed(struct webd *w)
{
    if (w == NULL || w->closing || w->n_clients == 0 || uv_is_active((uv_handle_t *)&w->push_timer)) {
        return;
    }
    uv_timer_start(&w->push_timer, push_timer_cb, WEBD_COALESCE_MS, 0);
}

/* ---------------------------------------------------------- lifecycle */

int webd_start(uv_loop_t *loop, const struct webd_config *cfg, struct webd **out, char *errmsg)
{
    struct webd *w;
    int rv;
    if (cfg->token == NULL && !webauth_addr_is_loopback(cfg->addr)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "--web-addr %s is not a loopback address: the page shows the whole swarm "
                      "to whoever reaches it, so it needs --web-token TOKEN (or --web-token-file "
                      "FILE); or keep it on this host with --web-addr 127.0.0.1:PORT",
                      cfg->addr);
        return SWARM_EINVAL;
    }
    if (cfg->token != NULL && (rv = webauth_token_check(cfg->token, errmsg)) != 0) {
        return rv;
    }
    if ((w = calloc(1, sizeof *w)) == NULL) {
        return SWARM_ENOMEM;
    }
    snprintf(w->addr, sizeof w->addr, "%s", cfg->addr);
    snprintf(w->token, sizeof w->token, "%s", cfg->token != NULL ? cfg->token : "");
    w->render = cfg->render;
    w->render_data = cfg->data;
    struct httpd_config hc = {
        .addr = cfg->addr,
        .what = "web",
        .conn_limit = WEBD_CONN_LIMIT,
        .conn_timeout_s = WEBD_CONN_TIMEOUT_S,
        .suspend_resume = true,
        .handler = answer_cb,
        .handler_data = w,
    };
    if ((rv = httpd_start(loop, &hc, &w->http, errmsg)) != 0) {
        free(w);
        return rv;
    }
    uv_timer_init(loop, &w->push_timer);
    uv_timer_init(loop, &w->tick);
    w->push_timer.data = w->tick.data = w;
    w->open_handles = 2;
    w->last_keepalive = uv_now(loop);
    uv_timer_start(&w->tick, tick_cb, WEBD_TICK_MS, WEBD_TICK_MS);
    log_info("web", "serving the visualizer on http://%s/%s", cfg->addr,
             cfg->token != NULL ? " (token required)" : "");
    *out = w;
    return 0;
}

static void http_closed_cb(void *data)
{
    struct webd *w = data;
    void (*done)(void *) = w->done;
    void *done_data = w->done_data;
    free(w->last);
    free(w);
    if (done != NULL) {
        done(done_data);
    }
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct webd *w = h->data;
    if (--w->open_handles > 0) {
        return;
    }
    /* MHD may not stop with a connection suspended: wake every stream, to
     * be ended (c->ended) or closed by MHD_stop_daemon. */
    for (struct webd_client *c = w->clients; c != NULL; c = c->next) {
        c->ended = true;
        client_resume(c);
    }
    httpd_close(w->http, http_closed_cb, w);
}

void webd_close(struct webd *w, void (*done)(void *data), void *data)
{
    w->closing = true;
    w->done = done;
    w->done_data = data;
    uv_close((uv_handle_t *)&w->push_timer, timer_closed_cb);
    uv_close((uv_handle_t *)&w->tick, timer_closed_cb);
}
