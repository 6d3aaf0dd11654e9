/* What the visualizer pushes to each live client (Server-Sent Events), and
 * how much it keeps for a slow one. Pure.
 *
 * A message is one SSE frame ("event: NAME\ndata: TEXT\n\n"), made once and
 * shared (reference-counted) by every client's queue. A queue holds the
 * message being written (and how far) and at most one more: each message is
 * a whole state, so a newer one replaces the one still waiting, and a
 * client that reads slowly costs at most two messages, never a backlog. */
#ifndef SWARM_DAEMON_WEBFEED_H
#define SWARM_DAEMON_WEBFEED_H

#include <stdbool.h>
#include <stddef.h>

struct webfeed_msg {
    size_t refs;
    size_t len;
    char data[];
};

/* A frame with event `event` (NULL: a comment line ":\n\n", the keepalive)
 * and `text` (one line). One reference; NULL when out of memory. */
struct webfeed_msg *webfeed_msg_new(const char *event, const char *text, size_t len);
struct webfeed_msg *webfeed_msg_ref(struct webfeed_msg *m);
void webfeed_msg_unref(struct webfeed_msg *m);

struct webfeed_queue {
    struct webfeed_msg *cur; /* being written */
    size_t off;              /* bytes of cur already handed out */
    struct webfeed_msg *next;
};

/* Queue a reference to m. True when a waiting message was replaced by it. */
bool webfeed_queue_push(struct webfeed_queue *q, struct webfeed_msg *m);
/* Nothing to write. */
bool webfeed_queue_empty(const struct webfeed_queue *q);
/* Copy up to max bytes of what is queued into buf; the count (0: empty). */
size_t webfeed_queue_read(struct webfeed_queue *q, char *buf, size_t max);
void webfeed_queue_clear(struct webfeed_queue *q);

#endif
