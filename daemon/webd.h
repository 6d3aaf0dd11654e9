/* The visualizer: `swarmd --web-addr IP:PORT` serves one page that shows
 * the swarm live (nodes as columns, tasks as cards, services with their
 * replica counts), from this node's own store when it is a manager.
 *
 *   GET /            the page (inline CSS and JS, nothing fetched elsewhere)
 *   GET /api/state   the state now (vizstate.h's JSON)
 *   GET /api/events  Server-Sent Events: "state" frames, the first at once,
 *                    then one whenever the state changed, pushed from store
 *                    changes (webd_changed) and a check every WEBD_TICK_MS
 *                    (what the store does not write: the leader, a role).
 * Read-only: nothing else is served, no method but GET and HEAD.
 *
 * Bounds: at most WEBD_SSE_MAX live clients (503 beyond); each keeps at
 * most two frames (webfeed.h); a client that takes nothing for
 * WEBD_CONN_TIMEOUT_S is dropped (idle ones get a keepalive every
 * WEBD_KEEPALIVE_MS, so only a stuck one is).
 *
 * A token (webauth.h), when given, is checked on every request.
 *
 * HTTP is httpd.h's (libmicrohttpd on the loop). Ownership: the caller
 * keeps `render`'s data valid until webd_close()'s `done` has run; webd
 * copies the token and owns everything else it makes. */
#ifndef SWARM_DAEMON_WEBD_H
#define SWARM_DAEMON_WEBD_H

#include <stddef.h>
#include <uv.h>

#define WEBD_SSE_MAX 16
#define WEBD_CONN_LIMIT 64
#define WEBD_CONN_TIMEOUT_S 15
#define WEBD_KEEPALIVE_MS 5000
#define WEBD_TICK_MS 500
/* Store changes arrive one per action, several per entry: one push. */
#define WEBD_COALESCE_MS 5

struct webd;

/* The state as JSON (one line), malloc'd. 0 or an error. */
typedef int (*webd_render_cb)(void *data, char **json, size_t *len);

struct webd_config {
    const char *addr;  /* IP:PORT, validated */
    const char *token; /* NULL: none (only for a loopback address) */
    webd_render_cb render;
    void *data;
};

/* Listen and serve. Returns 0, or an error with a message (the port is
 * taken, or a non-loopback address without a token). */
int webd_start(uv_loop_t *loop, const struct webd_config *cfg, struct webd **out, char *errmsg);

/* The state may have changed: the live clients get it within
 * WEBD_COALESCE_MS if it did. Cheap when nobody watches. */
void webd_changed(struct webd *w);

/* End every live stream and stop serving; `done` runs once all is closed. */
void webd_close(struct webd *w, void (*done)(void *data), void *data);

#endif
