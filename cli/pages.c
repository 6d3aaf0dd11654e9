/* See pages.h. */
#include "pages.h"

#include <stdlib.h>
#include <string.h>

static const ProtobufCFieldDescriptor *pages_string_field(const ProtobufCMessageDescriptor *d,
                                                          const char *name)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED) {
        return NULL;
    }
    return f;
}

const char *cli_pages_token(const ProtobufCMessage *resp)
{
    const ProtobufCFieldDescriptor *f = pages_string_field(resp->descriptor, "next_page_token");
    const char *tok;
    if (f == NULL) {
        return NULL;
    }
    tok = *(const char *const *)((const char *)resp + f->offset);
    return tok != NULL && tok[0] != '\0' ? tok : NULL;
}

ProtobufCMessage *cli_pages_request(const ProtobufCMessage *req, const char *token)
{
    const ProtobufCFieldDescriptor *f = pages_string_field(req->descriptor, "page_token");
    char *copy;
    if (f == NULL || (copy = malloc(req->descriptor->sizeof_message)) == NULL) {
        return NULL;
    }
    memcpy(copy, req, req->descriptor->sizeof_message);
    *(const char **)(copy + f->offset) = token;
    return (ProtobufCMessage *)copy;
}

static size_t pages_elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4; /* 32-bit integers, floats, enums */
    }
}

int cli_pages_merge(ProtobufCMessage *acc, ProtobufCMessage *page)
{
    const ProtobufCMessageDescriptor *d = acc->descriptor;
    char *a = (char *)acc, *p = (char *)page;
    /* Grow every array first, so that a failure moves nothing. */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t na, np, es = pages_elem_size(f);
        void **arr;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            continue;
        }
        na = *(size_t *)(a + f->quantifier_offset);
        np = *(size_t *)(p + f->quantifier_offset);
        arr = (void **)(a + f->offset);
        if (np == 0) {
            continue;
        }
        void *grown = realloc(*arr, (na + np) * es);
        if (grown == NULL) {
            return -1;
        }
        *arr = grown;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t *na, *np, es = pages_elem_size(f);
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            continue;
        }
        na = (size_t *)(a + f->quantifier_offset);
        np = (size_t *)(p + f->quantifier_offset);
        if (*np == 0) {
            continue;
        }
        memcpy(*(char **)(a + f->offset) + *na * es, *(char **)(p + f->offset), *np * es);
        *na += *np;
        *np = 0;
    }
    const ProtobufCFieldDescriptor *t = pages_string_field(d, "next_page_token");
    if (t != NULL) { /* swap: acc says what the last page said */
        char **ta = (char **)(a + t->offset), **tp = (char **)(p + t->offset);
        char *tmp = *ta;
        *ta = *tp;
        *tp = tmp;
    }
    return 0;
}
