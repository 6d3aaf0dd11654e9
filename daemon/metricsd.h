/* The metrics endpoint: `swarmd --metrics-addr IP:PORT` serves the process'
 * registry (smetrics.h) at GET /metrics in Prometheus' text format 0.0.4.
 *
 * HTTP is httpd.h's (libmicrohttpd run from the loop), so every metric is
 * read on the loop thread, without locks. A uv timer every METRICSD_LAG_MS
 * measures the loop's lag.
 *
 * Ownership: the caller keeps `collect` valid until metricsd_close() is
 * done; metricsd owns everything else it makes. */
#ifndef SWARM_DAEMON_METRICSD_H
#define SWARM_DAEMON_METRICSD_H

#include <uv.h>

#define METRICSD_LAG_MS 500

struct metricsd;

/* Refresh the scrape-time families, right before each rendering. */
typedef void (*metricsd_collect_cb)(void *data);

/* Listen on `addr` ("IP:PORT", checked by addr_parse) and serve. Returns 0,
 * or an error with a message (the port is taken, the IP is not ours). */
int metricsd_start(uv_loop_t *loop, const char *addr, metricsd_collect_cb collect, void *data,
                   struct metricsd **out, char *errmsg);

/* Stop serving; `done` runs once every handle is closed. */
void metricsd_close(struct metricsd *m, void (*done)(void *data), void *data);

#endif
