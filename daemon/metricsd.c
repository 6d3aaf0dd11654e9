/* The metrics endpoint (metricsd.h): GET /metrics on an httpd (httpd.h).
 * A bad path or method gets 404/405; a render out of memory gets 500. */
#include "metricsd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "httpd.h"
#include "log.h"
#include "smetrics.h"

#define METRICSD_CONN_LIMIT 32
#define METRICSD_CONN_TIMEOUT_S 10
#define METRICSD_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metricsd {
    struct httpd *http;
    uv_timer_t lag;
    uint64_t lag_due; /* uv_hrtime() the lag timer is expected at */
    metricsd_collect_cb collect;
    void *collect_data;
    bool closing;
    void (*done)(void *data);
    void *done_data;
};

static enum MHD_Result answer_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct metricsd *m = cls;
    char *body = NULL;
    size_t len = 0;
    if (strcmp(url, "/metrics") != 0) {
        return httpd_queue_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return httpd_queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    m->collect(m->collect_data);
    if (metrics_render(smetrics_registry(), &body, &len) != 0) {
        return httpd_queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, METRICSD_CONTENT_TYPE);
    enum MHD_Result rv = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rv;
}

static void lag_cb(uv_timer_t *t)
{
    struct metricsd *m = t->data;
    uint64_t now = uv_hrtime();
    if (m->closing) {
        return;
    }
    metrics_gauge_set(smetrics_families()->loop_lag, NULL,
                      now > m->lag_due ? (double)(now - m->lag_due) / 1e9 : 0);
    m->lag_due = now + (uint64_t)METRICSD_LAG_MS * 1000000u;
}

int metricsd_start(uv_loop_t *loop, const char *addr, metricsd_collect_cb collect, void *data,
                   struct metricsd **out, char *errmsg)
{
    struct metricsd *m;
    int rv;
    if ((rv = smetrics_init()) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "metrics: %s", swarm_strerror(rv));
        return rv;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return SWARM_ENOMEM;
    }
    m->collect = collect;
    m->collect_data = data;
    struct httpd_config hc = {
        .addr = addr,
        .what = "metrics",
        .conn_limit = METRICSD_CONN_LIMIT,
        .conn_timeout_s = METRICSD_CONN_TIMEOUT_S,
        .handler = answer_cb,
        .handler_data = m,
    };
    if ((rv = httpd_start(loop, &hc, &m->http, errmsg)) != 0) {
        free(m);
        return rv;
    }
    uv_timer_init(loop, &m->lag);
    m->lag.data = m;
    m->lag_due = uv_hrtime() + (uint64_t)METRICSD_LAG_MS * 1000000u;
    uv_timer_start(&m->lag, lag_cb, METRICSD_LAG_MS, METRICSD_LAG_MS);
    log_info("metrics", "serving Prometheus metrics on http://%s/metrics", addr);
    *out = m;
    return 0;
}

static void http_closed_cb(void *data)
{
    struct metricsd *m = data;
    void (*done)(void *) = m->done;
    void *done_data = m->done_data;
    free(m);
    if (done != NULL) {
        done(done_data);
    }
}

static void lag_closed_cb(uv_handle_t *h)
{
    struct metricsd *m = h->data;
    httpd_close(m->http, http_closed_cb, m);
}

void metricsd_close(struct metricsd *m, void (*done)(void *data), void *data)
{
    m->closing = true;
    m->done = done;
    m->done_data = data;
    uv_close((uv_handle_t *)&m->lag, lag_closed_cb);
}
