/* Internals of the store module, shared by store.c (open, apply, snapshot),
 * schema.c (tables, statements, row columns) and read.c (gets, finds, lists).
 * Not for use outside store/. */
#ifndef SWARM_STORE_INT_H
#define SWARM_STORE_INT_H

#include <sqlite3.h>

#include "err.h"
#include "store.h"

/* Bumped whenever a table or index changes: a store written by another
 * schema is refused at open and a snapshot of another schema at restore. */
#define STORE_SCHEMA_VERSION 3

#define STORE_KIND_MAX STORE_KIND_NETWORK

/* Statements every kind has, cached per kind. Parameter ?1 is always the ID;
 * INSERT and UPDATE bind the same parameters (see store_row_bind). */
enum store_kstmt {
    STORE_KS_INSERT, /* ?1 id, ?2 version, ?3 created_at, ?4 data, ?5.. columns */
    STORE_KS_UPDATE, /* same parameters as INSERT */
    STORE_KS_DELETE, /* ?1 id */
    STORE_KS_LOOKUP, /* ?1 id -> version, created_at, data */
    STORE_KS_GET,    /* ?1 id -> data */
    STORE_KS_LIST,   /* -> data, in the list order of store.h */
    STORE_KS_PREFIX, /* ?1 prefix -> data, id; IDs starting with ?1 */
    STORE_KS__COUNT,
};

/* Statements of one kind or of the store as a whole. */
enum store_stmt {
    STORE_ST_BEGIN,
    STORE_ST_COMMIT,
    STORE_ST_ROLLBACK,
    STORE_ST_SET_INDEX,        /* ?1 last applied index */
    STORE_ST_GET_INDEX,        /* -> last applied index */
    STORE_ST_NODE_BY_NAME,     /* ?1 name -> data: spec name or hostname */
    STORE_ST_NODE_COUNT,       /* -> count */
    STORE_ST_SERVICE_BY_NAME,  /* ?1 name -> data */
    STORE_ST_TASK_BY_SERVICE,  /* ?1 service id -> data */
    STORE_ST_TASK_BY_NODE,     /* ?1 node id -> data */
    STORE_ST_TASK_COUNT_BY_STATE,  /* ?1 service id, ?2 desired, ?3 state (< 0: any) -> count */
    STORE_ST_TASK_COUNT_FROM_SLOT, /* ?1 service id, ?2 slot -> count of slot >= ?2 */
    STORE_ST_CLUSTER_DEFAULT,  /* -> data of the oldest cluster */
    STORE_ST_NODE_TALLY,       /* -> state, availability, count */
    STORE_ST_TASK_TALLY,       /* -> state, count */
    STORE_ST_SERVICE_COUNT,    /* -> count */
    STORE_ST_EVENT_INSERT,     /* ?1 index, ?2 position, ?3 time ms, ?4 data */
    STORE_ST_EVENT_PRUNE,      /* ?1 delete seq <= ?1 */
    STORE_ST_EVENT_LIST,       /* ?1 index, ?2 position (after), ?3 since ms, ?4 limit -> data */
    STORE_ST_NETWORK_BY_NAME,  /* ?1 name -> data */
    STORE_ST_TASK_UNPLACED,    /* -> data of tasks new or pending, desired to run */
    STORE_ST__COUNT,
};

struct store {
    sqlite3 *db;
    uint64_t last_index; /* cache of meta.last_index, kept in step with it */
    store_event_cb event_cb;
    void *event_data;
    sqlite3_stmt *kstmt[STORE_KIND_MAX + 1][STORE_KS__COUNT];
    sqlite3_stmt *stmt[STORE_ST__COUNT];
    uint8_t *packbuf; /* reused encoding buffer for store_apply */
    size_t packcap;
    uint8_t *evbuf; /* reused encoding buffer for events */
    size_t evcap;
};

/* What differs between the kinds. All their messages start with
 * `string id = 1; Meta meta = 2;`, reached through the offsets. */
struct store_kind_info {
    enum store_kind kind;
    const char *name;  /* "node", for messages */
    const char *table; /* "nodes" */
    const ProtobufCMessageDescriptor *desc;
    size_t id_offset;
    size_t meta_offset;
};

const struct store_kind_info *store_kind_info(enum store_kind kind);

static inline const char *store_obj_id(const struct store_kind_info *ki, const ProtobufCMessage *obj)
{
    const char *id = *(char *const *)((const char *)obj + ki->id_offset);
    return id != NULL ? id : "";
}

static inline Swarm__Meta *store_obj_meta(const struct store_kind_info *ki, const ProtobufCMessage *obj)
{
    return *(Swarm__Meta *const *)((const char *)obj + ki->meta_offset);
}

/* schema.c: create the schema in a new database, or check an existing one
 * (schema version, meta rows). Both leave *last_index set. */
int store_schema_init(sqlite3 *db, uint64_t *last_index, char *errmsg);
int store_schema_check(sqlite3 *db, uint64_t *last_index, char *errmsg);

/* schema.c: prepare / finalize every cached statement of s. */
int store_stmts_prepare(struct store *s, char *errmsg);
void store_stmts_finalize(struct store *s);

/* schema.c: bind the parameters of STORE_KS_INSERT / STORE_KS_UPDATE for obj
 * (whose meta has been stamped already); `data`, `len` are its encoding,
 * bound without copy: keep them alive until the statement is reset. */
int store_row_bind(sqlite3_stmt *st, const struct store_kind_info *ki, const ProtobufCMessage *obj,
                   const uint8_t *data, size_t len);

/* events.c: write one event of the entry at `index` (in the open
 * transaction), and drop the events beyond STORE_EVENTS_WINDOW. Return a
 * SQLite result code. */
int store_events_insert(struct store *s, uint64_t index, uint32_t position, int64_t ts_ms,
                        const struct store_evdesc *d);
int store_events_prune(struct store *s);

/* Translate a SQLite result code at the boundary. */
static inline int store_sqlite_err(int rc)
{
    return (rc & 0xff) == SQLITE_NOMEM ? SWARM_ENOMEM : SWARM_ESQL;
}

#endif
