#include "grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "vec.h"

int grpc_buf_append(struct grpc_buf *b, const void *data, size_t len)
{
    if (len > SIZE_MAX - b->len || vec_grow(b->data, b->cap, b->len + len) != 0) {
        return SWARM_ENOMEM;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    return 0;
}

void grpc_buf_compact(struct grpc_buf *b)
{
    if (b->off == 0) {
        return;
    }
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

void grpc_buf_free(struct grpc_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int grpc_frame_pack(struct grpc_buf *b, const ProtobufCMessage *msg,
                    size_t max_msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > max_msg || n > UINT32_MAX) {
        return SWARM_EINVAL;
    }
    uint8_t prefix[GRPC_PREFIX_LEN] = {0, (uint8_t)(n >> 24),
                                       (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                                       (uint8_t)n};
    /* Reserve prefix + body in one append, then pack in place. */
    size_t start = b->len;
    if (vec_grow(b->data, b->cap, b->len + GRPC_PREFIX_LEN + n) != 0) {
        return SWARM_ENOMEM;
    }
    memcpy(b->data + start, prefix, GRPC_PREFIX_LEN);
    b->len = start + GRPC_PREFIX_LEN;
    protobuf_c_message_pack(msg, b->data + b->len);
    b->len += n;
    return 0;
}

enum grpc_frame_result grpc_frame_next(struct grpc_buf *b, size_t max_msg,
                                       const uint8_t **msg, size_t *len)
{
    size_t avail = b->len - b->off;
    if (avail < GRPC_PREFIX_LEN) {
        return GRPC_FRAME_NEED_MORE;
    }
    const uint8_t *p = b->data + b->off;
    if (p[0] != 0) {
        return GRPC_FRAME_COMPRESSED;
    }
    uint32_t n = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                 ((uint32_t)p[3] << 8) | p[4];
    if (n > max_msg) {
        return GRPC_FRAME_TOO_LARGE;
    }
    if (avail - GRPC_PREFIX_LEN < n) {
        return GRPC_FRAME_NEED_MORE;
    }
    *msg = p + GRPC_PREFIX_LEN;
    *len = n;
    b->off += GRPC_PREFIX_LEN + n;
    return GRPC_FRAME_OK;
}

int grpc_timeout_parse(const char *value, uint64_t *ms)
{
    size_t n = strlen(value);
    if (n < 2 || n > 9) {
        return SWARM_EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (value[i] < '0' || value[i] > '9') {
            return SWARM_EINVAL;
        }
        v = v * 10 + (uint64_t)(value[i] - '0');
    }
    switch (value[n - 1]) {
    case 'H': v *= 3600 * 1000; break;
    case 'M': v *= 60 * 1000; break;
    case 'S': v *= 1000; break;
    case 'm': break;
    case 'u': v = (v + 999) / 1000; break;
    case 'n': v = (v + 999999) / 1000000; break;
    default: return SWARM_EINVAL;
    }
    *ms = v ? v : 1;
    return 0;
}

void grpc_timeout_format(uint64_t ms, char out[16])
{
    static const struct {
        char unit;
        uint64_t div;
    } units[] = {{'m', 1}, {'S', 1000}, {'M', 60000}, {'H', 3600000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        /* Round up so the server never sees a shorter deadline. */
        uint64_t v = (ms + units[i].div - 1) / units[i].div;
        if (v <= 99999999) {
            snprintf(out, 16, "%llu%c", (unsigned long long)v, units[i].unit);
            return;
        }
    }
    snprintf(out, 16, "99999999H");
}

void grpc_message_encode(const char *in, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (out_size == 0) {
        return;
    }
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (o + 1 >= out_size) {
                break;
            }
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= out_size) {
                break;
            }
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void grpc_message_decode(const char *in, size_t len, char *out,
                         size_t out_size)
{
    size_t o = 0;
    if (out_size == 0) {
        return;
    }
    for (size_t i = 0; i < len && o + 1 < out_size; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len &&
            (hi = hexval(in[i + 1])) >= 0 && (lo = hexval(in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

const char *grpc_status_name_int(int status)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
        "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    };
    if (status < 0 || status >= (int)(sizeof names / sizeof names[0])) {
        return "UNKNOWN";
    }
    return names[status];
}

const char *api_status_name(enum api_status status)
{
    return grpc_status_name_int((int)status);
}

/* ------------------------------------------------------- unknown fields */

#define GRPC_NESTING_MAX 64

static int pb_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) {
            return SWARM_EINVAL;
        }
        uint8_t b = p[(*pos)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            return 0;
        }
    }
    return SWARM_EINVAL;
}

static int unknown_walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                        size_t len, size_t limit, size_t *count, int depth)
{
    size_t pos = 0;
    uint64_t tag, v;
    if (depth > GRPC_NESTING_MAX) {
        return SWARM_EINVAL;
    }
    while (pos < len && *count <= limit) {
        if (pb_varint(p, len, &pos, &tag) != 0 || tag >> 3 == 0 || tag >> 3 > UINT32_MAX) {
            return SWARM_EINVAL;
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
        if (f == NULL) {
            (*count)++;
        }
        switch (tag & 7) {
        case 0:
            if (pb_varint(p, len, &pos, &v) != 0) {
                return SWARM_EINVAL;
            }
            break;
        case 1:
        case 5: {
            size_t n = (tag & 7) == 1 ? 8 : 4;
            if (len - pos < n) {
                return SWARM_EINVAL;
            }
            pos += n;
            break;
        }
        case 2:
            if (pb_varint(p, len, &pos, &v) != 0 || v > len - pos) {
                return SWARM_EINVAL;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                unknown_walk(f->descriptor, p + pos, (size_t)v, limit, count,
                             depth + 1) != 0) {
                return SWARM_EINVAL;
            }
            pos += (size_t)v;
            break;
        default: /* groups: protobuf-c refuses them anyway */
            return SWARM_EINVAL;
        }
    }
    return 0;
}

int grpc_unknown_fields(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                        size_t len, size_t limit, size_t *count)
{
    *count = 0;
    return unknown_walk(desc, data, len, limit, count, 0);
}
static const char *const forwarded_roles[] = {"anonymous", "worker", "manager", "local"};

void api_peer_format_forwarded(const struct api_peer *origin, char *out, size_t size)
{
    const char *role = "anonymous";
    for (unsigned i = 0; i < 4; i++) {
        if (origin->role == (enum api_role)(1u << i)) {
            role = forwarded_roles[i];
        }
    }
    snprintf(out, size, "%s;%s;%s;%s", role, origin->node_id, origin->cluster_id, origin->addr);
}

/* Copy the field up to `sep` (or the end) into out; false if too long. */
static bool forwarded_field(const char **p, char sep, char *out, size_t size)
{
    const char *end = sep != '\0' ? strchr(*p, sep) : *p + strlen(*p);
    if (end == NULL || (size_t)(end - *p) >= size) {
        return false;
    }
    for (const char *c = *p; c < end; c++) {
        if (*c <= 0x20 || *c >= 0x7f || *c == ';') {
            return false;
        }
    }
    memcpy(out, *p, (size_t)(end - *p));
    out[end - *p] = '\0';
    *p = sep != '\0' ? end + 1 : end;
    return true;
}

int api_peer_parse_forwarded(const char *value, struct api_peer *out)
{
    char role[16];
    const char *p = value;
    memset(out, 0, sizeof *out);
    if (!forwarded_field(&p, ';', role, sizeof role) ||
        !forwarded_field(&p, ';', out->node_id, sizeof out->node_id) ||
        !forwarded_field(&p, ';', out->cluster_id, sizeof out->cluster_id) ||
        !forwarded_field(&p, '\0', out->addr, sizeof out->addr)) {
        return SWARM_EINVAL;
    }
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(role, forwarded_roles[i]) == 0) {
            out->role = (enum api_role)(1u << i);
        }
    }
    if (out->role == 0 ||
        ((out->role == API_ROLE_WORKER || out->role == API_ROLE_MANAGER) &&
         (out->node_id[0] == '\0' || out->cluster_id[0] == '\0'))) {
        return SWARM_EINVAL;
    }
    return 0;
}
