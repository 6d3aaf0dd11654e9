/* Cluster events: `swarmctl events` (lifecycle and ownership: events.h).
 *
 * SubscribeEvents (server stream, LOCAL|MANAGER), served by this manager
 * whether it leads or not:
 *   - the cursor starts after the request's (after_index, after_position)
 *     when given, else at the beginning of the history with --since, else
 *     at the store's last applied index (only what comes next);
 *   - events_pump sends what the store holds after the cursor (at most
 *     EVENTS_BATCH per message), filtered, and moves the cursor over every
 *     event read, sent or filtered out; it stops while the connection's
 *     response budget is nearly used (slow reader) and tries again
 *     EVENTS_RETRY_MS later;
 *   - committed changes (events_on_event) start a pump on the next loop
 *     turn, once for a whole entry;
 *   - an event after --until finishes the call OK; a subscription whose
 *     --until had already passed finishes OK once the history is replayed. */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

#define EVENTS_BATCH 256
#define EVENTS_RETRY_MS 50
/* Room kept free on the subscriber's connection (api_call_send_room). */
#define EVENTS_MIN_ROOM (256u * 1024)

struct events_sub {
    struct events *ev;
    struct api_call *call;
    uint64_t index;    /* cursor: the last event read */
    uint32_t position;
    int64_t since_ms;
    bool has_until;
    int64_t until_nano;
    bool replay_only; /* --until already past: end once caught up */
    bool announce;    /* the starting cursor is still to be sent */
    struct events_filter filter;
    struct events_sub *next;
};

struct events {
    const struct menv *env;
    uv_timer_t timer;
    struct events_sub *subs;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ------------------------------------------------------------- filters */

static const char *const filter_keys[EVENTS_F__COUNT] = {
    [EVENTS_F_TYPE] = "type", [EVENTS_F_EVENT] = "event", [EVENTS_F_SCOPE] = "scope",
    [EVENTS_F_SERVICE] = "service", [EVENTS_F_NODE] = "node",
};

static const char *const docker_types[] = {"node", "service", "task", "network", "secret", "config",
                                           "container", "image", "volume", "plugin", "daemon"};

int events_filter_parse(char *const *filters, size_t n, struct events_filter *f, char *errmsg)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        const char *eq = filters[i] != NULL ? strchr(filters[i], '=') : NULL;
        size_t klen, k;
        if (eq == NULL || eq == filters[i]) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "bad format of filter (expected name=value)");
            return SWARM_EINVAL;
        }
        klen = (size_t)(eq - filters[i]);
        for (k = 0; k < EVENTS_F__COUNT; k++) {
            if (strlen(filter_keys[k]) == klen && strncmp(filters[i], filter_keys[k], klen) == 0) {
                break;
            }
        }
        if (k == EVENTS_F__COUNT) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid filter '%.*s'", (int)klen, filters[i]);
            return SWARM_EINVAL;
        }
        const char *value = eq + 1;
        bool known = true;
        if (k == EVENTS_F_TYPE) {
            known = false;
            for (size_t t = 0; t < sizeof docker_types / sizeof docker_types[0]; t++) {
                known = known || strcmp(value, docker_types[t]) == 0;
            }
        } else if (k == EVENTS_F_SCOPE) {
            known = strcmp(value, "swarm") == 0 || strcmp(value, "local") == 0;
        }
        if (!known || value[0] == '\0' || strlen(value) >= EVENTS_FILTER_VALUE_SIZE) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid filter '%s'", filters[i]);
            return SWARM_EINVAL;
        }
        if (f->n[k] >= EVENTS_FILTER_VALUES_MAX) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "too many values for filter '%s' (at most %d)", filter_keys[k],
                     EVENTS_FILTER_VALUES_MAX);
            return SWARM_EINVAL;
        }
        snprintf(f->values[k][f->n[k]++], EVENTS_FILTER_VALUE_SIZE, "%s", value);
    }
    return 0;
}

static const char *event_attr(const Swarm__Event *e, const char *key)
{
    for (size_t i = 0; i < e->n_attributes; i++) {
        if (e->attributes[i]->key != NULL && strcmp(e->attributes[i]->key, key) == 0) {
            return e->attributes[i]->value;
        }
    }
    return NULL;
}

static bool key_match(const struct events_filter *f, enum events_filter_key k, const char *a, const char *b)
{
    if (f->n[k] == 0) {
        return true;
    }
    for (size_t i = 0; i < f->n[k]; i++) {
        if ((a != NULL && strcmp(f->values[k][i], a) == 0) || (b != NULL && strcmp(f->values[k][i], b) == 0)) {
            return true;
        }
    }
    return false;
}

bool events_filter_match(const struct events_filter *f, const Swarm__Event *e)
{
    const char *type = e->type != NULL ? e->type : "";
    const char *name = event_attr(e, "name");
    if (!key_match(f, EVENTS_F_TYPE, type, NULL) || !key_match(f, EVENTS_F_EVENT, e->action, NULL) ||
        !key_match(f, EVENTS_F_SCOPE, "swarm", NULL)) {
        return false;
    }
    /* service= and node= select the events of that service or node. */
    if (f->n[EVENTS_F_SERVICE] > 0 &&
        (strcmp(type, "service") != 0 || !key_match(f, EVENTS_F_SERVICE, e->actor_id, name))) {
        return false;
    }
    if (f->n[EVENTS_F_NODE] > 0 &&
        (strcmp(type, "node") != 0 || !key_match(f, EVENTS_F_NODE, e->actor_id, name))) {
        return false;
    }
    return true;
}

/* ------------------------------------------------------- subscriptions */

static void events_sub_end(struct events_sub *s, enum api_status status, const char *message)
{
    struct events *ev = s->ev;
    for (struct events_sub **p = &ev->subs; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    if (status == API_OK) {
        api_call_finish(s->call);
    } else {
        api_call_error(s->call, status, "%s", message);
    }
    free(s);
}

/* Send what the store holds after the cursor. Returns false when the
 * subscription ended; *blocked when the connection has no room now. */
static bool events_pump(struct events_sub *s, bool *blocked)
{
    struct store *store = s->ev->env->store;
    for (;;) {
        Swarm__Event **list = NULL;
        Swarm__Event *out[EVENTS_BATCH];
        Swarm__SubscribeEventsMessage msg = SWARM__SUBSCRIBE_EVENTS_MESSAGE__INIT;
        size_t n = 0, n_out = 0;
        bool past_until = false;
        if (api_call_send_room(s->call) < EVENTS_MIN_ROOM) {
            *blocked = true;
            return true;
        }
        int rv = store_events_list(store, s->index, s->position, s->since_ms, EVENTS_BATCH, &list, &n);
        if (rv != 0) {
            log_warn("events", "reading the event history failed (%d)", rv);
            events_sub_end(s, API_INTERNAL, "cannot read the event history");
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if (s->has_until && list[i]->time_nano > s->until_nano) {
                past_until = true;
                break;
            }
            s->index = list[i]->index;
            s->position = list[i]->position;
            if (events_filter_match(&s->filter, list[i])) {
                out[n_out++] = list[i];
            }
        }
        if (n_out > 0 || s->announce) {
            msg.events = out;
            msg.n_events = n_out;
            msg.index = s->index;
            msg.position = s->position;
            s->announce = false;
            rv = api_call_send(s->call, &msg.base);
        }
        store_events_free_list(list, n);
        if (rv == SWARM_ECANCELED) {
            return true; /* on_cancel ends it */
        }
        if (past_until || (n < EVENTS_BATCH && s->replay_only)) {
            events_sub_end(s, API_OK, NULL);
            return false;
        }
        if (n < EVENTS_BATCH) {
            return true;
        }
    }
}

static void events_timer_cb(uv_timer_t *t)
{
    struct events *ev = t->data;
    bool blocked = false;
    struct events_sub *s = ev->subs;
    while (s != NULL) {
        struct events_sub *next = s->next;
        events_pump(s, &blocked);
        s = next;
    }
    if (blocked) {
        uv_timer_start(&ev->timer, events_timer_cb, EVENTS_RETRY_MS, 0);
    }
}

static void events_cancel_cb(struct api_call *call, void *data)
{
    struct events_sub *s = data;
    (void)call;
    events_sub_end(s, API_CANCELLED, "cancelled");
}

static void events_subscribe_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const struct manager_slot *slot = data;
    struct events *ev = slot->events;
    const Swarm__SubscribeEventsRequest *req = (const Swarm__SubscribeEventsRequest *)msg;
    struct events_sub *s;
    char err[SWARM_ERRMSG_SIZE];
    bool blocked = false;

    if (ev == NULL || ev->closing) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s",
                       slot->worker ? MANAGER_WORKER_MSG : MANAGER_NOT_MANAGER_MSG);
        return;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (events_filter_parse(req->filters, req->n_filters, &s->filter, err) != 0) {
        free(s);
        api_call_error(call, API_INVALID_ARGUMENT, "%s", err);
        return;
    }
    if (req->has_since && req->has_until && req->since_nano > req->until_nano) {
        free(s);
        api_call_error(call, API_INVALID_ARGUMENT, "`since` time (%lld) cannot be after `until` time (%lld)",
                       (long long)(req->since_nano / 1000000000), (long long)(req->until_nano / 1000000000));
        return;
    }
    s->ev = ev;
    s->call = call;
    if (req->has_after) {
        s->index = req->after_index;
        s->position = req->after_position;
    } else if (!req->has_since) {
        s->index = store_last_index(ev->env->store);
        s->position = UINT32_MAX;
    }
    /* Event times are whole milliseconds (the entry's stamp): since counts
     * from its millisecond, so no event at or after it is missed. */
    s->since_ms = req->has_since && req->since_nano > 0 ? req->since_nano / 1000000 : 0;
    s->has_until = req->has_until;
    s->until_nano = req->until_nano;
    s->replay_only = req->has_until && req->until_nano <= menv_now(ev->env) * 1000000;
    s->announce = true;
    s->next = ev->subs;
    ev->subs = s;
    api_call_on_cancel(call, events_cancel_cb, s);
    if (events_pump(s, &blocked) && blocked) {
        uv_timer_start(&ev->timer, events_timer_cb, EVENTS_RETRY_MS, 0);
    }
}

/* ------------------------------------------------------------ lifecycle */

struct events *events_new(const struct menv *env)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (ev == NULL) {
        return NULL;
    }
    ev->env = env;
    uv_timer_init(env->loop, &ev->timer);
    ev->timer.data = ev;
    return ev;
}

void events_on_event(struct events *ev, const struct store_event *change)
{
    (void)change;
    if (ev == NULL || ev->closing || ev->subs == NULL || uv_is_active((uv_handle_t *)&ev->timer)) {
        return;
    }
    uv_timer_start(&ev->timer, events_timer_cb, 0, 0);
}

static void events_timer_closed_cb(uv_handle_t *h)
{
    struct events *ev = h->data;
    void (*cb)(void *) = ev->close_cb;
    void *data = ev->close_data;
    free(ev);
    if (cb != NULL) {
        cb(data);
    }
}

void events_close(struct events *ev, void (*cb)(void *data), void *data)
{
    if (ev == NULL) {
        if (cb != NULL) {
            cb(data);
        }
        return;
    }
    ev->closing = true;
    ev->close_cb = cb;
    ev->close_data = data;
    while (ev->subs != NULL) {
        events_sub_end(ev->subs, API_UNAVAILABLE, "the manager stopped serving events");
    }
    uv_close((uv_handle_t *)&ev->timer, events_timer_closed_cb);
}

void events_register(struct api_server *api, const struct manager_slot *slot)
{
    api_server_register(api, &swarm__events__descriptor, "SubscribeEvents", API_ROLE_LOCAL | API_ROLE_MANAGER,
                        events_subscribe_cb, (void *)slot);
}
