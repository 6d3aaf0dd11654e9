/* See wire.h. The stream is cut into sections (preamble, header, payload);
 * in each, the fields that matter (the entry count, each entry record, a
 * configuration, the snapshot length...) are collected and checked as their
 * last byte arrives, everything else is only counted. */
#include "wire.h"

#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "vec.h"

enum { W_PREAMBLE, W_HEADER, W_PAYLOAD, W_FAILED };

enum {
    F_NONE,      /* nothing more of interest in this section */
    F_PREAMBLE,  /* type + header length */
    F_N,         /* append entries: number of entries */
    F_ENTRY,     /* append entries: one entry record */
    F_CONF_LEN,  /* install snapshot: configuration length */
    F_CONF,      /* install snapshot: configuration */
    F_DATA_LEN,  /* install snapshot: data length */
    F_CHANGE,    /* payload: a configuration-change entry */
};

#define PREAMBLE_LEN 16
#define AE_FIXED 48     /* 0.15 counts a leader id it never writes */
#define AE_N_OFF 32
#define AE_ENTRIES_OFF 40
#define IS_FIXED 56
#define IS_CONF_LEN_OFF 32
#define IS_CONF_OFF 40
#define CONF_MIN 9      /* format byte + server count */
#define CONF_SERVERS_MAX 4096

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

void rwire_init(struct rwire *w)
{
    memset(w, 0, offsetof(struct rwire, conf));
    w->state = W_PREAMBLE;
    w->field_kind = F_PREAMBLE;
    w->field_len = PREAMBLE_LEN;
}

void rwire_close(struct rwire *w)
{
    free(w->changes);
    w->changes = NULL;
    w->n_changes = w->cap_changes = 0;
}

static void want(struct rwire *w, int kind, uint64_t start, uint32_t len)
{
    w->field_kind = kind;
    w->field_start = start;
    w->field_len = len;
    w->got = 0;
}

static int fail(struct rwire *w, char *errmsg, const char *what, unsigned long long v)
{
    w->state = W_FAILED;
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft message %llu: %s (%llu)",
                  (unsigned long long)w->messages + 1, what, v);
    return SWARM_EPROTO;
}

int rwire_conf_check(const uint8_t *buf, size_t len, char *errmsg)
{
    size_t pos = CONF_MIN;
    if (len < CONF_MIN || buf[0] != 1) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "configuration: bad format");
        return SWARM_EPROTO;
    }
    uint64_t n = get_le64(buf + 1);
    if (n == 0 || n > CONF_SERVERS_MAX) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "configuration: %llu servers",
                      (unsigned long long)n);
        return SWARM_EPROTO;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (len - pos < 8 || get_le64(buf + pos) == 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "configuration: server %llu: bad id",
                          (unsigned long long)i);
            return SWARM_EPROTO;
        }
        pos += 8;
        const uint8_t *nul = memchr(buf + pos, 0, len - pos);
        if (nul == NULL || nul == buf + pos) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "configuration: server %llu: bad address",
                          (unsigned long long)i);
            return SWARM_EPROTO;
        }
        pos = (size_t)(nul - buf) + 1;
        if (pos >= len || buf[pos] > RAFT_SPARE) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "configuration: server %llu: bad role",
                          (unsigned long long)i);
            return SWARM_EPROTO;
        }
        pos++;
    }
    return 0;
}

static int preamble_done(struct rwire *w, char *errmsg)
{
    uint64_t type = get_le64(w->scratch);
    uint64_t h = get_le64(w->scratch + 8);
    bool ok;
    w->type = type;
    w->hlen = h;
    switch (type) {
    case RAFT_IO_APPEND_ENTRIES:
        ok = h >= AE_FIXED && (h - AE_FIXED) % 16 == 0 &&
             (h - AE_FIXED) / 16 <= RWIRE_ENTRIES_MAX;
        break;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
    case RAFT_IO_TIMEOUT_NOW:
        ok = h == 24;
        break;
    case RAFT_IO_REQUEST_VOTE:
        ok = h == 32 || h == 40;
        break;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        ok = h == 16 || h == 24;
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        ok = h >= IS_FIXED + CONF_MIN && h - IS_FIXED <= RWIRE_CONF_MAX;
        break;
    default:
        return fail(w, errmsg, "unknown message type", type);
    }
    if (!ok) {
        return fail(w, errmsg, "bad header length", h);
    }
    w->state = W_HEADER;
    w->off = 0;
    w->payload = 0;
    w->n_entries = w->entry_i = 0;
    w->unaligned_seen = false;
    w->n_changes = w->change_i = 0;
    if (type == RAFT_IO_APPEND_ENTRIES) {
        want(w, F_N, AE_N_OFF, 8);
    } else if (type == RAFT_IO_INSTALL_SNAPSHOT) {
        want(w, F_CONF_LEN, IS_CONF_LEN_OFF, 8);
    } else {
        want(w, F_NONE, 0, 0);
    }
    return 0;
}

static int change_add(struct rwire *w, uint64_t off, uint32_t len)
{
    if (vec_grow(w->changes, w->cap_changes, w->n_changes + 1) != 0) {
        return SWARM_ENOMEM;
    }
    w->changes[w->n_changes].off = off;
    w->changes[w->n_changes].len = len;
    w->n_changes++;
    return 0;
}

static int entry_done(struct rwire *w, char *errmsg)
{
    uint8_t type = w->scratch[8];
    uint32_t len = get_le32(w->scratch + 12);
    if (type != RAFT_COMMAND && type != RAFT_BARRIER && type != RAFT_CHANGE) {
        return fail(w, errmsg, "bad entry type", type);
    }
    if (w->unaligned_seen) {
        /* raft pads every entry but the last to 8 bytes when it decodes */
        return fail(w, errmsg, "entry before the last not 8-byte aligned",
                    w->entry_i - 1);
    }
    if (len > RWIRE_ENTRY_MAX) {
        return fail(w, errmsg, "entry too large", len);
    }
    if (type == RAFT_CHANGE) {
        if (len < CONF_MIN || len > RWIRE_CONF_MAX) {
            return fail(w, errmsg, "bad configuration entry length", len);
        }
        if (change_add(w, w->payload, len) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
            w->state = W_FAILED;
            return SWARM_ENOMEM;
        }
    }
    w->unaligned_seen = len % 8 != 0;
    w->payload += len;
    if (w->payload > RWIRE_PAYLOAD_MAX) {
        return fail(w, errmsg, "entries too large", w->payload);
    }
    w->entry_i++;
    if (w->entry_i < w->n_entries) {
        want(w, F_ENTRY, AE_ENTRIES_OFF + 16 * w->entry_i, 16);
    } else {
        want(w, F_NONE, 0, 0);
    }
    return 0;
}

static int field_done(struct rwire *w, char *errmsg)
{
    uint64_t v;
    int rv;
    switch (w->field_kind) {
    case F_PREAMBLE:
        return preamble_done(w, errmsg);
    case F_N:
        v = get_le64(w->scratch);
        if (v != (w->hlen - AE_FIXED) / 16) {
            return fail(w, errmsg, "entry count does not match the header length", v);
        }
        w->n_entries = v;
        if (v > 0) {
            want(w, F_ENTRY, AE_ENTRIES_OFF, 16);
        } else {
            want(w, F_NONE, 0, 0);
        }
        return 0;
    case F_ENTRY:
        return entry_done(w, errmsg);
    case F_CONF_LEN:
        v = get_le64(w->scratch);
        if (v != w->hlen - IS_FIXED) {
            return fail(w, errmsg, "configuration length does not match the header", v);
        }
        w->conf_len = v;
        want(w, F_CONF, IS_CONF_OFF, (uint32_t)v);
        return 0;
    case F_CONF:
        rv = rwire_conf_check(w->conf, w->conf_len, errmsg);
        if (rv != 0) {
            w->state = W_FAILED;
            return rv;
        }
        want(w, F_DATA_LEN, IS_CONF_OFF + w->conf_len, 8);
        return 0;
    case F_DATA_LEN:
        v = get_le64(w->scratch);
        if (v == 0 || v > RWIRE_PAYLOAD_MAX) {
            return fail(w, errmsg, "bad snapshot length", v);
        }
        w->payload = v;
        want(w, F_NONE, 0, 0);
        return 0;
    case F_CHANGE:
        rv = rwire_conf_check(w->conf, w->field_len, errmsg);
        if (rv != 0) {
            w->state = W_FAILED;
            return rv;
        }
        w->change_i++;
        if (w->change_i < w->n_changes) {
            want(w, F_CHANGE, w->changes[w->change_i].off, w->changes[w->change_i].len);
        } else {
            want(w, F_NONE, 0, 0);
        }
        return 0;
    }
    return 0;
}

static void message_done(struct rwire *w)
{
    w->messages++;
    w->state = W_PREAMBLE;
    w->off = 0;
    want(w, F_PREAMBLE, 0, PREAMBLE_LEN);
}

/* The current section is complete. */
static void section_done(struct rwire *w)
{
    if (w->state == W_PREAMBLE) {
        return; /* preamble_done moved on to the header */
    }
    if (w->state == W_HEADER && w->payload > 0) {
        w->state = W_PAYLOAD;
        w->off = 0;
        if (w->n_changes > 0) {
            want(w, F_CHANGE, w->changes[0].off, w->changes[0].len);
        } else {
            want(w, F_NONE, 0, 0);
        }
        return;
    }
    message_done(w);
}

static uint64_t section_len(const struct rwire *w)
{
    switch (w->state) {
    case W_PREAMBLE: return PREAMBLE_LEN;
    case W_HEADER: return w->hlen;
    default: return w->payload;
    }
}

int rwire_feed(struct rwire *w, const uint8_t *buf, size_t len, char *errmsg)
{
    size_t pos = 0;
    if (w->state == W_FAILED) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft stream already rejected");
        return SWARM_EPROTO;
    }
    while (pos < len) {
        uint64_t end = section_len(w);
        size_t n;
        if (w->field_kind == F_NONE || w->off < w->field_start) {
            uint64_t stop = w->field_kind == F_NONE ? end : w->field_start;
            n = stop - w->off < len - pos ? (size_t)(stop - w->off) : len - pos;
            w->off += n;
            pos += n;
        } else {
            uint8_t *dst = w->field_kind == F_CONF || w->field_kind == F_CHANGE
                               ? w->conf
                               : w->scratch;
            n = w->field_len - w->got < len - pos ? w->field_len - w->got : len - pos;
            memcpy(dst + w->got, buf + pos, n);
            w->got += (uint32_t)n;
            w->off += n;
            pos += n;
            if (w->got == w->field_len) {
                int rv = field_done(w, errmsg);
                if (rv != 0) {
                    return rv;
                }
            }
        }
        /* A message without payload ends with its header; a state change in
         * field_done (preamble -> header) resets off, so this sees the new
         * section's length. */
        if (w->state != W_PREAMBLE && w->off == section_len(w)) {
            section_done(w);
        }
    }
    return 0;
}
