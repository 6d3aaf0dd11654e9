/* Reads of committed state: get by ID or name, resolve a user's reference,
 * list in a stable order. Every read runs one cached statement and decodes
 * the `data` column; the objects returned belong to the caller. */
#include <stdlib.h>

#include "store_int.h"
#include "vec.h"

static int row_decode(sqlite3_stmt *st, const struct store_kind_info *ki, ProtobufCMessage **out)
{
    const void *data = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    *out = protobuf_c_message_unpack(ki->desc, NULL, len, data);
    return *out != NULL ? 0 : SWARM_ECORRUPT;
}

/* Run `st` (parameters bound) and decode its first row. */
static int stmt_get(sqlite3_stmt *st, const struct store_kind_info *ki, ProtobufCMessage **out)
{
    int rv, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rv = row_decode(st, ki, out);
    } else if (rc == SQLITE_DONE) {
        rv = SWARM_ENOTFOUND;
    } else {
        rv = store_sqlite_err(rc);
    }
    sqlite3_reset(st);
    return rv;
}

/* Bind ?1 to `text` (or nothing when NULL) and run stmt_get. */
static int stmt_get_text(sqlite3_stmt *st, const char *text, const struct store_kind_info *ki,
                         ProtobufCMessage **out)
{
    if (text != NULL) {
        int rc = sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK) {
            return store_sqlite_err(rc);
        }
    }
    return stmt_get(st, ki, out);
}

static int get_by_id(struct store *s, enum store_kind kind, const char *id, ProtobufCMessage **out)
{
    const struct store_kind_info *ki = store_kind_info(kind);
    if (id == NULL) {
        return SWARM_ENOTFOUND;
    }
    return stmt_get_text(s->kstmt[kind][STORE_KS_GET], id, ki, out);
}

static void store_msg_list_free(ProtobufCMessage **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        protobuf_c_message_free_unpacked(list[i], NULL);
    }
    free(list);
}

/* Run `st` (?1 bound to `text` unless NULL) and decode every row. */
static int stmt_list(sqlite3_stmt *st, const char *text, const struct store_kind_info *ki,
                     ProtobufCMessage ***out, size_t *n)
{
    ProtobufCMessage **list = NULL;
    size_t count = 0, cap = 0;
    int rc = SQLITE_OK, rv = 0;

    if (text != NULL) {
        rc = sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    }
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if ((rv = vec_grow(list, cap, count + 1)) != 0) {
            break;
        }
        rv = row_decode(st, ki, &list[count]);
        if (rv != 0) {
            break;
        }
        count++;
    }
    if (rv == 0 && rc != SQLITE_DONE) {
        rv = store_sqlite_err(rc);
    }
    sqlite3_reset(st);
    if (rv != 0) {
        store_msg_list_free(list, count);
        return rv;
    }
    *out = list;
    *n = count;
    return 0;
}

/* Run `st` with ?1 = ref; count the rows and decode the first into *first. */
static int stmt_match(sqlite3_stmt *st, const char *ref, const struct store_kind_info *ki,
                      ProtobufCMessage **first, size_t *count)
{
    int rv = 0, rc = sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    *first = NULL;
    *count = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (*count == 0) {
            rv = row_decode(st, ki, first);
            if (rv != 0) {
                break;
            }
        }
        (*count)++;
    }
    if (rv == 0 && rc != SQLITE_DONE) {
        rv = store_sqlite_err(rc);
    }
    sqlite3_reset(st);
    if (rv != 0 && *first != NULL) {
        protobuf_c_message_free_unpacked(*first, NULL);
        *first = NULL;
    }
    return rv;
}

/* Docker's order (moby's daemon/cluster helpers): the exact ID, else the
 * exact name (by_name may be NULL: tasks have no name), else a unique ID
 * prefix. A name is never shadowed by an ID that happens to start with it:
 * `service inspect b` is the service named b even when another service's ID
 * starts with "b". */
static int find(struct store *s, enum store_kind kind, sqlite3_stmt *by_name, const char *ref,
                ProtobufCMessage **out, size_t *nmatches)
{
    const struct store_kind_info *ki = store_kind_info(kind);
    ProtobufCMessage *by_prefix = NULL, *named = NULL;
    size_t nprefix = 0, nnamed = 0, dummy;
    int rv;

    nmatches = nmatches != NULL ? nmatches : &dummy;
    *nmatches = 0;
    if (ref == NULL || ref[0] == '\0') {
        return SWARM_ENOTFOUND;
    }
    rv = get_by_id(s, kind, ref, out);
    if (rv != SWARM_ENOTFOUND) {
        *nmatches = rv == 0 ? 1 : 0;
        return rv;
    }
    if (by_name != NULL) {
        rv = stmt_match(by_name, ref, ki, &named, &nnamed);
        if (rv != 0) {
            return rv;
        }
    }
    if (nnamed == 1) {
        *out = named;
        *nmatches = 1;
        return 0;
    }
    if (nnamed > 1) {
        *nmatches = nnamed;
        rv = SWARM_EAMBIGUOUS;
        goto out;
    }
    rv = stmt_match(s->kstmt[kind][STORE_KS_PREFIX], ref, ki, &by_prefix, &nprefix);
    if (rv != 0) {
        goto out;
    }
    if (nprefix == 1) {
        *out = by_prefix;
        by_prefix = NULL;
        *nmatches = 1;
        rv = 0;
    } else if (nprefix > 1) {
        *nmatches = nprefix;
        rv = SWARM_EAMBIGUOUS;
    } else {
        rv = SWARM_ENOTFOUND;
    }
out:
    if (by_prefix != NULL) {
        protobuf_c_message_free_unpacked(by_prefix, NULL);
    }
    if (named != NULL) {
        protobuf_c_message_free_unpacked(named, NULL);
    }
    return rv;
}

/* ---- typed entry points ------------------------------------------------ */

int store_node_get(struct store *s, const char *id, Swarm__Node **out)
{
    return get_by_id(s, STORE_KIND_NODE, id, (ProtobufCMessage **)out);
}

int store_service_get(struct store *s, const char *id, Swarm__Service **out)
{
    return get_by_id(s, STORE_KIND_SERVICE, id, (ProtobufCMessage **)out);
}

int store_task_get(struct store *s, const char *id, Swarm__Task **out)
{
    return get_by_id(s, STORE_KIND_TASK, id, (ProtobufCMessage **)out);
}

int store_cluster_get(struct store *s, const char *id, Swarm__Cluster **out)
{
    return get_by_id(s, STORE_KIND_CLUSTER, id, (ProtobufCMessage **)out);
}

int store_cluster_get_default(struct store *s, Swarm__Cluster **out)
{
    return stmt_get(s->stmt[STORE_ST_CLUSTER_DEFAULT], store_kind_info(STORE_KIND_CLUSTER),
                    (ProtobufCMessage **)out);
}

int store_service_get_by_name(struct store *s, const char *name, Swarm__Service **out)
{
    if (name == NULL || name[0] == '\0') {
        return SWARM_ENOTFOUND;
    }
    return stmt_get_text(s->stmt[STORE_ST_SERVICE_BY_NAME], name, store_kind_info(STORE_KIND_SERVICE),
                         (ProtobufCMessage **)out);
}

int store_network_get(struct store *s, const char *id, Swarm__Network **out)
{
    return get_by_id(s, STORE_KIND_NETWORK, id, (ProtobufCMessage **)out);
}

int store_network_get_by_name(struct store *s, const char *name, Swarm__Network **out)
{
    if (name == NULL || name[0] == '\0') {
        return SWARM_ENOTFOUND;
    }
    return stmt_get_text(s->stmt[STORE_ST_NETWORK_BY_NAME], name, store_kind_info(STORE_KIND_NETWORK),
                         (ProtobufCMessage **)out);
}

int store_network_find(struct store *s, const char *ref, Swarm__Network **out, size_t *nmatches)
{
    return find(s, STORE_KIND_NETWORK, s->stmt[STORE_ST_NETWORK_BY_NAME], ref, (ProtobufCMessage **)out,
                nmatches);
}

int store_network_list(struct store *s, Swarm__Network ***out, size_t *n)
{
    return stmt_list(s->kstmt[STORE_KIND_NETWORK][STORE_KS_LIST], NULL, store_kind_info(STORE_KIND_NETWORK),
                     (ProtobufCMessage ***)out, n);
}

void store_network_free_list(Swarm__Network **list, size_t n)
{
    store_msg_list_free((ProtobufCMessage **)list, n);
}

int store_node_find(struct store *s, const char *ref, Swarm__Node **out, size_t *nmatches)
{
    return find(s, STORE_KIND_NODE, s->stmt[STORE_ST_NODE_BY_NAME], ref, (ProtobufCMessage **)out, nmatches);
}

int store_service_find(struct store *s, const char *ref, Swarm__Service **out, size_t *nmatches)
{
    return find(s, STORE_KIND_SERVICE, s->stmt[STORE_ST_SERVICE_BY_NAME], ref, (ProtobufCMessage **)out,
                nmatches);
}

int store_task_find(struct store *s, const char *ref, Swarm__Task **out, size_t *nmatches)
{
    return find(s, STORE_KIND_TASK, NULL, ref, (ProtobufCMessage **)out, nmatches);
}

int store_node_list(struct store *s, Swarm__Node ***out, size_t *n)
{
    return stmt_list(s->kstmt[STORE_KIND_NODE][STORE_KS_LIST], NULL, store_kind_info(STORE_KIND_NODE),
                     (ProtobufCMessage ***)out, n);
}

int store_service_list(struct store *s, Swarm__Service ***out, size_t *n)
{
    return stmt_list(s->kstmt[STORE_KIND_SERVICE][STORE_KS_LIST], NULL, store_kind_info(STORE_KIND_SERVICE),
                     (ProtobufCMessage ***)out, n);
}

int store_task_list(struct store *s, Swarm__Task ***out, size_t *n)
{
    return stmt_list(s->kstmt[STORE_KIND_TASK][STORE_KS_LIST], NULL, store_kind_info(STORE_KIND_TASK),
                     (ProtobufCMessage ***)out, n);
}

int store_task_list_by_service(struct store *s, const char *service_id, Swarm__Task ***out, size_t *n)
{
    return stmt_list(s->stmt[STORE_ST_TASK_BY_SERVICE], service_id != NULL ? service_id : "",
                     store_kind_info(STORE_KIND_TASK), (ProtobufCMessage ***)out, n);
}

int store_task_list_by_node(struct store *s, const char *node_id, Swarm__Task ***out, size_t *n)
{
    return stmt_list(s->stmt[STORE_ST_TASK_BY_NODE], node_id != NULL ? node_id : "",
                     store_kind_info(STORE_KIND_TASK), (ProtobufCMessage ***)out, n);
}

int store_task_list_unplaced(struct store *s, Swarm__Task ***out, size_t *n)
{
    return stmt_list(s->stmt[STORE_ST_TASK_UNPLACED], NULL, store_kind_info(STORE_KIND_TASK),
                     (ProtobufCMessage ***)out, n);
}

int store_cluster_list(struct store *s, Swarm__Cluster ***out, size_t *n)
{
    return stmt_list(s->kstmt[STORE_KIND_CLUSTER][STORE_KS_LIST], NULL, store_kind_info(STORE_KIND_CLUSTER),
                     (ProtobufCMessage ***)out, n);
}

void store_node_free_list(Swarm__Node **list, size_t n)
{
    store_msg_list_free((ProtobufCMessage **)list, n);
}

void store_service_free_list(Swarm__Service **list, size_t n)
{
    store_msg_list_free((ProtobufCMessage **)list, n);
}

void store_task_free_list(Swarm__Task **list, size_t n)
{
    store_msg_list_free((ProtobufCMessage **)list, n);
}

void store_cluster_free_list(Swarm__Cluster **list, size_t n)
{
    store_msg_list_free((ProtobufCMessage **)list, n);
}

/* Run `st` (parameters bound) for its single count. */
static int stmt_count(sqlite3_stmt *st, size_t *n)
{
    int rv = 0, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = (size_t)sqlite3_column_int64(st, 0);
    } else {
        rv = store_sqlite_err(rc);
    }
    sqlite3_reset(st);
    return rv;
}

int store_node_count(struct store *s, size_t *n)
{
    return stmt_count(s->stmt[STORE_ST_NODE_COUNT], n);
}

int store_task_count_by_state(struct store *s, const char *service_id, int desired_state, int state,
                              size_t *n)
{
    sqlite3_stmt *st = s->stmt[STORE_ST_TASK_COUNT_BY_STATE];
    int rc = sqlite3_bind_text(st, 1, service_id != NULL ? service_id : "", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int(st, 2, desired_state);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int(st, 3, state);
    }
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        return store_sqlite_err(rc);
    }
    return stmt_count(st, n);
}

static int stmt_tally(sqlite3_stmt *st, int ncols, store_tally_cb cb, void *data)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int a = sqlite3_column_int(st, 0);
        int b = ncols > 1 ? sqlite3_column_int(st, 1) : 0;
        cb(a, b, (size_t)sqlite3_column_int64(st, ncols), data);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sqlite_err(rc);
}

int store_node_tally(struct store *s, store_tally_cb cb, void *data)
{
    return stmt_tally(s->stmt[STORE_ST_NODE_TALLY], 2, cb, data);
}

int store_task_tally(struct store *s, store_tally_cb cb, void *data)
{
    return stmt_tally(s->stmt[STORE_ST_TASK_TALLY], 1, cb, data);
}

int store_service_count(struct store *s, size_t *n)
{
    return stmt_count(s->stmt[STORE_ST_SERVICE_COUNT], n);
}

int store_task_count_from_slot(struct store *s, const char *service_id, uint64_t slot, size_t *n)
{
    sqlite3_stmt *st = s->stmt[STORE_ST_TASK_COUNT_FROM_SLOT];
    int rc = sqlite3_bind_text(st, 1, service_id != NULL ? service_id : "", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        /* Slots are at most SPEC_MAX_REPLICAS: an int64 holds any of them. */
        rc = sqlite3_bind_int64(st, 2, slot > INT64_MAX ? INT64_MAX : (sqlite3_int64)slot);
    }
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        return store_sqlite_err(rc);
    }
    return stmt_count(st, n);
}
