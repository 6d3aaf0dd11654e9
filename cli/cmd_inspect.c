/* `swarmctl inspect [--type node|service|task|network] [-f FORMAT] NAME|ID...`,
 * as `docker inspect`: each reference is looked up as the type given, or
 * else as a service, a task, a network and a node, in that order (an
 * exact or unique match of the first kind that knows it wins). The only
 * way to see a task whole: its NetworksAttachments, status and spec. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "format.h"
#include "json.h"
#include "view_format.h"
#include "view_network.h"

struct inspect_kind {
    const char *type;
    const char *method;
    const ProtobufCMessageDescriptor *req_desc;
};

static const struct inspect_kind kinds[] = {
    {"service", "GetService", &swarm__get_service_request__descriptor},
    {"task", "GetTask", &swarm__get_task_request__descriptor},
    {"network", "GetNetwork", &swarm__get_network_request__descriptor},
    {"node", "GetNode", &swarm__get_node_request__descriptor},
};

/* One Get call with the reference in the request's first field; the
 * object (the reply's first field) or NULL with r->status set. */
static ProtobufCMessage *inspect_get(struct cli_ctx *ctx, const struct inspect_kind *k, const char *ref,
                                     struct cli_reply *r)
{
    ProtobufCMessage *req = cli_xcalloc(1, k->req_desc->sizeof_message);
    k->req_desc->message_init(req);
    *(const char **)((char *)req + k->req_desc->fields[0].offset) = ref;
    int rv = cli_conn_call(ctx->conn, &swarm__control__descriptor, k->method, req, r);
    free(req);
    if (rv != 0 || r->resp == NULL) {
        return NULL;
    }
    const ProtobufCFieldDescriptor *f = &r->resp->descriptor->fields[0];
    return *(ProtobufCMessage **)((char *)r->resp + f->offset);
}

int cmd_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL, *type = NULL;
    struct cli_flag flags[] = {
        {'f', "format", CLI_FLAG_STRING, &format, "Format the output using the given Go template", "string",
         false, NULL},
        {0, "type", CLI_FLAG_STRING, &type, "Return JSON for specified type", "string", false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl inspect", "[OPTIONS] NAME|ID [NAME|ID...]",
                            "Return low-level information on Swarm objects", NULL, CLI_ARGS_MIN, 1, 0, flags,
                            false};
    char **pos;
    int npos, rc = 0;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    size_t first = 0, last = sizeof kinds / sizeof *kinds;
    if (type != NULL) {
        for (first = 0; first < last && strcmp(kinds[first].type, type) != 0; first++) {
        }
        if (first == last) {
            free(pos);
            return cli_cmd_errorf(ctx, "\"%s\" is not a valid value for --type", type);
        }
        last = first + 1;
    }
    if (format != NULL && strcmp(format, "json") == 0) {
        format = NULL;
    }
    struct tmpl_value **values = cli_xcalloc((size_t)npos + 1, sizeof *values);
    struct cli_reply *keep = cli_xcalloc((size_t)npos * 4 + 1, sizeof *keep);
    const ProtobufCMessage **objs = cli_xcalloc((size_t)npos + 1, sizeof *objs);
    bool *found = cli_xcalloc((size_t)npos + 1, sizeof *found);
    size_t n = 0, n_keep = 0;
    bool missing = false;
    for (int i = 0; i < npos && rc == 0; i++) {
        ProtobufCMessage *obj = NULL;
        for (size_t k = first; k < last && obj == NULL; k++) {
            struct cli_reply *r = &keep[n_keep++];
            obj = inspect_get(ctx, &kinds[k], pos[i], r);
            if (obj == NULL && r->unreachable) {
                rc = cli_conn_report(ctx->conn, r, ctx->err);
                break;
            }
        }
        if (rc != 0) {
            break;
        }
        if (obj == NULL) {
            missing = true;
            continue;
        }
        found[i] = true;
        objs[n] = obj;
        values[n++] = obj->descriptor == &swarm__network__descriptor
                          ? cli_view_network_value((const Swarm__Network *)obj)
                          : cli_json_message_value(obj);
    }
    if (rc == 0 && format != NULL) {
        rc = cli_format_inspect_values(ctx->out, ctx->err, format, values, n) == 0 ? 0 : 1;
    } else if (rc == 0) {
        fputs(n == 0 ? "[]" : "[\n", ctx->out);
        for (size_t i = 0; i < n; i++) {
            fputs("  ", ctx->out);
            if (objs[i]->descriptor == &swarm__network__descriptor) {
                tmpl_value_print_json_indent(ctx->out, values[i], 1);
            } else {
                cli_json_print_message(ctx->out, objs[i], 1);
            }
            fputs(i + 1 < n ? ",\n" : "\n", ctx->out);
        }
        fputs(n == 0 ? "\n" : "]\n", ctx->out);
    }
    fflush(ctx->out);
    if (rc == 0 && missing) {
        for (int i = 0; i < npos; i++) {
            if (!found[i]) {
                fprintf(ctx->err, "Error: No such object: %s\n", pos[i]);
            }
        }
        rc = 1;
    }
    for (size_t i = 0; i < n; i++) {
        tmpl_value_free(values[i]);
    }
    for (size_t i = 0; i < n_keep; i++) {
        cli_cmd_free(keep[i].resp);
    }
    free(values);
    free(found);
    free(objs);
    free(keep);
    free(pos);
    return rc;
}
