/* Cluster events: what each committed change looks like to `swarmctl
 * events` (Docker's type, action, actor and attributes), and the bounded
 * history of them kept in the store.
 *
 * store_event_describe is pure: the same change gives the same event on
 * every manager. store_apply writes each event in the transaction of its
 * change (events_insert), at the entry's raft index and its position among
 * the entry's events, with the entry's timestamp, and prunes the table to
 * the last STORE_EVENTS_WINDOW events (events_prune): the history is part of
 * the replicated state (snapshots carry it), bounded so that a busy swarm
 * does not grow its store without end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vec.h"

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static void attr_add(struct store_evdesc *d, const char *key, const char *value)
{
    if (d->n_attrs >= STORE_EVENT_ATTRS_MAX) {
        return;
    }
    d->attrs[d->n_attrs].key = key;
    snprintf(d->attrs[d->n_attrs].value, sizeof d->attrs[d->n_attrs].value, "%s", str_or_empty(value));
    d->n_attrs++;
}

/* key.old / key.new when the value changed (both present: an update). */
static void attr_change(struct store_evdesc *d, const char *key_old, const char *key_new,
                        const char *old_v, const char *new_v)
{
    if (strcmp(str_or_empty(old_v), str_or_empty(new_v)) == 0) {
        return;
    }
    attr_add(d, key_new, new_v);
    attr_add(d, key_old, old_v);
}

const char *store_node_state_name(int state)
{
    switch (state) {
        case SWARM__NODE_STATE__NODE_STATE_DOWN: return "down";
        case SWARM__NODE_STATE__NODE_STATE_READY: return "ready";
        case SWARM__NODE_STATE__NODE_STATE_DISCONNECTED: return "disconnected";
        default: return "unknown";
    }
}

static const char *node_availability_name(int a)
{
    switch (a) {
        case SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE: return "pause";
        case SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN: return "drain";
        default: return "active";
    }
}

static const char *task_state_name(int state)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&swarm__task_state__descriptor, state);
    /* "TASK_STATE_RUNNING" -> "running" (Docker's lower-case names). */
    static char buf[32];
    size_t i, n;
    if (v == NULL || strncmp(v->name, "TASK_STATE_", 11) != 0) {
        return "unknown";
    }
    n = strlen(v->name + 11);
    for (i = 0; i < n && i + 1 < sizeof buf; i++) {
        char c = v->name[11 + i];
        buf[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    buf[i] = '\0';
    return buf;
}

static const char *update_state_name(int state)
{
    switch (state) {
        case SWARM__UPDATE_STATE__UPDATE_STATE_UPDATING: return "updating";
        case SWARM__UPDATE_STATE__UPDATE_STATE_PAUSED: return "paused";
        case SWARM__UPDATE_STATE__UPDATE_STATE_COMPLETED: return "completed";
        case SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_STARTED: return "rollback_started";
        case SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_PAUSED: return "rollback_paused";
        case SWARM__UPDATE_STATE__UPDATE_STATE_ROLLBACK_COMPLETED: return "rollback_completed";
        default: return "";
    }
}

static const char *node_name(const Swarm__Node *n)
{
    if (n->spec != NULL && n->spec->annotations != NULL && n->spec->annotations->name != NULL &&
        n->spec->annotations->name[0] != '\0') {
        return n->spec->annotations->name;
    }
    return n->description != NULL ? str_or_empty(n->description->hostname) : "";
}

static void describe_node(struct store_evdesc *d, const Swarm__Node *o, const Swarm__Node *n)
{
    const Swarm__Node *cur = n != NULL ? n : o;
    attr_add(d, "name", node_name(cur));
    if (o == NULL || n == NULL) {
        return;
    }
    attr_change(d, "availability.old", "availability.new",
                node_availability_name(o->spec != NULL ? (int)o->spec->availability : 0),
                node_availability_name(n->spec != NULL ? (int)n->spec->availability : 0));
    attr_change(d, "role.old", "role.new", o->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker",
                n->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
    attr_change(d, "state.old", "state.new",
                store_node_state_name(o->status != NULL ? (int)o->status->state : 0),
                store_node_state_name(n->status != NULL ? (int)n->status->state : 0));
}

static void service_replicas(const Swarm__Service *s, char *buf, size_t size)
{
    buf[0] = '\0';
    if (s->spec != NULL && s->spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED &&
        s->spec->replicated != NULL) {
        snprintf(buf, size, "%" PRIu64, s->spec->replicated->replicas);
    }
}

static const char *service_image(const Swarm__Service *s)
{
    if (s->spec != NULL && s->spec->task != NULL && s->spec->task->container != NULL) {
        return str_or_empty(s->spec->task->container->image);
    }
    return "";
}

static void describe_service(struct store_evdesc *d, const Swarm__Service *o, const Swarm__Service *n)
{
    const Swarm__Service *cur = n != NULL ? n : o;
    char ro[32], rn[32];
    attr_add(d, "name", cur->spec != NULL && cur->spec->annotations != NULL ? cur->spec->annotations->name : "");
    if (o == NULL || n == NULL) {
        return;
    }
    attr_change(d, "image.old", "image.new", service_image(o), service_image(n));
    service_replicas(o, ro, sizeof ro);
    service_replicas(n, rn, sizeof rn);
    attr_change(d, "replicas.old", "replicas.new", ro, rn);
    attr_change(d, "updatestate.old", "updatestate.new",
                update_state_name(o->update_status != NULL ? (int)o->update_status->state : 0),
                update_state_name(n->update_status != NULL ? (int)n->update_status->state : 0));
}

static void describe_task(struct store_evdesc *d, const Swarm__Task *o, const Swarm__Task *n)
{
    const Swarm__Task *cur = n != NULL ? n : o;
    char name[STORE_EVENT_VALUE_MAX];
    if (cur->annotations != NULL && cur->annotations->name != NULL && cur->annotations->name[0] != '\0') {
        snprintf(name, sizeof name, "%s", cur->annotations->name);
    } else if (cur->slot > 0) {
        snprintf(name, sizeof name, "%s.%" PRIu64, str_or_empty(cur->service_name), cur->slot);
    } else {
        snprintf(name, sizeof name, "%s.%s", str_or_empty(cur->service_name), str_or_empty(cur->node_id));
    }
    attr_add(d, "name", name);
    attr_add(d, "node.id", cur->node_id);
    attr_add(d, "service.id", cur->service_id);
    if (o == NULL || n == NULL) {
        return;
    }
    char so[32], sn[32];
    snprintf(so, sizeof so, "%s", task_state_name(o->status != NULL ? (int)o->status->state : 0));
    snprintf(sn, sizeof sn, "%s", task_state_name(n->status != NULL ? (int)n->status->state : 0));
    attr_change(d, "state.old", "state.new", so, sn);
    snprintf(so, sizeof so, "%s", task_state_name((int)o->desired_state));
    snprintf(sn, sizeof sn, "%s", task_state_name((int)n->desired_state));
    attr_change(d, "desiredstate.old", "desiredstate.new", so, sn);
}

static int attr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct store_evattr *)a)->key, ((const struct store_evattr *)b)->key);
}

bool store_event_describe(enum store_kind kind, Swarm__StoreActionKind action, const ProtobufCMessage *old_obj,
                          const ProtobufCMessage *new_obj, struct store_evdesc *out)
{
    const ProtobufCMessage *cur = new_obj != NULL ? new_obj : old_obj;
    const struct store_kind_info *ki = store_kind_info(kind);
    memset(out, 0, sizeof *out);
    if (ki == NULL || cur == NULL || kind == STORE_KIND_CLUSTER) {
        return false; /* Docker has no cluster events */
    }
    if (action == SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE) {
        out->action = "create";
        old_obj = NULL;
    } else if (action == SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE) {
        out->action = "remove";
        new_obj = NULL;
    } else {
        out->action = "update";
    }
    out->type = ki->name;
    snprintf(out->actor_id, sizeof out->actor_id, "%s", store_obj_id(ki, cur));
    switch (kind) {
        case STORE_KIND_NODE:
            describe_node(out, (const Swarm__Node *)old_obj, (const Swarm__Node *)new_obj);
            break;
        case STORE_KIND_SERVICE:
            describe_service(out, (const Swarm__Service *)old_obj, (const Swarm__Service *)new_obj);
            break;
        case STORE_KIND_NETWORK: {
            const Swarm__Network *nw = (const Swarm__Network *)cur;
            attr_add(out, "name", nw->spec != NULL && nw->spec->annotations != NULL ? nw->spec->annotations->name : "");
            attr_add(out, "type", nw->spec != NULL ? nw->spec->driver : "");
            break;
        }
        default:
            describe_task(out, (const Swarm__Task *)old_obj, (const Swarm__Task *)new_obj);
            break;
    }
    qsort(out->attrs, out->n_attrs, sizeof out->attrs[0], attr_cmp);
    return true;
}

/* ---- the history table ---------------------------------------------------- */

int store_events_insert(struct store *s, uint64_t index, uint32_t position, int64_t ts_ms,
                        const struct store_evdesc *d)
{
    Swarm__Event ev = SWARM__EVENT__INIT;
    Swarm__EventAttribute attrs[STORE_EVENT_ATTRS_MAX];
    Swarm__EventAttribute *ptrs[STORE_EVENT_ATTRS_MAX];
    sqlite3_stmt *st = s->stmt[STORE_ST_EVENT_INSERT];
    size_t len;
    int rc;

    ev.index = index;
    ev.position = position;
    ev.time_nano = ts_ms * 1000000;
    ev.type = (char *)d->type;
    ev.action = (char *)d->action;
    ev.actor_id = (char *)d->actor_id;
    for (size_t i = 0; i < d->n_attrs; i++) {
        swarm__event_attribute__init(&attrs[i]);
        attrs[i].key = (char *)d->attrs[i].key;
        attrs[i].value = (char *)d->attrs[i].value;
        ptrs[i] = &attrs[i];
    }
    ev.attributes = ptrs;
    ev.n_attributes = d->n_attrs;
    len = protobuf_c_message_get_packed_size(&ev.base);
    if (vec_grow(s->evbuf, s->evcap, len) != 0) {
        return SQLITE_NOMEM;
    }
    protobuf_c_message_pack(&ev.base, s->evbuf);
    rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 2, position);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 3, ts_ms);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_blob(st, 4, s->evbuf, (int)len, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int store_events_prune(struct store *s)
{
    sqlite3_int64 last = sqlite3_last_insert_rowid(s->db);
    sqlite3_stmt *st = s->stmt[STORE_ST_EVENT_PRUNE];
    int rc;
    if (last <= STORE_EVENTS_WINDOW) {
        return SQLITE_OK;
    }
    rc = sqlite3_bind_int64(st, 1, last - STORE_EVENTS_WINDOW);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_reset(st);
    return rc;
}

int store_events_list(struct store *s, uint64_t after_index, uint32_t after_position, int64_t since_ms,
                      size_t limit, Swarm__Event ***out, size_t *n)
{
    sqlite3_stmt *st = s->stmt[STORE_ST_EVENT_LIST];
    Swarm__Event **list = NULL;
    size_t cap = 0, count = 0;
    int rc, rv = 0;

    *out = NULL;
    *n = 0;
    if (after_index > INT64_MAX) {
        return 0;
    }
    rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)after_index);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 2, after_position);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 3, since_ms);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 4, limit > INT32_MAX ? INT32_MAX : (sqlite3_int64)limit);
    }
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        return store_sqlite_err(rc);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        Swarm__Event *ev = swarm__event__unpack(NULL, (size_t)len, data);
        if (ev == NULL) {
            rv = SWARM_ECORRUPT;
            break;
        }
        if (vec_grow(list, cap, count + 1) != 0) {
            swarm__event__free_unpacked(ev, NULL);
            rv = SWARM_ENOMEM;
            break;
        }
        list[count++] = ev;
    }
    if (rv == 0 && rc != SQLITE_DONE) {
        rv = store_sqlite_err(rc);
    }
    sqlite3_reset(st);
    if (rv != 0) {
        store_events_free_list(list, count);
        return rv;
    }
    *out = list;
    *n = count;
    return 0;
}

void store_events_free_list(Swarm__Event **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        swarm__event__free_unpacked(list[i], NULL);
    }
    free(list);
}
