/* See webfeed.h. */
#include "webfeed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct webfeed_msg *webfeed_msg_new(const char *event, const char *text, size_t len)
{
    size_t size = event != NULL ? strlen("event: \ndata: \n\n") + strlen(event) + len : 3;
    struct webfeed_msg *m = malloc(sizeof *m + size + 1);
    if (m == NULL) {
        return NULL;
    }
    m->refs = 1;
    if (event == NULL) {
        memcpy(m->data, ":\n\n", 4);
    } else {
        int head = snprintf(m->data, size + 1, "event: %s\ndata: ", event);
        memcpy(m->data + head, text, len);
        memcpy(m->data + head + len, "\n\n", 3);
    }
    m->len = size;
    return m;
}

struct webfeed_msg *webfeed_msg_ref(struct webfeed_msg *m)
{
    m->refs++;
    return m;
}

void webfeed_msg_unref(struct webfeed_msg *m)
{
    if (m != NULL && --m->refs == 0) {
        free(m);
    }
}

bool webfeed_queue_push(struct webfeed_queue *q, struct webfeed_msg *m)
{
    bool replaced = false;
    if (q->cur == NULL) {
        q->cur = webfeed_msg_ref(m);
        q->off = 0;
        return false;
    }
    if (q->next != NULL) {
        webfeed_msg_unref(q->next);
        replaced = true;
    }
    q->next = webfeed_msg_ref(m);
    return replaced;
}

bool webfeed_queue_empty(const struct webfeed_queue *q)
{
    return q->cur == NULL;
}

size_t webfeed_queue_read(struct webfeed_queue *q, char *buf, size_t max)
{
    size_t done = 0;
    while (q->cur != NULL && done < max) {
        size_t n = q->cur->len - q->off;
        if (n > max - done) {
            n = max - done;
        }
        memcpy(buf + done, q->cur->data + q->off, n);
        done += n;
        q->off += n;
        if (q->off == q->cur->len) {
            webfeed_msg_unref(q->cur);
            q->cur = q->next;
            q->next = NULL;
            q->off = 0;
        }
    }
    return done;
}

void webfeed_queue_clear(struct webfeed_queue *q)
{
    webfeed_msg_unref(q->cur);
    webfeed_msg_unref(q->next);
    q->cur = q->next = NULL;
    q->off = 0;
}
