/* The store: open/close, deterministic apply of raft commands, events,
 * snapshot and restore. Tables and statements are in schema.c, reads in
 * read.c.
 *
 * Durability: the database runs in WAL mode with synchronous=NORMAL. The
 * raft log is the durable record of every change (raft fsyncs it before an
 * entry counts); the store is a cache of it. In WAL mode NORMAL syncs the WAL
 * before every checkpoint, so a power cut can lose the last few transactions
 * but never tears the database (synchronous=OFF could: a checkpoint could
 * overwrite pages with WAL frames that never reached the disk). The lost
 * transactions carry their raft index with them, so meta.last_index rolls
 * back with them, and at start raft restores its last snapshot and replays
 * the log after it: store_apply re-applies exactly the entries the store no
 * longer has. FULL would cost one more fsync per entry for nothing raft does
 * not already guarantee. A store that does not match the raft state (empty,
 * unreadable, of another cluster, ahead of the log) is handled by the
 * manager at start (daemon/manager/storefile.c).
 *
 * store_apply, happy path: BEGIN IMMEDIATE, each action (look the stored row
 * up by its primary key, check the version, write the row with meta stamped
 * from the index and the command's timestamp), record the index, COMMIT, then
 * one event per action. Failure paths:
 *   - an action breaks a rule (no target, empty id, name in use, unknown ID,
 *     version mismatch): ROLLBACK, then record the index alone in its own
 *     transaction, so the entry counts as applied (its outcome is the
 *     failure, the same on every replica) and a replay skips it. result says
 *     which action failed and why; no events; store_apply returns 0.
 *   - SQLite itself fails (I/O, full disk, corrupt page): ROLLBACK, the index
 *     is not advanced, store_apply returns SWARM_ESQL (or SWARM_ENOMEM,
 *     SWARM_ECORRUPT). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ports.h"
#include "store_int.h"
#include "vec.h"

/* A new object as written: a shallow copy of the command's object (sharing
 * its fields, valid while the command is) with its own stamped Meta. */
union store_obj_copy {
    ProtobufCMessage base;
    Swarm__Node node;
    Swarm__Service service;
    Swarm__Task task;
    Swarm__Cluster cluster;
    Swarm__Network network;
};

/* What one action did, kept until the events have been delivered. */
struct apply_rec {
    union store_obj_copy copy;
    Swarm__Meta meta;
    Swarm__NodeStatus node_status; /* NODE_STATUS: the merged status */
    ProtobufCMessage *old_obj; /* decoded stored object, owned; NULL on create */
    const ProtobufCMessage *new_obj;
    enum store_kind kind;
    Swarm__StoreActionKind action;
};

static int stmt_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int store_open(const char *path, struct store **out, char *errmsg)
{
    struct store *s;
    int64_t ntables = 0;
    sqlite3_stmt *st;
    int rc, rv;

    s = calloc(1, sizeof *s);
    if (s == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    /* NOMUTEX: a store belongs to one thread (the daemon's loop). */
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "open %s: %s", path,
                      s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        rv = store_sqlite_err(rc);
        goto err_after_open;
    }
    sqlite3_extended_result_codes(s->db, 1);
    rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st) == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(s->db);
        ntables = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "open %s: %s", path, sqlite3_errmsg(s->db));
        rv = (rc & 0xff) == SQLITE_NOTADB ? SWARM_ECORRUPT : store_sqlite_err(rc);
        goto err_after_open;
    }
    rv = ntables == 0 ? store_schema_init(s->db, &s->last_index, errmsg)
                      : store_schema_check(s->db, &s->last_index, errmsg);
    if (rv != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "open %s", path);
        goto err_after_open;
    }
    rv = store_stmts_prepare(s, errmsg);
    if (rv != 0) {
        goto err_after_open;
    }
    *out = s;
    return 0;

err_after_open:
    sqlite3_close(s->db);
    free(s);
    return rv;
}

void store_close(struct store *s)
{
    if (s == NULL) {
        return;
    }
    store_stmts_finalize(s);
    sqlite3_close(s->db);
    free(s->packbuf);
    free(s->evbuf);
    free(s);
}

void store_set_event_cb(struct store *s, store_event_cb cb, void *data)
{
    s->event_cb = cb;
    s->event_data = data;
}

uint64_t store_last_index(struct store *s)
{
    return s->last_index;
}

/* ---- apply ------------------------------------------------------------- */

static void result_fail(struct store_result *r, int status, int action_index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void result_fail(struct store_result *r, int status, int action_index, const char *fmt, ...)
{
    va_list ap;
    r->status = status;
    r->action_index = action_index;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static const char *obj_name(const struct store_kind_info *ki, const ProtobufCMessage *obj)
{
    const Swarm__Annotations *a = NULL;
    if (ki->kind == STORE_KIND_SERVICE && ((const Swarm__Service *)obj)->spec != NULL) {
        a = ((const Swarm__Service *)obj)->spec->annotations;
    } else if (ki->kind == STORE_KIND_CLUSTER && ((const Swarm__Cluster *)obj)->spec != NULL) {
        a = ((const Swarm__Cluster *)obj)->spec->annotations;
    } else if (ki->kind == STORE_KIND_NETWORK && ((const Swarm__Network *)obj)->spec != NULL) {
        a = ((const Swarm__Network *)obj)->spec->annotations;
    }
    return a != NULL && a->name != NULL ? a->name : "";
}

/* Find the stored row of `id`: its version and created_at, and when `old` is
 * not NULL the decoded object. Returns 0, SWARM_ENOTFOUND or a store error. */
static int row_lookup(struct store *s, const struct store_kind_info *ki, const char *id, uint64_t *version,
                      int64_t *created_at, ProtobufCMessage **old)
{
    sqlite3_stmt *st = s->kstmt[ki->kind][STORE_KS_LOOKUP];
    int rv = 0;
    int rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE) {
        rv = SWARM_ENOTFOUND;
    } else if (rc != SQLITE_ROW) {
        rv = store_sqlite_err(rc);
    } else {
        *version = (uint64_t)sqlite3_column_int64(st, 0);
        *created_at = sqlite3_column_int64(st, 1);
        if (old != NULL) {
            const void *data = sqlite3_column_blob(st, 2);
            size_t len = (size_t)sqlite3_column_bytes(st, 2);
            *old = protobuf_c_message_unpack(ki->desc, NULL, len, data);
            rv = *old != NULL ? 0 : SWARM_ECORRUPT;
        }
    }
    sqlite3_reset(st);
    return rv;
}

/* Stamp rec's copy of obj with `meta` and write it with `st` (INSERT or
 * UPDATE). Returns 0, or the SQLite code of a failed step (constraint
 * failures included: the caller tells them apart). */
static int row_write(struct store *s, sqlite3_stmt *st, const struct store_kind_info *ki,
                     const ProtobufCMessage *obj, struct apply_rec *rec)
{
    size_t len;
    int rc;

    memcpy(&rec->copy, obj, ki->desc->sizeof_message);
    *(Swarm__Meta **)((char *)&rec->copy + ki->meta_offset) = &rec->meta;
    rec->new_obj = &rec->copy.base;

    len = protobuf_c_message_get_packed_size(&rec->copy.base);
    if (vec_grow(s->packbuf, s->packcap, len) != 0) {
        return SQLITE_NOMEM;
    }
    protobuf_c_message_pack(&rec->copy.base, s->packbuf);

    rc = store_row_bind(st, ki, &rec->copy.base, s->packbuf, len);
    return rc == SQLITE_OK ? stmt_run(st) : rc;
}

/* Turn the SQLite result of an INSERT/UPDATE into the command's outcome. */
static int write_outcome(struct store *s, int rc, const struct store_kind_info *ki,
                         const ProtobufCMessage *obj, int i, struct store_result *r)
{
    if (rc == SQLITE_OK) {
        return 0;
    }
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        result_fail(r, SWARM_EEXIST, i, "%s %s already exists", ki->name, store_obj_id(ki, obj));
        return 0;
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        result_fail(r, SWARM_EEXIST, i, "%s name %s is already in use", ki->name, obj_name(ki, obj));
        return 0;
    }
    result_fail(r, store_sqlite_err(rc), i, "write %s %s: %s", ki->name, store_obj_id(ki, obj),
                sqlite3_errmsg(s->db));
    return store_sqlite_err(rc);
}

/* An IPv4 CIDR "a.b.c.d/n" as its network address and prefix; false when
 * it is none (such a subnet takes part in no overlap check). */
static bool cidr_parse(const char *cidr, uint32_t *net, unsigned *bits)
{
    char buf[INET_ADDRSTRLEN + 4];
    const char *slash = cidr != NULL ? strchr(cidr, '/') : NULL;
    struct in_addr a;
    char *end;
    unsigned long n;
    if (slash == NULL || (size_t)(slash - cidr) >= INET_ADDRSTRLEN) {
        return false;
    }
    memcpy(buf, cidr, (size_t)(slash - cidr));
    buf[slash - cidr] = '\0';
    n = strtoul(slash + 1, &end, 10);
    if (inet_pton(AF_INET, buf, &a) != 1 || *end != '\0' || end == slash + 1 || n > 32) {
        return false;
    }
    *bits = (unsigned)n;
    *net = ntohl(a.s_addr) & (n == 0 ? 0 : ~UINT32_C(0) << (32 - n));
    return true;
}

/* A network's allocation (subnet, VNI) may not collide with another
 * network's: checked at apply, so that it holds whatever raced. */
static int network_check(struct store *s, const Swarm__Network *nw, int i, struct store_result *r)
{
    Swarm__Network **list = NULL;
    size_t n = 0;
    uint32_t net = 0, onet = 0;
    unsigned bits = 0, obits = 0;
    bool has = nw->ipam != NULL && cidr_parse(nw->ipam->subnet, &net, &bits);
    int rv = store_network_list(s, &list, &n);
    if (rv != 0) {
        result_fail(r, rv, i, "read networks: %s", swarm_strerror(rv));
        return rv;
    }
    for (size_t k = 0; k < n && r->status == 0; k++) {
        const Swarm__Network *o = list[k];
        if (strcmp(o->id, nw->id) == 0) {
            continue;
        }
        if (has && o->ipam != NULL && cidr_parse(o->ipam->subnet, &onet, &obits)) {
            unsigned m = bits < obits ? bits : obits;
            uint32_t mask = m == 0 ? 0 : ~UINT32_C(0) << (32 - m);
            if ((net & mask) == (onet & mask)) {
                result_fail(r, SWARM_EEXIST, i, "invalid pool request: Pool overlaps with other one on this address space");
            }
        }
        if (r->status == 0 && nw->vni != 0 && o->vni == nw->vni) {
            result_fail(r, SWARM_EEXIST, i, "VXLAN ID %u is already in use", nw->vni);
        }
    }
    store_network_free_list(list, n);
    return 0;
}

static bool spec_names_network(const Swarm__Service *svc, const char *network_id)
{
    const Swarm__TaskSpec *ts = svc != NULL && svc->spec != NULL ? svc->spec->task : NULL;
    for (size_t k = 0; ts != NULL && k < ts->n_networks; k++) {
        if (ts->networks[k]->target != NULL && strcmp(ts->networks[k]->target, network_id) == 0) {
            return true;
        }
    }
    return false;
}

/* A service's spec may name only networks that exist, and a network named
 * by a service may not go: checked at apply, so that a `network rm` racing
 * a `service create` cannot leave a service on a missing network. On an
 * update only the networks the new spec adds are checked, so a service
 * already in that state can still be changed (e.g. to drop the network). */
static int service_networks_check(struct store *s, const Swarm__Service *svc, const Swarm__Service *old, int i,
                                  struct store_result *r)
{
    const Swarm__TaskSpec *ts = svc->spec != NULL ? svc->spec->task : NULL;
    for (size_t k = 0; ts != NULL && k < ts->n_networks && r->status == 0; k++) {
        const char *target = ts->networks[k]->target;
        Swarm__Network *nw = NULL;
        int rv;
        if (target == NULL || (old != NULL && spec_names_network(old, target))) {
            continue;
        }
        rv = store_network_get(s, target, &nw);
        if (rv == SWARM_ENOTFOUND) {
            result_fail(r, SWARM_ENOTFOUND, i, "network %s not found", target);
        } else if (rv != 0) {
            result_fail(r, rv, i, "read network %s: %s", target, swarm_strerror(rv));
            return rv;
        } else {
            swarm__network__free_unpacked(nw, NULL);
        }
    }
    return 0;
}

static int network_unused_check(struct store *s, const Swarm__Network *nw, int i, struct store_result *r)
{
    Swarm__Service **svcs = NULL;
    size_t n = 0;
    int rv = store_service_list(s, &svcs, &n);
    if (rv != 0) {
        result_fail(r, rv, i, "read services: %s", swarm_strerror(rv));
        return rv;
    }
    for (size_t k = 0; k < n && r->status == 0; k++) {
        if (spec_names_network(svcs[k], nw->id)) {
            result_fail(r, SWARM_ESTATE, i, "network %s is in use by service %s",
                        nw->spec != NULL && nw->spec->annotations != NULL ? nw->spec->annotations->name : nw->id,
                        svcs[k]->id);
        }
    }
    store_service_free_list(svcs, n);
    return 0;
}

/* A service's published ports may not conflict with another service's
 * (ports.h): checked at apply too, so that it holds whatever raced. */
static int service_ports_check(struct store *s, const Swarm__Service *svc,
                               const ProtobufCMessage *old, int i, struct store_result *r)
{
    Swarm__Service **list = NULL;
    size_t n = 0, np = 0, nold = 0;
    char errmsg[SWARM_ERRMSG_SIZE];
    Swarm__PortConfig *const *ports = ports_of_service(svc, &np);
    if (np == 0) {
        return 0;
    }
    if (old != NULL) {
        /* Unchanged ports need no check (the orchestrator's updates). */
        Swarm__PortConfig *const *was = ports_of_service((const Swarm__Service *)old, &nold);
        bool same = nold == np;
        for (size_t k = 0; same && k < np; k++) {
            same = was[k]->published_port == ports[k]->published_port &&
                   strcmp(ports_protocol(was[k]), ports_protocol(ports[k])) == 0 &&
                   ports_is_ingress(was[k]) == ports_is_ingress(ports[k]);
        }
        if (same) {
            return 0;
        }
    }
    int rv = store_service_list(s, &list, &n);
    if (rv != 0) {
        result_fail(r, rv, i, "read services: %s", swarm_strerror(rv));
        return rv;
    }
    if (ports_check_conflicts(ports, np, svc->id, list, n, errmsg) != 0) {
        result_fail(r, SWARM_EEXIST, i, "%s", errmsg);
    }
    store_service_free_list(list, n);
    return 0;
}

static int action_create(struct store *s, uint64_t index, int64_t ts, const struct store_kind_info *ki,
                         const ProtobufCMessage *obj, struct apply_rec *rec, int i,
                         struct store_result *r)
{
    int rc;
    if (ki->kind == STORE_KIND_NETWORK || ki->kind == STORE_KIND_SERVICE) {
        int rv = ki->kind == STORE_KIND_NETWORK ? network_check(s, (const Swarm__Network *)obj, i, r)
                                                : service_networks_check(s, (const Swarm__Service *)obj, NULL, i, r);
        if (rv != 0 || r->status != 0) {
            return rv;
        }
    }
    if (ki->kind == STORE_KIND_SERVICE) {
        int rv = service_ports_check(s, (const Swarm__Service *)obj, NULL, i, r);
        if (rv != 0 || r->status != 0) {
            return rv;
        }
    }
    swarm__meta__init(&rec->meta);
    rec->meta.version = index;
    rec->meta.created_at = ts;
    rec->meta.updated_at = ts;
    rc = row_write(s, s->kstmt[ki->kind][STORE_KS_INSERT], ki, obj, rec);
    return write_outcome(s, rc, ki, obj, i, r);
}

/* The shared first half of UPDATE and REMOVE: the object must exist and, if
 * the action names a version, have exactly that version. */
static int action_check(struct store *s, const char *verb, const struct store_kind_info *ki,
                        const ProtobufCMessage *obj, struct apply_rec *rec, int i, struct store_result *r,
                        int64_t *created_at)
{
    const char *id = store_obj_id(ki, obj);
    const Swarm__Meta *meta = store_obj_meta(ki, obj);
    uint64_t expected = meta != NULL ? meta->version : 0;
    uint64_t version = 0;
    int rv = row_lookup(s, ki, id, &version, created_at, &rec->old_obj);

    if (rv == SWARM_ENOTFOUND) {
        result_fail(r, SWARM_ENOTFOUND, i, "%s %s not found", ki->name, id);
        return 0;
    }
    if (rv != 0) {
        result_fail(r, rv, i, "read %s %s: %s", ki->name, id,
                    rv == SWARM_ECORRUPT ? "cannot decode stored object" : sqlite3_errmsg(s->db));
        return rv;
    }
    if (expected != 0 && expected != version) {
        result_fail(r, SWARM_ECONFLICT, i, "%s out of sequence: %s %s has version %llu, expected %llu", verb,
                    ki->name, id, (unsigned long long)version, (unsigned long long)expected);
    }
    return 0;
}

static int action_update(struct store *s, uint64_t index, int64_t ts, const struct store_kind_info *ki,
                         const ProtobufCMessage *obj, struct apply_rec *rec, int i,
                         struct store_result *r)
{
    int64_t created_at = 0;
    int rc, rv = action_check(s, "update", ki, obj, rec, i, r, &created_at);
    if (rv == 0 && r->status == 0 && ki->kind == STORE_KIND_NETWORK) {
        rv = network_check(s, (const Swarm__Network *)obj, i, r);
    } else if (rv == 0 && r->status == 0 && ki->kind == STORE_KIND_SERVICE) {
        rv = service_networks_check(s, (const Swarm__Service *)obj, (const Swarm__Service *)rec->old_obj, i, r);
    }
    if (rv == 0 && r->status == 0 && ki->kind == STORE_KIND_SERVICE) {
        rv = service_ports_check(s, (const Swarm__Service *)obj, rec->old_obj, i, r);
    }
    if (rv != 0 || r->status != 0) {
        return rv;
    }
    swarm__meta__init(&rec->meta);
    rec->meta.version = index;
    rec->meta.created_at = created_at;
    rec->meta.updated_at = ts;
    rc = row_write(s, s->kstmt[ki->kind][STORE_KS_UPDATE], ki, obj, rec);
    return write_outcome(s, rc, ki, obj, i, r);
}

static int action_remove(struct store *s, const struct store_kind_info *ki, const ProtobufCMessage *obj,
                         struct apply_rec *rec, int i, struct store_result *r)
{
    sqlite3_stmt *st = s->kstmt[ki->kind][STORE_KS_DELETE];
    int64_t created_at = 0;
    int rc, rv = action_check(s, "remove", ki, obj, rec, i, r, &created_at);
    if (rv == 0 && r->status == 0 && ki->kind == STORE_KIND_NETWORK) {
        rv = network_unused_check(s, (const Swarm__Network *)rec->old_obj, i, r);
    }
    if (rv != 0 || r->status != 0) {
        return rv;
    }
    rc = sqlite3_bind_text(st, 1, store_obj_id(ki, obj), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = stmt_run(st);
    }
    return write_outcome(s, rc, ki, obj, i, r);
}

/* See STORE_ACTION_TASK_STATUS and STORE_ACTION_TASK_PATCH in store.proto.
 * A report or patch that changes nothing leaves rec->kind 0: no event. */
static int action_task_merge(struct store *s, uint64_t index, int64_t ts,
                             const struct store_kind_info *ki, const Swarm__Task *t, bool patch,
                             struct apply_rec *rec, int i, struct store_result *r)
{
    ProtobufCMessage *old = NULL;
    uint64_t version = 0;
    int64_t created_at = 0;
    Swarm__Task merged;
    bool changed = false;
    int rc, rv = row_lookup(s, ki, t->id, &version, &created_at, &old);

    if (rv == SWARM_ENOTFOUND) {
        rec->kind = 0;
        return 0;
    }
    if (rv != 0) {
        result_fail(r, rv, i, "read task %s: %s", t->id,
                    rv == SWARM_ECORRUPT ? "cannot decode stored object" : sqlite3_errmsg(s->db));
        return rv;
    }
    const Swarm__Task *ot = (const Swarm__Task *)old;
    merged = *ot;
    if (t->status != NULL && (ot->status == NULL || t->status->state >= ot->status->state)) {
        merged.status = t->status;
        changed = true;
    }
    if (merged.status == t->status && t->status->state >= SWARM__TASK_STATE__TASK_STATE_RUNNING &&
        ot->started_at == 0) {
        /* The first report of running, or an end that follows one. */
        if (t->status->state == SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            merged.started_at = t->status->timestamp;
        } else if (ot->status != NULL && ot->status->state == SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            merged.started_at = ot->status->timestamp;
        }
    }
    if (patch && t->desired_state > ot->desired_state) {
        merged.desired_state = t->desired_state;
        changed = true;
    }
    if (patch && t->ended_on_its_own && !ot->ended_on_its_own) {
        merged.ended_on_its_own = true;
        changed = true;
    }
    if (patch && t->node_id != NULL && t->node_id[0] != '\0' &&
        (ot->node_id == NULL || ot->node_id[0] == '\0')) {
        merged.node_id = t->node_id;
        changed = true;
    }
    if (!changed) {
        protobuf_c_message_free_unpacked(old, NULL);
        rec->kind = 0;
        return 0;
    }
    rec->old_obj = old;
    rec->action = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    swarm__meta__init(&rec->meta);
    rec->meta.version = index;
    rec->meta.created_at = created_at;
    rec->meta.updated_at = ts;
    rc = row_write(s, s->kstmt[ki->kind][STORE_KS_UPDATE], ki, &merged.base, rec);
    return write_outcome(s, rc, ki, &merged.base, i, r);
}

/* See STORE_ACTION_NODE_STATUS in store.proto. */
static int action_node_status(struct store *s, uint64_t index, int64_t ts,
                              const struct store_kind_info *ki, const Swarm__Node *n,
                              struct apply_rec *rec, int i, struct store_result *r)
{
    ProtobufCMessage *old = NULL;
    uint64_t version = 0;
    int64_t created_at = 0;
    Swarm__Node merged;
    int rc, rv = row_lookup(s, ki, n->id, &version, &created_at, &old);

    if (rv == SWARM_ENOTFOUND || (rv == 0 && n->status == NULL)) {
        if (old != NULL) {
            protobuf_c_message_free_unpacked(old, NULL);
        }
        rec->kind = 0;
        return 0;
    }
    if (rv != 0) {
        result_fail(r, rv, i, "read node %s: %s", n->id,
                    rv == SWARM_ECORRUPT ? "cannot decode stored object" : sqlite3_errmsg(s->db));
        return rv;
    }
    rec->old_obj = old;
    rec->action = SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE;
    merged = *(const Swarm__Node *)old;
    /* A status without an address (a node that went down) keeps the last
     * known address, as Docker shows it. */
    rec->node_status = *n->status;
    if ((rec->node_status.addr == NULL || rec->node_status.addr[0] == '\0') && merged.status != NULL) {
        rec->node_status.addr = merged.status->addr;
    }
    merged.status = &rec->node_status;
    if (n->description != NULL) {
        merged.description = n->description;
    }
    swarm__meta__init(&rec->meta);
    rec->meta.version = index;
    rec->meta.created_at = created_at;
    rec->meta.updated_at = ts;
    rc = row_write(s, s->kstmt[ki->kind][STORE_KS_UPDATE], ki, &merged.base, rec);
    return write_outcome(s, rc, ki, &merged.base, i, r);
}

static const ProtobufCMessage *action_target(const Swarm__StoreAction *a, enum store_kind *kind)
{
    switch (a->target_case) {
        case SWARM__STORE_ACTION__TARGET_NODE:
            *kind = STORE_KIND_NODE;
            return a->node != NULL ? &a->node->base : NULL;
        case SWARM__STORE_ACTION__TARGET_SERVICE:
            *kind = STORE_KIND_SERVICE;
            return a->service != NULL ? &a->service->base : NULL;
        case SWARM__STORE_ACTION__TARGET_TASK:
            *kind = STORE_KIND_TASK;
            return a->task != NULL ? &a->task->base : NULL;
        case SWARM__STORE_ACTION__TARGET_CLUSTER:
            *kind = STORE_KIND_CLUSTER;
            return a->cluster != NULL ? &a->cluster->base : NULL;
        case SWARM__STORE_ACTION__TARGET_NETWORK:
            *kind = STORE_KIND_NETWORK;
            return a->network != NULL ? &a->network->base : NULL;
        default:
            return NULL;
    }
}

/* Apply action i. Returns 0 (with r->status set if the action broke a rule)
 * or a negative store failure. */
static int action_apply(struct store *s, uint64_t index, int64_t ts, const Swarm__StoreAction *a,
                        struct apply_rec *rec, int i, struct store_result *r)
{
    enum store_kind kind = 0;
    const ProtobufCMessage *obj = a != NULL ? action_target(a, &kind) : NULL;
    const struct store_kind_info *ki;

    if (obj == NULL) {
        result_fail(r, SWARM_EINVAL, i, "action %d has no target object", i);
        return 0;
    }
    ki = store_kind_info(kind);
    if (store_obj_id(ki, obj)[0] == '\0') {
        result_fail(r, SWARM_EINVAL, i, "action %d: %s has an empty id", i, ki->name);
        return 0;
    }
    rec->kind = kind;
    rec->action = a->kind;
    switch (a->kind) {
        case SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE:
            return action_create(s, index, ts, ki, obj, rec, i, r);
        case SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE:
            return action_update(s, index, ts, ki, obj, rec, i, r);
        case SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE:
            return action_remove(s, ki, obj, rec, i, r);
        case SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS:
            if (kind != STORE_KIND_TASK) {
                result_fail(r, SWARM_EINVAL, i, "action %d: a status report needs a task", i);
                return 0;
            }
            return action_task_merge(s, index, ts, ki, (const Swarm__Task *)obj, false, rec, i, r);
        case SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_PATCH:
            if (kind != STORE_KIND_TASK) {
                result_fail(r, SWARM_EINVAL, i, "action %d: a task patch needs a task", i);
                return 0;
            }
            return action_task_merge(s, index, ts, ki, (const Swarm__Task *)obj, true, rec, i, r);
        case SWARM__STORE_ACTION_KIND__STORE_ACTION_NODE_STATUS:
            if (kind != STORE_KIND_NODE) {
                result_fail(r, SWARM_EINVAL, i, "action %d: a node status needs a node", i);
                return 0;
            }
            return action_node_status(s, index, ts, ki, (const Swarm__Node *)obj, rec, i, r);
        default:
            result_fail(r, SWARM_EINVAL, i, "action %d: unknown action kind %d", i, (int)a->kind);
            return 0;
    }
}

static int index_write(struct store *s, uint64_t index)
{
    sqlite3_stmt *st = s->stmt[STORE_ST_SET_INDEX];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    return rc == SQLITE_OK ? stmt_run(st) : rc;
}

/* The index of a command that failed on a rule, in its own transaction. */
static int index_commit_alone(struct store *s, uint64_t index)
{
    int rc = stmt_run(s->stmt[STORE_ST_BEGIN]);
    if (rc != SQLITE_OK) {
        return rc;
    }
    rc = index_write(s, index);
    if (rc == SQLITE_OK) {
        rc = stmt_run(s->stmt[STORE_ST_COMMIT]);
    }
    if (rc != SQLITE_OK) {
        stmt_run(s->stmt[STORE_ST_ROLLBACK]);
    }
    return rc;
}

/* The event of an applied action, in its transaction (store/events.c). */
static int event_record(struct store *s, uint64_t index, int64_t ts, const struct apply_rec *rec,
                        uint32_t *n_events, struct store_result *r)
{
    struct store_evdesc d;
    const ProtobufCMessage *new_obj =
        rec->action == SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE ? NULL : rec->new_obj;
    int rc;
    if (!store_event_describe(rec->kind, rec->action, rec->old_obj, new_obj, &d)) {
        return 0;
    }
    rc = store_events_insert(s, index, *n_events, ts, &d);
    if (rc != SQLITE_OK) {
        result_fail(r, store_sqlite_err(rc), -1, "write event: %s", sqlite3_errmsg(s->db));
        return store_sqlite_err(rc);
    }
    (*n_events)++;
    return 0;
}

static void events_fire(struct store *s, uint64_t index, struct apply_rec *recs, size_t n)
{
    for (size_t i = 0; i < n && s->event_cb != NULL; i++) {
        if (recs[i].kind == 0) {
            continue; /* an action that changed nothing */
        }
        struct store_event ev = {
            .action = recs[i].action,
            .kind = recs[i].kind,
            .old_obj = recs[i].old_obj,
            .new_obj = recs[i].action == SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE ? NULL
                                                                                      : recs[i].new_obj,
            .index = index,
        };
        s->event_cb(&ev, s->event_data);
    }
}

static void recs_free(struct apply_rec *recs, size_t n)
{
    if (recs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].old_obj != NULL) {
            protobuf_c_message_free_unpacked(recs[i].old_obj, NULL);
        }
    }
    free(recs);
}

int store_apply(struct store *s, uint64_t index, const Swarm__StoreCommand *cmd, struct store_result *result)
{
    struct store_result local;
    struct store_result *r = result != NULL ? result : &local;
    struct apply_rec scratch;
    struct apply_rec *recs = NULL;
    size_t n = cmd->n_actions;
    uint32_t n_events = 0;
    int rc, rv = 0;

    r->status = 0;
    r->action_index = -1;
    r->message[0] = '\0';
    if (index <= s->last_index) {
        return 0;
    }
    /* Without a listener one scratch record serves every action: nothing
     * has to outlive its action. */
    if (s->event_cb != NULL && n > 0) {
        recs = calloc(n, sizeof *recs);
        if (recs == NULL) {
            result_fail(r, SWARM_ENOMEM, -1, "out of memory for %zu actions", n);
            return SWARM_ENOMEM;
        }
    }
    rc = stmt_run(s->stmt[STORE_ST_BEGIN]);
    if (rc != SQLITE_OK) {
        result_fail(r, store_sqlite_err(rc), -1, "begin: %s", sqlite3_errmsg(s->db));
        rv = store_sqlite_err(rc);
        goto err_after_alloc;
    }
    for (size_t i = 0; i < n; i++) {
        struct apply_rec *rec = recs != NULL ? &recs[i] : &scratch;
        if (recs == NULL) {
            scratch.old_obj = NULL;
        }
        rv = action_apply(s, index, cmd->timestamp, cmd->actions[i], rec, (int)i, r);
        if (rv == 0 && r->status == 0 && rec->kind != 0) {
            rv = event_record(s, index, cmd->timestamp, rec, &n_events, r);
        }
        if (recs == NULL && scratch.old_obj != NULL) {
            protobuf_c_message_free_unpacked(scratch.old_obj, NULL);
            scratch.old_obj = NULL;
        }
        if (rv != 0) {
            goto err_after_begin;
        }
        if (r->status != 0) {
            break;
        }
    }
    if (r->status != 0) {
        /* The rule failure is the entry's outcome: undo its actions, keep
         * its index. */
        stmt_run(s->stmt[STORE_ST_ROLLBACK]);
        rc = index_commit_alone(s, index);
        if (rc != SQLITE_OK) {
            rv = store_sqlite_err(rc);
            goto err_after_alloc;
        }
        s->last_index = index;
        recs_free(recs, n);
        return 0;
    }
    rc = n_events > 0 ? store_events_prune(s) : SQLITE_OK;
    if (rc == SQLITE_OK) {
        rc = index_write(s, index);
    }
    if (rc == SQLITE_OK) {
        rc = stmt_run(s->stmt[STORE_ST_COMMIT]);
    }
    if (rc != SQLITE_OK) {
        result_fail(r, store_sqlite_err(rc), -1, "commit: %s", sqlite3_errmsg(s->db));
        rv = store_sqlite_err(rc);
        goto err_after_begin;
    }
    s->last_index = index;
    if (recs != NULL) {
        events_fire(s, index, recs, n);
    }
    recs_free(recs, n);
    return 0;

err_after_begin:
    stmt_run(s->stmt[STORE_ST_ROLLBACK]);
err_after_alloc:
    recs_free(recs, n);
    return rv;
}

/* ---- snapshot and restore ------------------------------------------------ */

/* Bytes 18 and 19 of the header are the file format versions: 2 means WAL.
 * An in-memory database cannot open a WAL image, so images carry 1 (rollback
 * journal); the live store keeps its own journal mode across a restore. */
static void image_clear_wal(uint8_t *img, size_t len)
{
    if (len >= 100 && img[18] == 2 && img[19] == 2) {
        img[18] = 1;
        img[19] = 1;
    }
}

int store_snapshot(struct store *s, void **buf, size_t *len, char *errmsg)
{
    sqlite3_int64 size = 0;
    unsigned char *img = sqlite3_serialize(s->db, "main", &size, 0);
    void *copy;

    if (img == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "serialize store: %s", sqlite3_errmsg(s->db));
        return SWARM_ESQL;
    }
    copy = malloc((size_t)size);
    if (copy == NULL) {
        sqlite3_free(img);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory for a %lld-byte snapshot", (long long)size);
        return SWARM_ENOMEM;
    }
    memcpy(copy, img, (size_t)size);
    sqlite3_free(img);
    image_clear_wal(copy, (size_t)size);
    *buf = copy;
    *len = (size_t)size;
    return 0;
}

/* Open `buf` as a private in-memory database and check that it is a sound
 * store image. On success *out is the open database and *index its index. */
static int image_open(const void *buf, size_t len, sqlite3 **out, uint64_t *index, char *errmsg)
{
    static const char magic[16] = "SQLite format 3";
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    uint8_t *img;
    int rc, rv;

    if (buf == NULL || len < 512 || memcmp(buf, magic, sizeof magic) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "not a store snapshot (%zu bytes)", len);
        return SWARM_ECORRUPT;
    }
    rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "open scratch database: %s", sqlite3_errstr(rc));
        rv = store_sqlite_err(rc);
        goto err_after_open;
    }
    img = sqlite3_malloc64(len);
    if (img == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory for a %zu-byte snapshot", len);
        rv = SWARM_ENOMEM;
        goto err_after_open;
    }
    memcpy(img, buf, len);
    image_clear_wal(img, len);
    /* FREEONCLOSE: img now belongs to db, also when this fails. */
    rc = sqlite3_deserialize(db, "main", img, (sqlite3_int64)len, (sqlite3_int64)len,
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "load snapshot: %s", sqlite3_errmsg(db));
        rv = store_sqlite_err(rc);
        goto err_after_open;
    }
    rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "snapshot fails its integrity check: %s",
                          (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
            rv = SWARM_ECORRUPT;
            goto err_after_open;
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_ROW) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "snapshot is not a sound database: %s", sqlite3_errmsg(db));
        rv = SWARM_ECORRUPT;
        goto err_after_open;
    }
    rv = store_schema_check(db, index, errmsg);
    if (rv != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "snapshot");
        goto err_after_open;
    }
    *out = db;
    return 0;

err_after_open:
    sqlite3_close(db);
    return rv;
}

int store_restore(struct store *s, const void *buf, size_t len, char *errmsg)
{
    sqlite3 *src;
    sqlite3_backup *b;
    uint64_t index = 0;
    int rc, rv = image_open(buf, len, &src, &index, errmsg);

    if (rv != 0) {
        return rv;
    }
    /* The backup API copies the pages into the live database in one
     * transaction of its own: a file-backed store stays file-backed (and in
     * WAL mode), and a failure part-way leaves the old content. */
    b = sqlite3_backup_init(s->db, "main", src, "main");
    if (b == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "restore: %s", sqlite3_errmsg(s->db));
        rv = SWARM_ESQL;
        goto err_after_open;
    }
    rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "restore: %s", sqlite3_errstr(rc));
        rv = store_sqlite_err(rc);
        goto err_after_open;
    }
    s->last_index = index;
    sqlite3_close(src);
    return 0;

err_after_open:
    sqlite3_close(src);
    return rv;
}

int store_reset(struct store *s, char *errmsg)
{
    static const char sql[] = "BEGIN IMMEDIATE; DELETE FROM nodes; DELETE FROM services; "
                              "DELETE FROM tasks; DELETE FROM clusters; DELETE FROM networks; DELETE FROM events; "
                              "UPDATE meta SET value = 0 WHERE key = 'last_index'; COMMIT;";
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "reset store: %s", err != NULL ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return store_sqlite_err(rc);
    }
    s->last_index = 0;
    return 0;
}
