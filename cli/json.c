/* Descriptor-driven JSON for `inspect`; see json.h for the mapping. Docker
 * users pipe inspect output into jq and read it in bug reports, so it must be
 * valid JSON (escaping, UTF-8) and use the names they know. */
#include "json.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

/* Go's lint initialisms (the names Docker's API types use) plus the ones
 * Swarm adds. */
static const char *const cli_json_initialisms[] = {
    "acl", "api", "ascii", "ca", "cpu", "css", "dns", "eof", "guid", "html",
    "http", "https", "id", "ip", "json", "os", "pem", "qps", "ram", "rpc",
    "sla", "smtp", "sql", "ssh", "tcp", "tls", "ttl", "udp", "ui", "uid",
    "uuid", "uri", "url", "utf8", "vm", "xml", "xsrf", "xss",
};

static bool cli_json_is_initialism(const char *w, size_t len)
{
    for (size_t i = 0; i < sizeof cli_json_initialisms / sizeof *cli_json_initialisms; i++) {
        if (strlen(cli_json_initialisms[i]) == len &&
            strncmp(cli_json_initialisms[i], w, len) == 0) {
            return true;
        }
    }
    return false;
}

void cli_json_field_name(const char *proto_name, char *buf, size_t size)
{
    size_t o = 0;
    const char *w = proto_name;
    if (size == 0) {
        return;
    }
    while (*w != '\0' && o + 1 < size) {
        size_t len = strcspn(w, "_");
        bool upper = cli_json_is_initialism(w, len);
        bool plural = !upper && len > 1 && w[len - 1] == 's' &&
                      cli_json_is_initialism(w, len - 1); /* cpus -> CPUs */
        for (size_t i = 0; i < len && o + 1 < size; i++) {
            bool up = i == 0 || upper || (plural && i + 1 < len);
            buf[o++] = (char)(up ? toupper((unsigned char)w[i]) : w[i]);
        }
        w += len;
        while (*w == '_') {
            w++;
        }
    }
    buf[o] = '\0';
}

/* "NodeRole" -> "NODE_ROLE_": the prefix protoc style puts on enum values. */
static void cli_json_enum_prefix(const char *type, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; type[i] != '\0' && o + 3 < size; i++) {
        unsigned char c = (unsigned char)type[i];
        if (i > 0 && isupper(c) &&
            (islower((unsigned char)type[i - 1]) ||
             (isupper((unsigned char)type[i - 1]) &&
              islower((unsigned char)type[i + 1])))) {
            buf[o++] = '_';
        }
        buf[o++] = (char)toupper(c);
    }
    buf[o++] = '_';
    buf[o] = '\0';
}

void cli_json_enum_name(const ProtobufCEnumDescriptor *desc, int value,
                        char *buf, size_t size)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);
    char prefix[128];
    if (v == NULL) {
        snprintf(buf, size, "%d", value);
        return;
    }
    cli_json_enum_prefix(desc->short_name, prefix, sizeof prefix);
    const char *name = v->name;
    if (strncmp(name, prefix, strlen(prefix)) == 0 && name[strlen(prefix)] != '\0') {
        name += strlen(prefix);
    }
    snprintf(buf, size, "%s", name);
    for (char *p = buf; *p != '\0'; p++) {
        *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    }
}

/* ---------------------------------------------------------------- strings */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t cli_utf8_seq(const unsigned char *s, size_t avail)
{
    size_t n;
    uint32_t cp;
    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        n = 2, cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3, cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n > avail) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return n;
}

void cli_json_print_string(FILE *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = cli_utf8_seq(s + i, len - i);
        if (n == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        if (n > 1) {
            fwrite(s + i, 1, n, out);
        } else if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c == '\r') {
            fputs("\\r", out);
        } else if (c == '\t') {
            fputs("\\t", out);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
        i += n;
    }
    fputc('"', out);
}

void cli_print_base64(FILE *out, const uint8_t *data, size_t len)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        v |= i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0;
        v |= i + 2 < len ? data[i + 2] : 0;
        fputc(tbl[v >> 18 & 63], out);
        fputc(tbl[v >> 12 & 63], out);
        fputc(i + 1 < len ? tbl[v >> 6 & 63] : '=', out);
        fputc(i + 2 < len ? tbl[v & 63] : '=', out);
    }
}

static void cli_json_print_base64(FILE *out, const uint8_t *data, size_t len)
{
    fputc('"', out);
    cli_print_base64(out, data, len);
    fputc('"', out);
}

static void cli_json_print_bytes(FILE *out, const ProtobufCBinaryData *b)
{
    bool text = true;
    for (size_t i = 0; i < b->len && text; i++) {
        uint8_t c = b->data[i];
        text = (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
    }
    if (text) {
        cli_json_print_string(out, (const char *)b->data, b->len);
    } else {
        cli_json_print_base64(out, b->data, b->len);
    }
}

/* --------------------------------------------------------------- messages */

/* Durations are kept in milliseconds (NAME_ms); Docker's API shows them as
 * NAME in nanoseconds ("StopGracePeriod": 10000000000). */
static bool cli_json_is_duration(const ProtobufCFieldDescriptor *f)
{
    size_t len = strlen(f->name);
    return (f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_UINT32) &&
           len > 3 && strcmp(f->name + len - 3, "_ms") == 0;
}

static int64_t cli_json_ms_to_ns(int64_t ms)
{
    if (ms > INT64_MAX / 1000000) {
        return INT64_MAX;
    }
    if (ms < INT64_MIN / 1000000) {
        return INT64_MIN;
    }
    return ms * 1000000;
}

/* The field names Docker's ServiceSpec and TaskSpec use where swarmd's
 * protobuf has shorter ones: {{.Spec.TaskTemplate.ContainerSpec.Image}}. */
static const struct {
    const char *message, *field, *docker;
} cli_json_renames[] = {
    {"ServiceSpec", "task", "TaskTemplate"},
    {"ServiceSpec", "update", "UpdateConfig"},
    {"ServiceSpec", "rollback", "RollbackConfig"},
    {"ServiceSpec", "endpoint", "EndpointSpec"},
    {"TaskSpec", "container", "ContainerSpec"},
    {"TaskSpec", "restart", "RestartPolicy"},
    {"Task", "networks", "NetworksAttachments"},
};

/* The name Docker gives a field where it is not the mechanical one. */
static void cli_json_docker_name(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                                 char *name, size_t size)
{
    for (size_t i = 0; i < sizeof cli_json_renames / sizeof *cli_json_renames; i++) {
        if (strcmp(d->short_name, cli_json_renames[i].message) == 0 &&
            strcmp(f->name, cli_json_renames[i].field) == 0) {
            snprintf(name, size, "%s", cli_json_renames[i].docker);
            return;
        }
    }
    if (cli_json_is_duration(f)) {
        char base[128];
        size_t len = strlen(f->name) - 3;
        snprintf(base, sizeof base, "%.*s", (int)len, f->name);
        cli_json_field_name(base, name, size);
    } else if (strcmp(f->name, "desired_role") == 0) {
        snprintf(name, size, "Role");
    } else if (strcmp(f->name, "cap_add") == 0 || strcmp(f->name, "cap_drop") == 0) {
        snprintf(name, size, "Capability%s", f->name[4] == 'a' ? "Add" : "Drop");
    } else if (strcmp(f->name, "readonly") == 0) {
        snprintf(name, size, "ReadOnly");
    } else if (strcmp(f->name, "virtual_ips") == 0) {
        snprintf(name, size, "VirtualIPs");
    } else {
        cli_json_field_name(f->name, name, size);
    }
}

/* A node's ingress address (the routing mesh's, Node.attachments) is shown
 * only once it has one: Docker's Node has no such field. */
static bool cli_json_hidden_empty(const ProtobufCMessageDescriptor *d,
                                  const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
    return strcmp(d->short_name, "Node") == 0 && strcmp(f->name, "attachments") == 0 &&
           *(const size_t *)((const char *)msg + f->quantifier_offset) == 0;
}

static void cli_json_indent(FILE *out, int level)
{
    fprintf(out, "%*s", level * 2, "");
}

static size_t cli_json_elem_size(ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            return 8;
        case PROTOBUF_C_TYPE_DOUBLE:
            return sizeof(double);
        case PROTOBUF_C_TYPE_BOOL:
            return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
            return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
            return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
            return sizeof(ProtobufCMessage *);
        default:
            return 4;
    }
}

static bool cli_json_is_time(const ProtobufCFieldDescriptor *f)
{
    size_t len = strlen(f->name);
    return f->type == PROTOBUF_C_TYPE_INT64 &&
           ((len > 3 && strcmp(f->name + len - 3, "_at") == 0) ||
            strcmp(f->name, "timestamp") == 0);
}

static void cli_json_print_float(FILE *out, double v, int max_prec)
{
    char buf[64];
    for (int prec = 1; prec <= max_prec; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v || prec == max_prec) {
            break;
        }
    }
    fputs(v != v ? "0" : buf, out); /* NaN is not JSON */
}

static void cli_json_print_scalar(FILE *out, const ProtobufCFieldDescriptor *f,
                                  const void *p, int indent)
{
    char buf[128];
    switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            fprintf(out, "%d", *(const int32_t *)p);
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            if (cli_json_is_duration(f)) {
                fprintf(out, "%lld", (long long)cli_json_ms_to_ns(*(const uint32_t *)p));
            } else {
                fprintf(out, "%u", *(const uint32_t *)p);
            }
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            if (cli_json_is_time(f)) {
                cli_format_rfc3339(*(const int64_t *)p, buf, sizeof buf);
                cli_json_print_string(out, buf, strlen(buf));
            } else if (cli_json_is_duration(f)) {
                fprintf(out, "%lld", (long long)cli_json_ms_to_ns(*(const int64_t *)p));
            } else {
                fprintf(out, "%lld", (long long)*(const int64_t *)p);
            }
            break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p);
            break;
        case PROTOBUF_C_TYPE_FLOAT:
            cli_json_print_float(out, *(const float *)p, 9);
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            cli_json_print_float(out, *(const double *)p, 17);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
            break;
        case PROTOBUF_C_TYPE_ENUM:
            cli_json_enum_name(f->descriptor, *(const int *)p, buf, sizeof buf);
            cli_json_print_string(out, buf, strlen(buf));
            break;
        case PROTOBUF_C_TYPE_STRING: {
            const char *s = *(char *const *)p;
            cli_json_print_string(out, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
            break;
        }
        case PROTOBUF_C_TYPE_BYTES:
            cli_json_print_bytes(out, p);
            break;
        case PROTOBUF_C_TYPE_MESSAGE:
            cli_json_print_message(out, *(ProtobufCMessage *const *)p, indent);
            break;
    }
}

/* A message with exactly the string fields key and value: Label. */
static bool cli_json_is_map_entry(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    return f->type == PROTOBUF_C_TYPE_MESSAGE && d->n_fields == 2 &&
           strcmp(d->fields[0].name, "key") == 0 &&
           strcmp(d->fields[1].name, "value") == 0 &&
           d->fields[0].type == PROTOBUF_C_TYPE_STRING &&
           d->fields[1].type == PROTOBUF_C_TYPE_STRING;
}

static void cli_json_print_map(FILE *out, ProtobufCMessage *const *entries,
                               size_t n, int indent)
{
    if (n == 0) {
        fputs("{}", out);
        return;
    }
    fputs("{\n", out);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *d = entries[i]->descriptor;
        const char *k = *(char *const *)((const char *)entries[i] + d->fields[0].offset);
        const char *v = *(char *const *)((const char *)entries[i] + d->fields[1].offset);
        k = k != NULL ? k : "";
        v = v != NULL ? v : "";
        cli_json_indent(out, indent + 1);
        cli_json_print_string(out, k, strlen(k));
        fputs(": ", out);
        cli_json_print_string(out, v, strlen(v));
        fputs(i + 1 < n ? ",\n" : "\n", out);
    }
    cli_json_indent(out, indent);
    fputc('}', out);
}

static void cli_json_print_repeated(FILE *out, const ProtobufCFieldDescriptor *f,
                                    const ProtobufCMessage *msg, int indent)
{
    size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
    const char *arr = *(char *const *)((const char *)msg + f->offset);
    if (cli_json_is_map_entry(f)) {
        cli_json_print_map(out, (ProtobufCMessage *const *)arr, n, indent);
        return;
    }
    if (n == 0) {
        fputs("[]", out);
        return;
    }
    fputs("[\n", out);
    for (size_t i = 0; i < n; i++) {
        cli_json_indent(out, indent + 1);
        cli_json_print_scalar(out, f, arr + i * cli_json_elem_size(f->type),
                              indent + 1);
        fputs(i + 1 < n ? ",\n" : "\n", out);
    }
    cli_json_indent(out, indent);
    fputc(']', out);
}

/* Absent sub-messages and unset oneof members are left out. */
static bool cli_json_field_present(const ProtobufCFieldDescriptor *f,
                                   const ProtobufCMessage *msg)
{
    const char *base = (const char *)msg;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    }
    if (f->label != PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        return *(ProtobufCMessage *const *)(base + f->offset) != NULL;
    }
    return true;
}

static void cli_json_key(FILE *out, bool *first, int indent, const char *name)
{
    fputs(*first ? "{\n" : ",\n", out);
    *first = false;
    cli_json_indent(out, indent + 1);
    fprintf(out, "\"%s\": ", name);
}

/* Docker's inspect shape, not the raw protobuf one: Meta's fields sit on the
 * object itself ("Version": {"Index": N}, "CreatedAt", "UpdatedAt"), and
 * Annotations' (Name, Labels) on the spec that holds them. */
static bool cli_json_is_hoisted(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
           (strcmp(f->name, "meta") == 0 || strcmp(f->name, "annotations") == 0);
}

static void cli_json_emit_fields(FILE *out, const ProtobufCMessage *msg, int indent,
                                 bool *first)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    char name[128];
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *field = (const char *)msg + f->offset;
        if (!cli_json_field_present(f, msg)) {
            continue;
        }
        if (cli_json_is_hoisted(f)) {
            cli_json_emit_fields(out, *(ProtobufCMessage *const *)field, indent, first);
            continue;
        }
        if (strcmp(d->short_name, "Meta") == 0 && strcmp(f->name, "version") == 0) {
            cli_json_key(out, first, indent, "Version");
            fprintf(out, "{\n");
            cli_json_indent(out, indent + 2);
            fprintf(out, "\"Index\": %llu\n", (unsigned long long)*(const uint64_t *)field);
            cli_json_indent(out, indent + 1);
            fputc('}', out);
            continue;
        }
        /* Empty strings are left out, as Docker's omitempty does. */
        if (f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED &&
            (*(char *const *)field == NULL || **(char *const *)field == '\0')) {
            continue;
        }
        /* Docker nests the service mode: "Mode": {"Replicated": {...}}. */
        if (strcmp(d->short_name, "ServiceSpec") == 0 &&
            (strcmp(f->name, "replicated") == 0 || strcmp(f->name, "global") == 0)) {
            cli_json_key(out, first, indent, "Mode");
            fprintf(out, "{\n");
            cli_json_indent(out, indent + 2);
            fprintf(out, "\"%s\": ", f->name[0] == 'r' ? "Replicated" : "Global");
            cli_json_print_scalar(out, f, field, indent + 2);
            fputc('\n', out);
            cli_json_indent(out, indent + 1);
            fputc('}', out);
            continue;
        }
        if (strcmp(f->name, "registry_auth") == 0) {
            continue; /* never shown, as Docker's API does not */
        }
        if (cli_json_hidden_empty(d, f, msg)) {
            continue;
        }
        cli_json_docker_name(d, f, name, sizeof name);
        cli_json_key(out, first, indent, name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            cli_json_print_repeated(out, f, msg, indent + 1);
        } else {
            cli_json_print_scalar(out, f, field, indent + 1);
        }
    }
}

void cli_json_print_message(FILE *out, const ProtobufCMessage *msg, int indent)
{
    bool first = true;
    cli_json_emit_fields(out, msg, indent, &first);
    if (first) {
        fputs("{}", out);
        return;
    }
    fputc('\n', out);
    cli_json_indent(out, indent);
    fputc('}', out);
}

void cli_json_print_array(FILE *out, const ProtobufCMessage *const *msgs,
                          size_t n)
{
    if (n == 0) {
        fputs("[]\n", out);
        return;
    }
    fputs("[\n", out);
    for (size_t i = 0; i < n; i++) {
        cli_json_indent(out, 1);
        cli_json_print_message(out, msgs[i], 1);
        fputs(i + 1 < n ? ",\n" : "\n", out);
    }
    fputs("]\n", out);
}

/* ------------------------------------------------- the template data model */

/* The same shape as the JSON above, as values for --format templates:
 * objects are Go maps in field order (Docker's raw inspect fallback), empty
 * strings are kept but omitempty so {{json .}} matches inspect. */
static struct tmpl_value *cli_json_scalar_value(const ProtobufCFieldDescriptor *f,
                                                const void *p)
{
    char buf[128];
    switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            return tmpl_value_int(*(const int32_t *)p);
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            if (cli_json_is_duration(f)) {
                struct tmpl_value *d = tmpl_value_int(cli_json_ms_to_ns(*(const uint32_t *)p));
                d->is_duration = true;
                return d;
            }
            return tmpl_value_int(*(const uint32_t *)p);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            if (cli_json_is_time(f)) {
                cli_format_rfc3339(*(const int64_t *)p, buf, sizeof buf);
                return tmpl_value_string(buf);
            }
            if (cli_json_is_duration(f)) {
                struct tmpl_value *d = tmpl_value_int(cli_json_ms_to_ns(*(const int64_t *)p));
                d->is_duration = true;
                return d;
            }
            return tmpl_value_int(*(const int64_t *)p);
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            return tmpl_value_uint(*(const uint64_t *)p);
        case PROTOBUF_C_TYPE_FLOAT:
            return tmpl_value_float(*(const float *)p);
        case PROTOBUF_C_TYPE_DOUBLE:
            return tmpl_value_float(*(const double *)p);
        case PROTOBUF_C_TYPE_BOOL:
            return tmpl_value_bool(*(const protobuf_c_boolean *)p);
        case PROTOBUF_C_TYPE_ENUM:
            cli_json_enum_name(f->descriptor, *(const int *)p, buf, sizeof buf);
            return tmpl_value_string(buf);
        case PROTOBUF_C_TYPE_STRING:
            return tmpl_value_string(*(char *const *)p);
        case PROTOBUF_C_TYPE_BYTES: {
            const ProtobufCBinaryData *b = p;
            bool text = memchr(b->data, '\0', b->len) == NULL;
            for (size_t i = 0; i < b->len && text; i++) {
                uint8_t c = b->data[i];
                text = (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
            }
            char *s = NULL;
            size_t len = 0;
            FILE *mem = open_memstream(&s, &len);
            if (mem == NULL) {
                cli_oom();
            }
            if (text) {
                fwrite(b->data, 1, b->len, mem);
            } else {
                cli_print_base64(mem, b->data, b->len);
            }
            fclose(mem);
            struct tmpl_value *v = tmpl_value_string("");
            free(v->s);
            v->s = s;
            return v;
        }
        case PROTOBUF_C_TYPE_MESSAGE:
            return cli_json_message_value(*(ProtobufCMessage *const *)p);
    }
    return tmpl_value_nil();
}

static struct tmpl_value *cli_json_repeated_value(const ProtobufCFieldDescriptor *f,
                                                  const ProtobufCMessage *msg)
{
    size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
    const char *arr = *(char *const *)((const char *)msg + f->offset);
    if (cli_json_is_map_entry(f)) {
        struct tmpl_value *m = tmpl_value_map(NULL, TMPL_MAP_SORTED | TMPL_MAP_STRINGS);
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[i];
            const ProtobufCMessageDescriptor *d = e->descriptor;
            const char *k = *(char *const *)((const char *)e + d->fields[0].offset);
            const char *v = *(char *const *)((const char *)e + d->fields[1].offset);
            tmpl_map_set_string(m, k != NULL ? k : "", v);
        }
        return m;
    }
    struct tmpl_value *list = tmpl_value_list();
    list->strings_list = f->type == PROTOBUF_C_TYPE_STRING;
    for (size_t i = 0; i < n; i++) {
        tmpl_list_append(list, cli_json_scalar_value(f, arr + i * cli_json_elem_size(f->type)));
    }
    return list;
}

static void cli_json_fields_value(struct tmpl_value *obj, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    char name[128];
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *field = (const char *)msg + f->offset;
        if (!cli_json_field_present(f, msg)) {
            continue;
        }
        if (cli_json_is_hoisted(f)) {
            cli_json_fields_value(obj, *(ProtobufCMessage *const *)field);
            continue;
        }
        if (strcmp(d->short_name, "Meta") == 0 && strcmp(f->name, "version") == 0) {
            struct tmpl_value *v = tmpl_map_set(obj, "Version", tmpl_value_map(NULL, 0));
            tmpl_map_set(v, "Index", tmpl_value_uint(*(const uint64_t *)field));
            continue;
        }
        if (strcmp(d->short_name, "ServiceSpec") == 0 &&
            (strcmp(f->name, "replicated") == 0 || strcmp(f->name, "global") == 0)) {
            struct tmpl_value *mode = tmpl_map_set(obj, "Mode", tmpl_value_map(NULL, 0));
            tmpl_map_set(mode, f->name[0] == 'r' ? "Replicated" : "Global",
                         cli_json_scalar_value(f, field));
            continue;
        }
        if (strcmp(f->name, "registry_auth") == 0) {
            continue; /* never shown, as Docker's API does not */
        }
        if (cli_json_hidden_empty(d, f, msg)) {
            continue;
        }
        cli_json_docker_name(d, f, name, sizeof name);
        struct tmpl_value *v = f->label == PROTOBUF_C_LABEL_REPEATED
                                   ? cli_json_repeated_value(f, msg)
                                   : cli_json_scalar_value(f, field);
        /* Empty strings: left out of the JSON (omitempty), there for .Field */
        v->omitempty = f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED &&
                       v->s[0] == '\0';
        tmpl_map_set(obj, name, v);
    }
}

struct tmpl_value *cli_json_message_value(const ProtobufCMessage *msg)
{
    struct tmpl_value *obj = tmpl_value_map(NULL, 0);
    cli_json_fields_value(obj, msg);
    return obj;
}
