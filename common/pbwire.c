/* See pbwire.h. Walks the wire format (tag, wire type, value) with the
 * message descriptor: only length-delimited values matter; strings are
 * searched for NUL, messages are walked. */
#include "pbwire.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

#define PBWIRE_MAX_DEPTH 32

/* A varint at *p (< end); 0 and *p advanced, or -1 when malformed. */
static int pbwire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            return 0;
        }
    }
    return -1;
}

static void pbwire_path_push(char *path, size_t size, const char *name)
{
    size_t n = strlen(path);
    snprintf(path + n, size > n ? size - n : 0, "%s%s", n > 0 ? "." : "", name);
}

static int pbwire_walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                       const uint8_t *end, int depth, char *path, size_t size)
{
    size_t mark = strlen(path);
    while (p < end) {
        uint64_t tag, len;
        if (pbwire_varint(&p, end, &tag) != 0) {
            return 0;
        }
        switch (tag & 7) {
            case 0:
                if (pbwire_varint(&p, end, &len) != 0) {
                    return 0;
                }
                continue;
            case 1:
                if (end - p < 8) {
                    return 0;
                }
                p += 8;
                continue;
            case 5:
                if (end - p < 4) {
                    return 0;
                }
                p += 4;
                continue;
            case 2:
                break;
            default:
                return 0; /* groups: protobuf-c refuses them for proto3 */
        }
        if (pbwire_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p)) {
            return 0;
        }
        const ProtobufCFieldDescriptor *f =
            tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3))
                                   : NULL;
        if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, len) != NULL) {
            pbwire_path_push(path, size, f->name);
            return SWARM_EINVAL;
        }
        if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < PBWIRE_MAX_DEPTH) {
            pbwire_path_push(path, size, f->name);
            if (pbwire_walk(f->descriptor, p, p + len, depth + 1, path, size) != 0) {
                return SWARM_EINVAL;
            }
            path[mark < size ? mark : 0] = '\0';
        }
        p += len;
    }
    return 0;
}

int pb_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                     char *path, size_t size)
{
    if (size > 0) {
        path[0] = '\0';
    }
    if (desc == NULL || buf == NULL || size == 0) {
        return 0;
    }
    return pbwire_walk(desc, buf, buf + len, 0, path, size);
}
