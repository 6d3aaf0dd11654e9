/* swarmctl's pure parts: what Docker users see must match Docker's output
 * byte for byte (tables, durations, sizes), inspect must be valid JSON with
 * Docker's names, and bad input must get Docker's messages. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ca_progress.h"
#include "cmd_service_opts.h"
#include "edit.h"
#include "format.h"
#include "json.h"
#include "logs_fmt.h"
#include "pages.h"
#include "progress.h"
#include "test.h"
#include "view.h"
#include "view_format.h"
#include "view_network.h"
#include "view_service.h"

/* Capture what a printer writes. */
struct capture {
    FILE *f;
    char *buf;
    size_t len;
};

static void capture_start(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
}

static const char *capture_end(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

/* ------------------------------------------------------------------ table */

static Swarm__Node *make_node(const char *id, const char *host,
                              Swarm__NodeState state, int manager_status)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    Swarm__NodeSpec *spec = calloc(1, sizeof *spec);
    Swarm__NodeDescription *d = calloc(1, sizeof *d);
    Swarm__NodeStatus *st = calloc(1, sizeof *st);
    swarm__node__init(n);
    swarm__node_spec__init(spec);
    swarm__node_description__init(d);
    swarm__node_status__init(st);
    n->id = (char *)id;
    d->hostname = (char *)host;
    d->engine_version = "20.10.24+dfsg1";
    st->state = state;
    n->spec = spec;
    n->description = d;
    n->status = st;
    if (manager_status > 0) {
        Swarm__ManagerStatus *m = calloc(1, sizeof *m);
        swarm__manager_status__init(m);
        m->leader = manager_status == 3;
        m->reachability = manager_status == 1 ? SWARM__REACHABILITY__REACHABILITY_UNREACHABLE
                                              : SWARM__REACHABILITY__REACHABILITY_REACHABLE;
        m->addr = "127.0.0.1:2377";
        n->manager_status = m;
    }
    return n;
}

static void free_node(Swarm__Node *n)
{
    free(n->spec);
    free(n->description);
    free(n->status);
    free(n->manager_status);
    free(n);
}

TEST(node_table_matches_docker)
{
    Swarm__Node *nodes[3] = {
        make_node("sitks186vktib2y8xi58gabkn", "m3", SWARM__NODE_STATE__NODE_STATE_UNKNOWN, 3),
        make_node("3ak9sj3zzhxqgaf6xlri3abaf", "m1", SWARM__NODE_STATE__NODE_STATE_UNKNOWN, 1),
        make_node("8ewaa9xx3tcsox0nmgj2s53nm", "m2", SWARM__NODE_STATE__NODE_STATE_READY, 2),
    };
    struct capture c;
    capture_start(&c);
    cli_view_node_table(c.f, nodes, 3, "8ewaa9xx3tcsox0nmgj2s53nm", false);
    const char *got = capture_end(&c);
    const char *want =
        "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
        "3ak9sj3zzhxqgaf6xlri3abaf     m1         Unknown   Active         Unreachable      20.10.24+dfsg1\n"
        "8ewaa9xx3tcsox0nmgj2s53nm *   m2         Ready     Active         Reachable        20.10.24+dfsg1\n"
        "sitks186vktib2y8xi58gabkn     m3         Unknown   Active         Leader           20.10.24+dfsg1\n";
    ASSERT_STR_EQ(got, want);
    free(c.buf);
    capture_start(&c);
    cli_view_node_table(c.f, nodes, 3, NULL, true);
    ASSERT_STR_EQ(capture_end(&c), "3ak9sj3zzhxqgaf6xlri3abaf\n"
                                   "8ewaa9xx3tcsox0nmgj2s53nm\n"
                                   "sitks186vktib2y8xi58gabkn\n");
    free(c.buf);
    for (int i = 0; i < 3; i++) {
        free_node(nodes[i]);
    }
}

TEST(node_table_worker_and_natural_sort)
{
    Swarm__Node *nodes[2] = {
        make_node("bbbbbbbbbbbbbbbbbbbbbbbbb", "node10", SWARM__NODE_STATE__NODE_STATE_DOWN, 0),
        make_node("aaaaaaaaaaaaaaaaaaaaaaaaa", "node9", SWARM__NODE_STATE__NODE_STATE_DISCONNECTED, 0),
    };
    nodes[0]->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    struct capture c;
    capture_start(&c);
    cli_view_node_table(c.f, nodes, 2, NULL, false);
    const char *want =
        "ID                            HOSTNAME   STATUS         AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
        "aaaaaaaaaaaaaaaaaaaaaaaaa     node9      Disconnected   Active                          20.10.24+dfsg1\n"
        "bbbbbbbbbbbbbbbbbbbbbbbbb     node10     Down           Drain                           20.10.24+dfsg1\n";
    ASSERT_STR_EQ(capture_end(&c), want);
    free(c.buf);
    free_node(nodes[0]);
    free_node(nodes[1]);
}

TEST(table_minwidth_and_utf8)
{
    struct cli_table *t = cli_table_new(10, 3);
    cli_table_add(t, "A");
    cli_table_add(t, "B");
    cli_table_end_row(t);
    cli_table_add(t, "h\xc3\xa9llo"); /* 5 characters, 6 bytes */
    cli_table_add(t, "x");
    cli_table_end_row(t);
    struct capture c;
    capture_start(&c);
    cli_table_print(t, c.f);
    ASSERT_STR_EQ(capture_end(&c), "A         B\nh\xc3\xa9llo     x\n");
    free(c.buf);
    cli_table_free(t);
    ASSERT(cli_natural_less("m2", "m10"));
    ASSERT(!cli_natural_less("m10", "m2"));
    ASSERT(cli_natural_less("a", "b"));
    ASSERT(cli_natural_less("m", "m1"));
    ASSERT(!cli_natural_less("m1", "m1"));
}

/* ------------------------------------------------------------- durations */

static const char *human(int64_t ns)
{
    static char buf[64];
    cli_format_human_duration(ns, buf, sizeof buf);
    return buf;
}

TEST(human_duration_like_go_units)
{
    const int64_t s = CLI_NS_PER_S;
    ASSERT_STR_EQ(human(500 * CLI_NS_PER_MS), "Less than a second");
    ASSERT_STR_EQ(human(1 * s), "1 second");
    ASSERT_STR_EQ(human(5 * s), "5 seconds");
    ASSERT_STR_EQ(human(59 * s), "59 seconds");
    ASSERT_STR_EQ(human(60 * s), "About a minute");
    ASSERT_STR_EQ(human(119 * s), "About a minute");
    ASSERT_STR_EQ(human(3 * 60 * s), "3 minutes");
    ASSERT_STR_EQ(human(59 * 60 * s), "59 minutes");
    ASSERT_STR_EQ(human(60 * 60 * s), "About an hour");
    ASSERT_STR_EQ(human(89 * 60 * s), "About an hour");
    ASSERT_STR_EQ(human(2 * 3600 * s), "2 hours");
    ASSERT_STR_EQ(human(47 * 3600 * s), "47 hours");
    ASSERT_STR_EQ(human(48 * 3600 * s), "2 days");
    ASSERT_STR_EQ(human(14 * 24 * 3600 * s), "2 weeks");
    ASSERT_STR_EQ(human(2160 * 3600 * s), "3 months");
    ASSERT_STR_EQ(human(3 * 365 * 24 * 3600 * s), "3 years");
    char buf[64];
    cli_format_time_ago(10000, 8000, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2 seconds ago");
}

TEST(bytes_like_go_units)
{
    char buf[32];
    cli_format_bytes(25210327040.0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "23.48GiB");
    cli_format_bytes(512, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "512B");
    cli_format_bytes(1536, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "1.5KiB");
    cli_format_bytes(2087354368.0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "1.944GiB");
}

static int64_t dur(const char *s)
{
    int64_t ns = -42;
    char err[SWARM_ERRMSG_SIZE];
    return cli_parse_duration(s, &ns, err) == 0 ? ns : -42;
}

static const char *dur_err(const char *s)
{
    static char err[SWARM_ERRMSG_SIZE];
    int64_t ns;
    err[0] = '\0';
    return cli_parse_duration(s, &ns, err) == 0 ? "(ok)" : err;
}

TEST(parse_go_duration)
{
    ASSERT_INT_EQ(dur("5s"), 5 * CLI_NS_PER_S);
    ASSERT_INT_EQ(dur("1m30s"), 90 * CLI_NS_PER_S);
    ASSERT_INT_EQ(dur("500ms"), 500 * CLI_NS_PER_MS);
    ASSERT_INT_EQ(dur("2160h"), INT64_C(2160) * 3600 * CLI_NS_PER_S);
    ASSERT_INT_EQ(dur("1.5h"), INT64_C(5400) * CLI_NS_PER_S);
    ASSERT_INT_EQ(dur(".5s"), 500 * CLI_NS_PER_MS);
    ASSERT_INT_EQ(dur("-2s"), -2 * CLI_NS_PER_S);
    ASSERT_INT_EQ(dur("0"), 0);
    ASSERT_INT_EQ(dur("10us"), 10000);
    ASSERT_INT_EQ(dur("10\xc2\xb5s"), 10000);
    ASSERT_INT_EQ(dur("1h2m3s4ms5us6ns"), INT64_C(3723004005006));
    ASSERT_STR_EQ(dur_err("5x"), "time: unknown unit \"x\" in duration \"5x\"");
    ASSERT_STR_EQ(dur_err(""), "time: invalid duration \"\"");
    ASSERT_STR_EQ(dur_err("5"), "time: missing unit in duration \"5\"");
    ASSERT_STR_EQ(dur_err("s"), "time: invalid duration \"s\"");
    ASSERT_STR_EQ(dur_err(".s"), "time: invalid duration \".s\"");
    ASSERT_STR_EQ(dur_err("-"), "time: invalid duration \"-\"");
    ASSERT_STR_EQ(dur_err("3000000h"), "time: invalid duration \"3000000h\"");
    ASSERT_STR_EQ(dur_err("1s "), "time: unknown unit \"s \" in duration \"1s \"");
}

TEST(format_go_duration)
{
    char buf[64];
    cli_format_go_duration(90 * CLI_NS_PER_S, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "1m30s");
    cli_format_go_duration(INT64_C(2160) * 3600 * CLI_NS_PER_S, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2160h0m0s");
    cli_format_go_duration(500 * CLI_NS_PER_MS, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "500ms");
    cli_format_go_duration(1500 * CLI_NS_PER_MS, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "1.5s");
    cli_format_go_duration(0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "0s");
}

TEST(timestamps)
{
    char buf[64];
    cli_format_rfc3339(INT64_C(1709287200123), buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2024-03-01T10:00:00.123Z");
    cli_format_rfc3339(0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "0001-01-01T00:00:00Z");
    cli_format_go_time(INT64_C(1709287200120), buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2024-03-01 10:00:00.12 +0000 UTC");
    cli_format_go_time(INT64_C(1709287200000), buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2024-03-01 10:00:00 +0000 UTC");
}

/* ------------------------------------------------------------------- JSON */

TEST(json_names)
{
    char buf[64];
    cli_json_field_name("id", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "ID");
    cli_json_field_name("node_id", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "NodeID");
    cli_json_field_name("addr", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "Addr");
    cli_json_field_name("created_at", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "CreatedAt");
    cli_json_field_name("nano_cpus", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "NanoCPUs");
    cli_json_field_name("ca_cert_pem", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "CACertPEM");
    cli_json_field_name("os", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "OS");
    cli_json_enum_name(&swarm__node_role__descriptor, 1, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "manager");
    cli_json_enum_name(&swarm__node_state__descriptor, 2, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "ready");
    cli_json_enum_name(&swarm__restart_condition__descriptor, 2, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "on-failure");
    cli_json_enum_name(&swarm__local_node_state__descriptor, 2, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "active");
    cli_json_enum_name(&swarm__node_role__descriptor, 7, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "7");
}

TEST(json_node)
{
    Swarm__Node n = SWARM__NODE__INIT;
    Swarm__Meta meta = SWARM__META__INIT;
    Swarm__NodeSpec spec = SWARM__NODE_SPEC__INIT;
    Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
    Swarm__Label l1 = SWARM__LABEL__INIT, l2 = SWARM__LABEL__INIT;
    Swarm__Label *labels[] = {&l1, &l2};
    n.id = "abc";
    meta.version = 7;
    meta.created_at = INT64_C(1709287200123);
    n.meta = &meta;
    l1.key = "zone";
    l1.value = "a\"b\\c\n\x01";
    l2.key = "ssd";
    l2.value = "caf\xc3\xa9\xff";
    ann.name = "";
    ann.labels = labels;
    ann.n_labels = 2;
    spec.annotations = &ann;
    spec.desired_role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    spec.availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    n.spec = &spec;
    n.role = SWARM__NODE_ROLE__NODE_ROLE_WORKER;
    const ProtobufCMessage *msgs[] = {&n.base};
    struct capture c;
    capture_start(&c);
    cli_json_print_array(c.f, msgs, 1);
    const char *want =
        "[\n"
        "  {\n"
        "    \"ID\": \"abc\",\n"
        "    \"Version\": {\n"
        "      \"Index\": 7\n"
        "    },\n"
        "    \"CreatedAt\": \"2024-03-01T10:00:00.123Z\",\n"
        "    \"UpdatedAt\": \"0001-01-01T00:00:00Z\",\n"
        "    \"Spec\": {\n"
        "      \"Labels\": {\n"
        "        \"zone\": \"a\\\"b\\\\c\\n\\u0001\",\n"
        "        \"ssd\": \"caf\xc3\xa9\\ufffd\"\n"
        "      },\n"
        "      \"Role\": \"manager\",\n"
        "      \"Availability\": \"drain\"\n"
        "    },\n"
        "    \"Role\": \"worker\"\n"
        "  }\n"
        "]\n";
    ASSERT_STR_EQ(capture_end(&c), want);
    free(c.buf);
    capture_start(&c);
    cli_json_print_array(c.f, NULL, 0);
    ASSERT_STR_EQ(capture_end(&c), "[]\n");
    free(c.buf);
}

TEST(json_bytes_repeated_oneof)
{
    Swarm__RootCA ca = SWARM__ROOT_CA__INIT;
    uint8_t bin[] = {0x00, 0xff, 0x10, 0x20};
    ca.ca_cert_pem.data = (uint8_t *)"-----BEGIN CERTIFICATE-----\nAB==\n";
    ca.ca_cert_pem.len = strlen((char *)ca.ca_cert_pem.data);
    ca.ca_key_pem.data = bin;
    ca.ca_key_pem.len = sizeof bin;
    struct capture c;
    capture_start(&c);
    cli_json_print_message(c.f, &ca.base, 0);
    ASSERT_STR_EQ(capture_end(&c),
                  "{\n"
                  "  \"CACertPEM\": \"-----BEGIN CERTIFICATE-----\\nAB==\\n\",\n"
                  "  \"CAKeyPEM\": \"AP8QIA==\"\n"
                  "}");
    free(c.buf);

    Swarm__ServiceSpec spec = SWARM__SERVICE_SPEC__INIT;
    Swarm__ReplicatedService rep = SWARM__REPLICATED_SERVICE__INIT;
    Swarm__Placement pl = SWARM__PLACEMENT__INIT;
    char *cons[] = {"node.role==manager", "node.labels.zone!=a"};
    rep.replicas = 3;
    spec.mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    spec.replicated = &rep;
    pl.constraints = cons;
    pl.n_constraints = 2;
    capture_start(&c);
    cli_json_print_message(c.f, &spec.base, 0);
    ASSERT_STR_EQ(capture_end(&c),
                  "{\n  \"Mode\": {\n    \"Replicated\": {\n      \"Replicas\": 3\n    }\n  }\n}");
    free(c.buf);
    capture_start(&c);
    cli_json_print_message(c.f, &pl.base, 0);
    ASSERT_STR_EQ(capture_end(&c),
                  "{\n  \"Constraints\": [\n    \"node.role==manager\",\n"
                  "    \"node.labels.zone!=a\"\n  ],\n  \"Preferences\": [],\n"
                  "  \"MaxReplicas\": 0\n}");
    free(c.buf);
}

/* --------------------------------------------------------------- arguments */

struct update_opts {
    const char *availability;
    struct cli_strlist label_add;
    bool quiet;
    int64_t heartbeat;
    int64_t limit;
};

static enum cli_parse_result parse(struct update_opts *o, char *err, int *npos,
                                   char ***pos, int argc, char **argv)
{
    static struct cli_flag flags[6];
    struct cli_flag f[] = {
        {0, "availability", CLI_FLAG_STRING, &o->availability, "Availability", NULL, false},
        {0, "label-add", CLI_FLAG_LIST, &o->label_add, "Add a label", NULL, false},
        {'q', "quiet", CLI_FLAG_BOOL, &o->quiet, "Only display IDs", NULL, false},
        {0, "dispatcher-heartbeat", CLI_FLAG_DURATION, &o->heartbeat, "Heartbeat", NULL, false},
        {0, "task-history-limit", CLI_FLAG_INT, &o->limit, "Limit", NULL, false},
        {0},
    };
    memcpy(flags, f, sizeof f);
    static struct cli_spec spec = {"swarmctl node update", "[OPTIONS] NODE",
                                   "Update a node", NULL, CLI_ARGS_EXACT, 1, 0, flags};
    return cli_args_parse(&spec, argc, argv, pos, npos, err);
}

TEST(args_parse_ok)
{
    struct update_opts o = {0};
    char err[SWARM_ERRMSG_SIZE], **pos;
    int npos;
    char *argv[] = {"--availability=drain", "--label-add", "a=b", "n1", "-q",
                    "--label-add=c", "--dispatcher-heartbeat", "1m30s",
                    "--task-history-limit", "10"};
    ASSERT_INT_EQ(parse(&o, err, &npos, &pos, 10, argv), CLI_PARSE_OK);
    ASSERT_INT_EQ(npos, 1);
    ASSERT_STR_EQ(pos[0], "n1");
    ASSERT_STR_EQ(o.availability, "drain");
    ASSERT_INT_EQ(o.label_add.n, 2);
    ASSERT_STR_EQ(o.label_add.items[1], "c");
    ASSERT(o.quiet);
    ASSERT_INT_EQ(o.heartbeat, 90 * CLI_NS_PER_S);
    ASSERT_INT_EQ(o.limit, 10);
    free(pos);
    cli_strlist_free(&o.label_add);

    char *argv2[] = {"-q=false", "--", "-n1"};
    o = (struct update_opts){.quiet = true};
    ASSERT_INT_EQ(parse(&o, err, &npos, &pos, 3, argv2), CLI_PARSE_OK);
    ASSERT(!o.quiet);
    ASSERT_STR_EQ(pos[0], "-n1");
    free(pos);

    char *argv3[] = {"n1", "--help"};
    ASSERT_INT_EQ(parse(&o, err, &npos, &pos, 2, argv3), CLI_PARSE_HELP);
    char *argv4[] = {"-h"};
    ASSERT_INT_EQ(parse(&o, err, &npos, &pos, 1, argv4), CLI_PARSE_HELP);
}

static const char *parse_err(int argc, char **argv)
{
    static char err[SWARM_ERRMSG_SIZE];
    struct update_opts o = {0};
    char **pos;
    int npos;
    err[0] = '\0';
    if (parse(&o, err, &npos, &pos, argc, argv) != CLI_PARSE_ERROR) {
        free(pos);
        snprintf(err, sizeof err, "(no error)");
    }
    cli_strlist_free(&o.label_add);
    return err;
}

TEST(args_parse_errors)
{
    char *a1[] = {"--x", "n1"};
    ASSERT_STR_EQ(parse_err(2, a1), "unknown flag: --x\nSee 'swarmctl node update --help'.");
    char *a2[] = {"-z", "n1"};
    ASSERT_STR_EQ(parse_err(2, a2),
                  "unknown shorthand flag: 'z' in -z\nSee 'swarmctl node update --help'.");
    char *a3[] = {"n1", "--availability"};
    ASSERT_STR_EQ(parse_err(2, a3),
                  "flag needs an argument: --availability\nSee 'swarmctl node update --help'.");
    char *a4[] = {"--dispatcher-heartbeat", "5x", "n1"};
    ASSERT_STR_EQ(parse_err(3, a4),
                  "invalid argument \"5x\" for \"--dispatcher-heartbeat\" flag: time: unknown "
                  "unit \"x\" in duration \"5x\"\nSee 'swarmctl node update --help'.");
    char *a5[] = {"--quiet=maybe", "n1"};
    ASSERT_STR_EQ(parse_err(2, a5),
                  "invalid argument \"maybe\" for \"-q, --quiet\" flag: strconv.ParseBool: "
                  "parsing \"maybe\": invalid syntax\nSee 'swarmctl node update --help'.");
    char *a6[] = {"--task-history-limit", "ten", "n1"};
    ASSERT_STR_EQ(parse_err(3, a6),
                  "invalid argument \"ten\" for \"--task-history-limit\" flag: "
                  "strconv.ParseInt: parsing \"ten\": invalid syntax\n"
                  "See 'swarmctl node update --help'.");
    char *a7[] = {"n1", "n2"};
    ASSERT_STR_EQ(parse_err(2, a7),
                  "\"swarmctl node update\" requires exactly 1 argument.\n"
                  "See 'swarmctl node update --help'.\n\n"
                  "Usage:  swarmctl node update [OPTIONS] NODE\n\nUpdate a node");
    ASSERT_STR_EQ(parse_err(0, NULL),
                  "\"swarmctl node update\" requires exactly 1 argument.\n"
                  "See 'swarmctl node update --help'.\n\n"
                  "Usage:  swarmctl node update [OPTIONS] NODE\n\nUpdate a node");
}

TEST(args_usage)
{
    bool quiet = false, force = false;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Filter output based on conditions provided",
         "filter", false},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display IDs", NULL, false},
        {0, "force", CLI_FLAG_BOOL, &force, "Force", NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl node ls", "[OPTIONS]", "List nodes in the swarm",
                            "ls, list", CLI_ARGS_NONE, 0, 0, flags};
    struct capture c;
    capture_start(&c);
    cli_print_usage(c.f, &spec);
    ASSERT_STR_EQ(capture_end(&c),
                  "\nUsage:  swarmctl node ls [OPTIONS]\n\nList nodes in the swarm\n\n"
                  "Aliases:\n  ls, list\n\nOptions:\n"
                  "  -f, --filter filter   Filter output based on conditions provided\n"
                  "  -q, --quiet           Only display IDs\n"
                  "      --force           Force\n");
    free(c.buf);
}

/* ------------------------------------------------------------------ views */

TEST(view_init_and_join)
{
    Swarm__InitResponse r = SWARM__INIT_RESPONSE__INIT;
    r.node_id = "q56c8mpzp0ww2cjo9giltkeml";
    r.worker_join_token = "SWMTKN-1-abc-def";
    r.join_addr = "127.0.0.1:2377";
    struct capture c;
    capture_start(&c);
    cli_view_init(c.f, &r);
    ASSERT_STR_EQ(capture_end(&c),
                  "Swarm initialized: current node (q56c8mpzp0ww2cjo9giltkeml) is now a manager.\n"
                  "\n"
                  "To add a worker to this swarm, run the following command:\n"
                  "\n"
                  "    swarmctl swarm join --token SWMTKN-1-abc-def 127.0.0.1:2377\n"
                  "\n"
                  "To add a manager to this swarm, run 'swarmctl swarm join-token manager' "
                  "and follow the instructions.\n"
                  "\n");
    free(c.buf);
    capture_start(&c);
    cli_view_join_command(c.f, true, "T", "10.0.0.1:2377");
    ASSERT_STR_EQ(capture_end(&c),
                  "To add a manager to this swarm, run the following command:\n\n"
                  "    swarmctl swarm join --token T 10.0.0.1:2377\n\n");
    free(c.buf);
}

TEST(view_info)
{
    Swarm__InfoResponse info = SWARM__INFO_RESPONSE__INIT;
    Swarm__ClusterSpec spec = SWARM__CLUSTER_SPEC__INIT;
    Swarm__OrchestrationConfig orch = SWARM__ORCHESTRATION_CONFIG__INIT;
    Swarm__RaftConfig raft = SWARM__RAFT_CONFIG__INIT;
    Swarm__DispatcherConfig disp = SWARM__DISPATCHER_CONFIG__INIT;
    Swarm__CAConfig ca = SWARM__CACONFIG__INIT;
    char *addrs[] = {"127.0.0.2:2377", "127.0.0.1:2377"};
    struct capture c;

    capture_start(&c);
    cli_view_info(c.f, &info);
    ASSERT_STR_EQ(capture_end(&c), "Swarm: inactive\n");
    free(c.buf);

    orch.task_history_retention_limit = 5;
    raft.snapshot_interval = 10000;
    raft.heartbeat_tick = 1;
    raft.election_tick = 10;
    disp.heartbeat_period_ms = 1000;
    ca.node_cert_expiry_s = 90 * 24 * 3600;
    spec.orchestration = &orch;
    spec.raft = &raft;
    spec.dispatcher = &disp;
    spec.ca_config = &ca;
    info.state = SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_ACTIVE;
    info.node_id = "n1";
    info.is_manager = 1;
    info.cluster_id = "c1";
    info.managers = 1;
    info.nodes = 1;
    info.cluster_spec = &spec;
    info.node_addr = "127.0.0.1";
    info.manager_addrs = addrs;
    info.n_manager_addrs = 2;
    info.leader_addr = "127.0.0.1:2377";
    info.version = "0.1.0";
    capture_start(&c);
    cli_view_info(c.f, &info);
    ASSERT_STR_EQ(capture_end(&c),
                  "Server Version: 0.1.0\n"
                  "Swarm: active\n"
                  " NodeID: n1\n"
                  " Is Manager: true\n"
                  " ClusterID: c1\n"
                  " Managers: 1\n"
                  " Nodes: 1\n"
                  " Orchestration:\n"
                  "  Task History Retention Limit: 5\n"
                  " Raft:\n"
                  "  Snapshot Interval: 10000\n"
                  "  Number of Old Snapshots to Retain: 0\n"
                  "  Heartbeat Tick: 1\n"
                  "  Election Tick: 10\n"
                  " Dispatcher:\n"
                  "  Heartbeat Period: 1 second\n"
                  " CA Configuration:\n"
                  "  Expiry Duration: 3 months\n"
                  " Node Address: 127.0.0.1\n"
                  " Manager Addresses:\n"
                  "  127.0.0.1:2377\n"
                  "  127.0.0.2:2377\n"
                  " Role: manager\n"
                  " Leader: 127.0.0.1:2377\n");
    free(c.buf);
}

TEST(view_node_pretty)
{
    Swarm__Node *n = make_node("8ewaa9xx3tcsox0nmgj2s53nm", "m2",
                               SWARM__NODE_STATE__NODE_STATE_READY, 3);
    Swarm__Meta meta = SWARM__META__INIT;
    Swarm__Platform p = SWARM__PLATFORM__INIT;
    Swarm__Resources r = SWARM__RESOURCES__INIT;
    Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
    Swarm__Label l = SWARM__LABEL__INIT;
    Swarm__Label *labels[] = {&l};
    l.key = "zone";
    l.value = "a";
    ann.labels = labels;
    ann.n_labels = 1;
    n->spec->annotations = &ann;
    meta.created_at = INT64_C(1709287200123);
    n->meta = &meta;
    p.os = "linux";
    p.architecture = "x86_64";
    r.nano_cpus = 2000000000;
    r.memory_bytes = 2087354368;
    n->description->platform = &p;
    n->description->resources = &r;
    n->status->addr = "127.0.0.1";
    struct capture c;
    capture_start(&c);
    cli_view_node_pretty(c.f, n);
    ASSERT_STR_EQ(capture_end(&c),
                  "ID:\t\t\t8ewaa9xx3tcsox0nmgj2s53nm\n"
                  "Labels:\n - zone=a\n"
                  "Hostname:              \tm2\n"
                  "Joined at:             \t2024-03-01 10:00:00.123 +0000 UTC\n"
                  "Status:\n State:\t\t\tReady\n Availability:         \tActive\n"
                  " Address:\t\t127.0.0.1\n"
                  "Manager Status:\n Address:\t\t127.0.0.1:2377\n Raft Status:\t\tReachable\n"
                  " Leader:\t\tYes\n"
                  "Platform:\n Operating System:\tlinux\n Architecture:\t\tx86_64\n"
                  "Resources:\n CPUs:\t\t\t2\n Memory:\t\t1.944GiB\n"
                  "Engine Version:\t\t20.10.24+dfsg1\n");
    free(c.buf);
    n->spec->annotations = NULL;
    free_node(n);
}

TEST(parse_enums)
{
    Swarm__NodeAvailability a;
    Swarm__NodeRole r;
    ASSERT_INT_EQ(cli_parse_availability("Drain", &a), 0);
    ASSERT_INT_EQ(a, SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN);
    ASSERT_INT_EQ(cli_parse_availability("sleep", &a), -1);
    ASSERT_INT_EQ(cli_parse_role("manager", &r), 0);
    ASSERT_INT_EQ(r, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
    ASSERT_INT_EQ(cli_parse_role("boss", &r), -1);
}

TEST(socket_resolution)
{
    const char *path = NULL;
    ASSERT_STR_EQ(cli_resolve_socket("/a.sock", "/b.sock", "/c.sock"), "/a.sock");
    ASSERT_STR_EQ(cli_resolve_socket(NULL, "/b.sock", "/c.sock"), "/b.sock");
    ASSERT_STR_EQ(cli_resolve_socket(NULL, "", "/c.sock"), "/c.sock");
    ASSERT_STR_EQ(cli_resolve_socket("", NULL, "/c.sock"), "/c.sock");
    ASSERT_INT_EQ(cli_host_to_socket("unix:///run/s.sock", &path), 0);
    ASSERT_STR_EQ(path, "/run/s.sock");
    ASSERT_INT_EQ(cli_host_to_socket("/run/t.sock", &path), 0);
    ASSERT_STR_EQ(path, "/run/t.sock");
    ASSERT_INT_EQ(cli_host_to_socket("tcp://1.2.3.4:2375", &path), -1);
    ASSERT_INT_EQ(cli_host_to_socket("unix://", &path), -1);
}

/* Labels edited as Docker's node update: add/replace keeps key order,
 * removing a missing key is an error, and everything added is freed by
 * protobuf-c (checked under ASan). */
TEST(label_edits)
{
    char key[64];
    const char *value;
    ASSERT_INT_EQ(cli_label_parse("zone=eu=1", key, sizeof key, &value), 0);
    ASSERT_STR_EQ(key, "zone");
    ASSERT_STR_EQ(value, "eu=1");
    ASSERT_INT_EQ(cli_label_parse("ssd", key, sizeof key, &value), 0);
    ASSERT_STR_EQ(value, "");
    ASSERT_INT_EQ(cli_label_parse("=x", key, sizeof key, &value), -1);

    Swarm__NodeSpec *spec = malloc(sizeof *spec);
    swarm__node_spec__init(spec);
    ASSERT_INT_EQ(cli_labels_set(&spec->annotations, "zone", "a"), 0);
    ASSERT_INT_EQ(cli_labels_set(&spec->annotations, "b", ""), 0);
    ASSERT_INT_EQ(cli_labels_set(&spec->annotations, "zz", "1"), 0);
    ASSERT_INT_EQ(cli_labels_set(&spec->annotations, "zone", "b"), 0);
    Swarm__Annotations *a = spec->annotations;
    ASSERT_INT_EQ(a->n_labels, 3);
    ASSERT_STR_EQ(a->labels[0]->key, "b");
    ASSERT_STR_EQ(a->labels[1]->key, "zone");
    ASSERT_STR_EQ(a->labels[1]->value, "b");
    ASSERT_STR_EQ(a->labels[2]->key, "zz");
    ASSERT_INT_EQ(cli_labels_remove(a, "nope"), -1);
    ASSERT_INT_EQ(cli_labels_remove(a, "b"), 0);
    ASSERT_INT_EQ(a->n_labels, 2);
    ASSERT_STR_EQ(a->labels[0]->key, "zone");
    ASSERT_INT_EQ(cli_labels_remove(NULL, "b"), -1);

    /* A spec as swarmd sends it: the edit must survive a round trip. */
    uint8_t buf[256];
    size_t len = swarm__node_spec__pack(spec, buf);
    swarm__node_spec__free_unpacked(spec, NULL);
    spec = swarm__node_spec__unpack(NULL, len, buf);
    ASSERT(spec != NULL);
    ASSERT_INT_EQ(cli_labels_set(&spec->annotations, "zone", ""), 0);
    ASSERT_INT_EQ(cli_labels_remove(spec->annotations, "zz"), 0);
    ASSERT_INT_EQ(spec->annotations->n_labels, 1);
    ASSERT_STR_EQ(spec->annotations->labels[0]->value, "");
    swarm__node_spec__free_unpacked(spec, NULL);
}

/* ------------------------------------------------------------- services */

/* Parse a `service create|update` command line into a spec the way the
 * commands do; NULL with the message in err on any error. */
static Swarm__ServiceSpec *svc_create(int argc, char **argv, char *errmsg)
{
    struct cli_svc_opts o = {0};
    struct cli_flag flags[CLI_SVC_MAX_FLAGS];
    cli_svc_flags(&o, false, flags);
    struct cli_spec spec = {"swarmctl service create", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
                            "Create a new service", NULL, CLI_ARGS_MIN, 1, 0, flags, true};
    char **pos;
    int npos;
    Swarm__ServiceSpec *s = NULL;
    if (cli_args_parse(&spec, argc, argv, &pos, &npos, errmsg) == CLI_PARSE_OK) {
        s = cli_svc_spec_new(flags, &o, pos[0], pos + 1, (size_t)npos - 1, errmsg);
        free(pos);
    }
    cli_svc_opts_free(&o);
    return s;
}

static int svc_update(Swarm__ServiceSpec *s, int argc, char **argv, char *errmsg)
{
    struct cli_svc_opts o = {0};
    struct cli_flag flags[CLI_SVC_MAX_FLAGS];
    cli_svc_flags(&o, true, flags);
    struct cli_spec spec = {"swarmctl service update", "[OPTIONS] SERVICE", "Update a service",
                            NULL, CLI_ARGS_EXACT, 1, 0, flags, false};
    char **pos;
    int npos, rv = -1;
    if (cli_args_parse(&spec, argc, argv, &pos, &npos, errmsg) == CLI_PARSE_OK) {
        rv = cli_svc_spec_update(s, flags, &o, errmsg);
        free(pos);
    }
    cli_svc_opts_free(&o);
    return rv;
}

#define ARGV(...) \
    (int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)), ((char *[]){__VA_ARGS__})

TEST(service_create_defaults)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *s = svc_create(ARGV("--name", "web", "/bin/sleep", "1000"), err);
    if (s == NULL) {
        FAILF("%s", err);
    }
    ASSERT_STR_EQ(s->annotations->name, "web");
    ASSERT_INT_EQ(s->mode_case, SWARM__SERVICE_SPEC__MODE_REPLICATED);
    ASSERT_INT_EQ(s->replicated->replicas, 1);
    Swarm__TaskSpec *t = s->task;
    ASSERT_STR_EQ(t->container->image, "/bin/sleep");
    ASSERT_INT_EQ(t->container->n_args, 1);
    ASSERT_STR_EQ(t->container->args[0], "1000");
    ASSERT_INT_EQ(t->container->stop_grace_period_ms, 10000);
    ASSERT_INT_EQ(t->restart->condition, SWARM__RESTART_CONDITION__RESTART_CONDITION_ANY);
    ASSERT_INT_EQ(t->restart->delay_ms, 5000);
    ASSERT_INT_EQ(t->restart->max_attempts, 0);
    ASSERT_INT_EQ(t->restart->window_ms, 0);
    Swarm__UpdateConfig *cfgs[] = {s->update, s->rollback};
    for (int i = 0; i < 2; i++) {
        ASSERT(cfgs[i] != NULL);
        ASSERT_INT_EQ(cfgs[i]->parallelism, 1);
        ASSERT_INT_EQ(cfgs[i]->monitor_ms, 5000);
        ASSERT_INT_EQ(cfgs[i]->failure_action,
                      SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_PAUSE);
        ASSERT_INT_EQ(cfgs[i]->order, SWARM__UPDATE_ORDER__UPDATE_ORDER_STOP_FIRST);
    }
    /* Packs (every string set), and frees cleanly under ASan. */
    ASSERT(protobuf_c_message_get_packed_size(&s->base) > 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

TEST(service_create_flags)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *s = svc_create(
        ARGV("--replicas", "3", "-e", "A=1", "--env=B=2", "-l", "tier=web",
             "--constraint", "node.role==worker", "--constraint", "node.labels.zone != a",
             "--placement-pref", "spread=node.labels.zone", "--reserve-cpu", "0.5",
             "--reserve-memory", "512MB", "--limit-cpu", "2", "--limit-memory", "1GiB",
             "--replicas-max-per-node", "2", "--restart-condition", "on-failure",
             "--restart-delay", "1s", "--restart-max-attempts", "3", "--restart-window",
             "2m", "--stop-grace-period", "30s", "--workdir", "/tmp", "-u", "nobody:65534",
             "-p", "8000:80",
             "--publish", "mode=host,published=53,target=53,protocol=udp",
             "--update-parallelism", "2", "--update-order", "start-first",
             "--rollback-failure-action", "continue", "-d",
             "sh", "-c", "echo hi; sleep 1000"),
        err);
    if (s == NULL) {
        FAILF("%s", err);
    }
    Swarm__TaskSpec *t = s->task;
    ASSERT_INT_EQ(s->replicated->replicas, 3);
    ASSERT_STR_EQ(t->container->image, "sh");
    ASSERT_INT_EQ(t->container->n_args, 2); /* -c belongs to the command */
    ASSERT_STR_EQ(t->container->args[0], "-c");
    ASSERT_INT_EQ(t->container->n_env, 2);
    ASSERT_STR_EQ(t->container->env[1], "B=2");
    ASSERT_STR_EQ(t->container->dir, "/tmp");
    ASSERT_STR_EQ(t->container->user, "nobody:65534");
    ASSERT_INT_EQ(s->annotations->n_labels, 1);
    ASSERT_STR_EQ(s->annotations->labels[0]->value, "web");
    ASSERT_INT_EQ(t->placement->n_constraints, 2);
    ASSERT_STR_EQ(t->placement->constraints[1], "node.labels.zone != a");
    ASSERT_INT_EQ(t->placement->n_preferences, 1);
    ASSERT_STR_EQ(t->placement->preferences[0]->spread_descriptor, "node.labels.zone");
    ASSERT_INT_EQ(t->placement->max_replicas, 2);
    ASSERT_INT_EQ(t->resources->reservations->nano_cpus, 500000000);
    ASSERT_INT_EQ(t->resources->reservations->memory_bytes, 512LL << 20);
    ASSERT_INT_EQ(t->resources->limits->nano_cpus, 2000000000);
    ASSERT_INT_EQ(t->resources->limits->memory_bytes, 1LL << 30);
    ASSERT_INT_EQ(t->restart->condition, SWARM__RESTART_CONDITION__RESTART_CONDITION_ON_FAILURE);
    ASSERT_INT_EQ(t->restart->delay_ms, 1000);
    ASSERT_INT_EQ(t->restart->max_attempts, 3);
    ASSERT_INT_EQ(t->restart->window_ms, 120000);
    ASSERT_INT_EQ(t->container->stop_grace_period_ms, 30000);
    ASSERT_INT_EQ(s->endpoint->n_ports, 2);
    Swarm__PortConfig *p0 = s->endpoint->ports[0], *p1 = s->endpoint->ports[1];
    ASSERT_INT_EQ(p0->published_port, 8000);
    ASSERT_INT_EQ(p0->target_port, 80);
    ASSERT_STR_EQ(p0->protocol, "tcp");
    ASSERT_STR_EQ(p0->publish_mode, "ingress");
    ASSERT_INT_EQ(p1->published_port, 53);
    ASSERT_STR_EQ(p1->protocol, "udp");
    ASSERT_STR_EQ(p1->publish_mode, "host");
    ASSERT_INT_EQ(s->update->parallelism, 2);
    ASSERT_INT_EQ(s->update->order, SWARM__UPDATE_ORDER__UPDATE_ORDER_START_FIRST);
    ASSERT_INT_EQ(s->rollback->failure_action,
                  SWARM__UPDATE_FAILURE_ACTION__UPDATE_FAILURE_ACTION_CONTINUE);
    ASSERT_INT_EQ(s->rollback->parallelism, 1);
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s = svc_create(ARGV("--mode", "global", "/bin/true"), err);
    ASSERT(s != NULL);
    ASSERT_INT_EQ(s->mode_case, SWARM__SERVICE_SPEC__MODE_GLOBAL);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

TEST(service_create_errors)
{
    static const struct {
        char *argv[4];
        const char *want;
    } cases[] = {
        {{"--replicas=2", "--mode", "global", "x"}, "replicas can only be used with replicated mode"},
        {{"--mode", "both", "x"}, "Unknown mode: both, only replicated and global supported"},
        {{"--replicas", "-1", "x"},
         "invalid argument \"-1\" for \"--replicas\" flag: strconv.ParseUint: parsing \"-1\": "
         "invalid syntax\nSee 'swarmctl service create --help'."},
        {{"--limit-memory", "12X", "x"},
         "invalid argument \"12X\" for \"--limit-memory\" flag: invalid size: '12X'\n"
         "See 'swarmctl service create --help'."},
        {{"--reserve-memory", "-1", "x"},
         "invalid argument \"-1\" for \"--reserve-memory\" flag: invalid size: '-1'\n"
         "See 'swarmctl service create --help'."},
        {{"--limit-cpu", "abc", "x"},
         "invalid argument \"abc\" for \"--limit-cpu\" flag: failed to parse abc as a rational "
         "number\nSee 'swarmctl service create --help'."},
        {{"--limit-cpu", "-0.5", "x"},
         "invalid argument \"-0.5\" for \"--limit-cpu\" flag: value cannot be negative\n"
         "See 'swarmctl service create --help'."},
        {{"--restart-delay", "5x", "x"},
         "invalid argument \"5x\" for \"--restart-delay\" flag: time: unknown unit \"x\" in "
         "duration \"5x\"\nSee 'swarmctl service create --help'."},
        {{"--stop-grace-period", "-1s", "x"},
         "invalid argument \"-1s\" for \"--stop-grace-period\" flag: duration cannot be "
         "negative\nSee 'swarmctl service create --help'."},
        {{"--constraint", "node.role=manager", "x"},
         "invalid argument \"node.role=manager\" for \"--constraint\" flag: constraint "
         "expected one operator from ==, !=\nSee 'swarmctl service create --help'."},
        {{"--constraint", "node role==x", "x"},
         "invalid argument \"node role==x\" for \"--constraint\" flag: key 'node role' is "
         "invalid\nSee 'swarmctl service create --help'."},
        {{"-p", "published=80", "x"},
         "invalid argument \"published=80\" for \"-p, --publish\" flag: missing mandatory "
         "field \"target\"\nSee 'swarmctl service create --help'."},
        {{"--bogus", "x"}, "unknown flag: --bogus\nSee 'swarmctl service create --help'."},
        {{"--user", "a::b", "x"},
         "invalid argument \"a::b\" for \"-u, --user\" flag: invalid user \"a::b\": want "
         "<name|uid>[:<group|gid>]\nSee 'swarmctl service create --help'."},
        {{"-u", "", "x"}, "invalid argument \"\" for \"-u, --user\" flag: invalid user"},
        {{"-u", "nobody:", "x"}, "invalid argument \"nobody:\" for \"-u, --user\" flag"},
        {{"-u", "no body", "x"}, "invalid argument \"no body\" for \"-u, --user\" flag"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[SWARM_ERRMSG_SIZE] = "";
        int argc = 0;
        while (argc < 4 && cases[i].argv[argc] != NULL) {
            argc++;
        }
        Swarm__ServiceSpec *s = svc_create(argc, (char **)cases[i].argv, err);
        if (s != NULL) {
            protobuf_c_message_free_unpacked(&s->base, NULL);
            FAILF("case %zu accepted", i);
        }
        if (strcmp(err, cases[i].want) != 0 &&
            strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            FAILF("case %zu: \"%s\" != \"%s\"", i, err, cases[i].want);
        }
    }
}

TEST(service_value_parsers)
{
    char err[SWARM_ERRMSG_SIZE];
    int64_t v;
    ASSERT_INT_EQ(cli_svc_parse_cpus("0.5", &v, err), 0);
    ASSERT_INT_EQ(v, 500000000);
    ASSERT_INT_EQ(cli_svc_parse_cpus(".25", &v, err), 0);
    ASSERT_INT_EQ(v, 250000000);
    ASSERT_INT_EQ(cli_svc_parse_cpus("0.0000000001", &v, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "value is too precise");
    static const struct {
        const char *in;
        int64_t bytes;
    } mem[] = {{"100m", 100LL << 20}, {"512MB", 512LL << 20}, {"1GiB", 1LL << 30},
               {"1024", 1024},       {"2k", 2048},          {"1.5g", 3LL << 29},
               {"10 MB", 10LL << 20}, {"7b", 7}};
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++) {
        if (cli_svc_parse_memory(mem[i].in, &v, err) != 0 || v != mem[i].bytes) {
            FAILF("%s -> %lld", mem[i].in, (long long)v);
        }
    }
    ASSERT_INT_EQ(cli_svc_parse_memory("1x", &v, err), SWARM_EINVAL);
    ASSERT_INT_EQ(cli_svc_parse_memory("", &v, err), SWARM_EINVAL);
    Swarm__PortConfig *p;
    ASSERT_INT_EQ(cli_svc_parse_port("8000:80", &p, err), 0);
    ASSERT_INT_EQ(p->published_port, 8000);
    ASSERT_INT_EQ(p->target_port, 80);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    ASSERT_INT_EQ(cli_svc_parse_port("53:53/udp", &p, err), 0);
    ASSERT_STR_EQ(p->protocol, "udp");
    protobuf_c_message_free_unpacked(&p->base, NULL);
    ASSERT_INT_EQ(cli_svc_parse_port("published=8080,target=80", &p, err), 0);
    ASSERT_STR_EQ(p->publish_mode, "ingress");
    protobuf_c_message_free_unpacked(&p->base, NULL);
    ASSERT_INT_EQ(cli_svc_parse_port("target=80,mode=bridge", &p, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid publish mode value bridge");
    ASSERT_INT_EQ(cli_svc_parse_port("target=80,foo=1", &p, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid field key foo");
    ASSERT_INT_EQ(cli_svc_parse_port("x:80", &p, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "Invalid hostPort: x");
    ASSERT_INT_EQ(cli_svc_parse_port("8080:70000", &p, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "Invalid containerPort: 70000");
    char **w;
    size_t n;
    ASSERT_INT_EQ(cli_svc_split_words("sh -c 'echo \"a b\"' x\\ y", &w, &n, err), 0);
    ASSERT_INT_EQ(n, 4);
    ASSERT_STR_EQ(w[2], "echo \"a b\"");
    ASSERT_STR_EQ(w[3], "x y");
    for (size_t i = 0; i < n; i++) {
        free(w[i]);
    }
    free(w);
    ASSERT_INT_EQ(cli_svc_split_words("'open", &w, &n, err), SWARM_EINVAL);
}

TEST(service_update_edits)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *s = svc_create(
        ARGV("--name", "web", "-e", "A=1", "-e", "B=2", "--constraint", "node.role==worker",
             "-l", "a=1", "-p", "8000:80", "prog", "x"),
        err);
    ASSERT(s != NULL);
    /* Round-trip as swarmd would hand it back. */
    size_t len = protobuf_c_message_get_packed_size(&s->base);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(&s->base, buf);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    s = swarm__service_spec__unpack(NULL, len, buf);
    free(buf);
    int rv = svc_update(s, ARGV("--env-add", "A=9", "--env-add", "C=3", "--env-rm", "B",
                                "--constraint-add", "node.hostname!=m1", "--constraint-rm",
                                "node.role==worker", "--constraint-add", "node.id==abc",
                                "--label-add", "b=2", "--label-rm", "a", "--image", "prog2",
                                "--args", "-n 'two words'", "--replicas", "4",
                                "--limit-memory", "64m", "--restart-max-attempts", "2",
                                "--publish-rm", "80", "--publish-add", "9000:90", "--force",
                                "--user", "1000", "web"),
                        err);
    if (rv != 0) {
        FAILF("%s", err);
    }
    Swarm__ContainerSpec *c = s->task->container;
    ASSERT_INT_EQ(c->n_env, 2);
    ASSERT_STR_EQ(c->env[0], "A=9");
    ASSERT_STR_EQ(c->env[1], "C=3");
    ASSERT_INT_EQ(s->task->placement->n_constraints, 2);
    ASSERT_STR_EQ(s->task->placement->constraints[0], "node.hostname!=m1");
    ASSERT_STR_EQ(s->task->placement->constraints[1], "node.id==abc");
    ASSERT_INT_EQ(s->annotations->n_labels, 1);
    ASSERT_STR_EQ(s->annotations->labels[0]->key, "b");
    ASSERT_STR_EQ(s->annotations->name, "web");
    ASSERT_STR_EQ(c->image, "prog2");
    ASSERT_INT_EQ(c->n_args, 2);
    ASSERT_STR_EQ(c->args[1], "two words");
    ASSERT_INT_EQ(s->replicated->replicas, 4);
    ASSERT_INT_EQ(s->task->resources->limits->memory_bytes, 64LL << 20);
    ASSERT_INT_EQ(s->task->restart->max_attempts, 2);
    ASSERT_INT_EQ(s->task->restart->delay_ms, 5000); /* untouched */
    ASSERT_INT_EQ(s->task->force_update, 1);
    ASSERT_STR_EQ(c->user, "1000");
    ASSERT_INT_EQ(s->endpoint->n_ports, 1);
    ASSERT_INT_EQ(s->endpoint->ports[0]->target_port, 90);
    ASSERT_INT_EQ(cli_svc_spec_scale(s, 7), 0);
    ASSERT_INT_EQ(s->replicated->replicas, 7);
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s = svc_create(ARGV("--mode", "global", "prog"), err);
    ASSERT(s != NULL);
    ASSERT_INT_EQ(svc_update(s, ARGV("--replicas", "2", "web"), err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "replicas can only be used with replicated mode");
    ASSERT_INT_EQ(cli_svc_spec_scale(s, 2), -1);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

/* Lines of `text` with trailing blanks dropped: REFERENCE.md's samples were
 * stored without them, Docker's tabwriter pads the empty last cells. */
static char *rstrip_lines(const char *text)
{
    char *out = malloc(strlen(text) + 1);
    size_t o = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            while (o > 0 && out[o - 1] == ' ') {
                o--;
            }
        }
        out[o++] = *p;
    }
    out[o] = '\0';
    return out;
}

static Swarm__Service *make_service(const char *id, const char *name, bool global,
                                    uint64_t replicas, const char *image)
{
    char err[SWARM_ERRMSG_SIZE];
    char *argv[] = {"--mode", global ? "global" : "replicated", (char *)image};
    Swarm__ServiceSpec *spec = svc_create(3, argv, err);
    Swarm__Service *s = calloc(1, sizeof *s);
    swarm__service__init(s);
    s->id = strdup(id);
    s->spec = spec;
    free(spec->annotations->name);
    spec->annotations->name = strdup(name);
    if (!global) {
        spec->replicated->replicas = replicas;
    }
    return s;
}

TEST(service_healthcheck_flags)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *s = svc_create(ARGV("/bin/sleep"), err);
    ASSERT(s != NULL);
    ASSERT(s->task->container->healthcheck == NULL); /* no flag: none set */
    protobuf_c_message_free_unpacked(&s->base, NULL);
    s = svc_create(ARGV("--health-cmd", "curl -f http://localhost/ || exit 1",
                        "--health-interval", "5s", "--health-timeout", "500ms",
                        "--health-retries", "2", "--health-start-period", "1m", "/bin/sleep"),
                   err);
    if (s == NULL) {
        FAILF("%s", err);
    }
    Swarm__HealthConfig *h = s->task->container->healthcheck;
    ASSERT(h != NULL);
    ASSERT_INT_EQ(h->n_test, 2);
    ASSERT_STR_EQ(h->test[0], "CMD-SHELL");
    ASSERT_STR_EQ(h->test[1], "curl -f http://localhost/ || exit 1");
    ASSERT_INT_EQ(h->interval_ms, 5000);
    ASSERT_INT_EQ(h->timeout_ms, 500);
    ASSERT_INT_EQ(h->retries, 2);
    ASSERT_INT_EQ(h->start_period_ms, 60000);
    Swarm__Service svc = SWARM__SERVICE__INIT;
    svc.id = "x";
    svc.spec = s;
    struct capture c;
    capture_start(&c);
    cli_view_service_pretty(c.f, &svc);
    const char *out = capture_end(&c);
    const char *want = " Healthcheck:\n  Interval = 5s\n  Retries = 2\n  StartPeriod =\t1m0s\n"
                       "  Timeout =\t500ms\n  Tests:\n\t Test = CMD-SHELL\n"
                       "\t Test = curl -f http://localhost/ || exit 1\n";
    if (strstr(out, want) == NULL) {
        FAILF("missing healthcheck in:\n%s", out);
    }
    free(c.buf);
    /* update: only what is given changes */
    ASSERT_INT_EQ(svc_update(s, ARGV("--health-retries", "5", "web"), err), 0);
    ASSERT_INT_EQ(h->retries, 5);
    ASSERT_INT_EQ(h->interval_ms, 5000);
    ASSERT_STR_EQ(h->test[0], "CMD-SHELL");
    ASSERT_INT_EQ(svc_update(s, ARGV("--no-healthcheck", "web"), err), 0);
    ASSERT_INT_EQ(h->n_test, 1);
    ASSERT_STR_EQ(h->test[0], "NONE");
    ASSERT_INT_EQ(h->retries, 0);
    ASSERT_INT_EQ(svc_update(s, ARGV("--health-cmd", "true", "web"), err), 0);
    ASSERT_INT_EQ(h->n_test, 2);
    ASSERT_STR_EQ(h->test[0], "CMD-SHELL");
    ASSERT_STR_EQ(h->test[1], "true");
    ASSERT_INT_EQ(svc_update(s, ARGV("--no-healthcheck", "--health-interval", "1s", "web"), err),
                  SWARM_EINVAL);
    ASSERT_STR_EQ(err, "--no-healthcheck conflicts with --health-* options");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    s = svc_create(ARGV("--no-healthcheck", "/bin/sleep"), err);
    ASSERT(s != NULL);
    h = s->task->container->healthcheck;
    ASSERT(h != NULL && h->n_test == 1);
    ASSERT_STR_EQ(h->test[0], "NONE");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    /* bad values */
    ASSERT(svc_create(ARGV("--health-interval", "5x", "x"), err) == NULL);
    ASSERT_STR_EQ(err, "invalid argument \"5x\" for \"--health-interval\" flag: time: unknown "
                       "unit \"x\" in duration \"5x\"\nSee 'swarmctl service create --help'.");
    ASSERT(svc_create(ARGV("--health-timeout", "-1s", "x"), err) == NULL);
    ASSERT_STR_EQ(err, "invalid argument \"-1s\" for \"--health-timeout\" flag: duration "
                       "cannot be negative\nSee 'swarmctl service create --help'.");
    ASSERT(svc_create(ARGV("--health-start-period", "soon", "x"), err) == NULL);
    ASSERT(strstr(err, "--health-start-period") != NULL);
    ASSERT(svc_create(ARGV("--health-retries", "-1", "x"), err) == NULL);
    ASSERT_STR_EQ(err, "--health-retries cannot be negative");
    ASSERT(svc_create(ARGV("--no-healthcheck", "--health-cmd", "true", "x"), err) ==
           NULL);
    ASSERT_STR_EQ(err, "--no-healthcheck conflicts with --health-* options");
}

TEST(service_ls_matches_docker)
{
    Swarm__Service *svcs[2] = {
        make_service("zz9aaaaaaaaaaaaaaaaaaaaaa", "worker", true, 0, "/bin/sleep"),
        make_service("6danv3yaqapqxyzxyzxyzxyzx", "web", false, 3, "local/busybox:1"),
    };
    Swarm__PortConfig *p;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(cli_svc_parse_port("8000:80", &p, err), 0);
    svcs[1]->spec->endpoint->ports = malloc(sizeof p);
    svcs[1]->spec->endpoint->ports[0] = p;
    svcs[1]->spec->endpoint->n_ports = 1;
    uint64_t running[] = {1, 3}, desired[] = {2, 3};
    struct capture c;
    capture_start(&c);
    cli_view_service_table(c.f, &svcs[1], 1, &running[1], &desired[1], false);
    char *got = rstrip_lines(capture_end(&c));
    ASSERT_STR_EQ(got,
                  "ID             NAME      MODE         REPLICAS   IMAGE             PORTS\n"
                  "6danv3yaqapq   web       replicated   3/3        local/busybox:1   *:8000->80/tcp\n");
    free(got);
    free(c.buf);
    capture_start(&c);
    cli_view_service_table(c.f, svcs, 2, running, desired, false);
    got = rstrip_lines(capture_end(&c));
    ASSERT_STR_EQ(got,
                  "ID             NAME      MODE         REPLICAS   IMAGE             PORTS\n"
                  "6danv3yaqapq   web       replicated   3/3        local/busybox:1   *:8000->80/tcp\n"
                  "zz9aaaaaaaaa   worker    global       1/2        /bin/sleep\n");
    free(got);
    free(c.buf);
    capture_start(&c);
    cli_view_service_table(c.f, svcs, 2, running, desired, true);
    ASSERT_STR_EQ(capture_end(&c), "6danv3yaqapq\nzz9aaaaaaaaa\n");
    free(c.buf);
    for (int i = 0; i < 2; i++) {
        protobuf_c_message_free_unpacked(&svcs[i]->base, NULL);
    }
}

static Swarm__Task *make_task(const char *id, const char *service, uint64_t slot,
                              const char *node, Swarm__TaskState desired,
                              Swarm__TaskState state, int64_t ts, int64_t created,
                              const char *err)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    swarm__task__init(t);
    t->id = strdup(id);
    t->service_name = strdup(service);
    t->service_id = strdup("svc");
    t->slot = slot;
    t->node_id = strdup(node);
    t->desired_state = desired;
    t->meta = calloc(1, sizeof *t->meta);
    swarm__meta__init(t->meta);
    t->meta->created_at = created;
    t->status = calloc(1, sizeof *t->status);
    swarm__task_status__init(t->status);
    t->status->state = state;
    t->status->timestamp = ts;
    t->status->err = strdup(err);
    t->spec = calloc(1, sizeof *t->spec);
    swarm__task_spec__init(t->spec);
    t->spec->container = calloc(1, sizeof *t->spec->container);
    swarm__container_spec__init(t->spec->container);
    t->spec->container->image = strdup("local/busybox:1");
    return t;
}

#define NOW INT64_C(1700000000000)
#define RUNNING SWARM__TASK_STATE__TASK_STATE_RUNNING
#define SHUTDOWN SWARM__TASK_STATE__TASK_STATE_SHUTDOWN
#define PENDING SWARM__TASK_STATE__TASK_STATE_PENDING
#define FAILED SWARM__TASK_STATE__TASK_STATE_FAILED

TEST(service_ps_matches_docker)
{
    Swarm__Node *vm = make_node("vmnodeid00000000000000000", "vm",
                                SWARM__NODE_STATE__NODE_STATE_READY, 0);
    Swarm__Task *tasks[2] = {
        make_task("q2tee8kieg5bxxxxxxxxxxxxx", "web", 1, "vmnodeid00000000000000000", SHUTDOWN,
                  SHUTDOWN, NOW - 2000, NOW - 60000, ""),
        make_task("u7tcj4a6g1kpxxxxxxxxxxxxx", "web", 1, "", RUNNING, PENDING, NOW - 11000,
                  NOW - 11000, "no suitable node (1 node not available for new tasks)"),
    };
    struct cli_task_view v = {.now_ms = NOW, .nodes = &vm, .n_nodes = 1};
    struct capture c;
    capture_start(&c);
    cli_view_task_table(c.f, tasks, 2, &v);
    char *got = rstrip_lines(capture_end(&c));
    ASSERT_STR_EQ(got,
        "ID             NAME        IMAGE             NODE      DESIRED STATE   CURRENT STATE            ERROR                              PORTS\n"
        "u7tcj4a6g1kp   web.1       local/busybox:1             Running         Pending 11 seconds ago   \"no suitable node (1 node not \xe2\x80\xa6\"\n"
        "q2tee8kieg5b    \\_ web.1   local/busybox:1   vm        Shutdown        Shutdown 2 seconds ago\n");
    free(got);
    free(c.buf);
    v.no_trunc = true;
    v.quiet = true;
    capture_start(&c);
    cli_view_task_table(c.f, tasks, 2, &v);
    ASSERT_STR_EQ(capture_end(&c), "u7tcj4a6g1kpxxxxxxxxxxxxx\nq2tee8kieg5bxxxxxxxxxxxxx\n");
    free(c.buf);
    for (int i = 0; i < 2; i++) {
        protobuf_c_message_free_unpacked(&tasks[i]->base, NULL);
    }
    free_node(vm);
}

TEST(service_ps_history_order)
{
    Swarm__Task *tasks[] = {
        make_task("a10", "web", 10, "n1", RUNNING, RUNNING, NOW, NOW - 5000, ""),
        make_task("a2old", "web", 2, "n1", SHUTDOWN, FAILED, NOW, NOW - 9000, "exit 1"),
        make_task("a2new", "web", 2, "n1", RUNNING, RUNNING, NOW, NOW - 1000, ""),
        make_task("a2mid", "web", 2, "n1", SHUTDOWN, SHUTDOWN, NOW, NOW - 5000, ""),
        make_task("a1", "web", 1, "n1", RUNNING, RUNNING, NOW, NOW - 5000, ""),
        make_task("b1", "api", 1, "n1", RUNNING, RUNNING, NOW, NOW - 5000, ""),
        make_task("g2", "glob", 0, "n2", RUNNING, RUNNING, NOW, NOW - 5000, ""),
        make_task("g1", "glob", 0, "n1", RUNNING, RUNNING, NOW, NOW - 5000, ""),
    };
    size_t n = sizeof tasks / sizeof *tasks;
    cli_view_task_sort(tasks, n);
    static const char *const want[] = {"b1", "g1", "g2", "a1", "a2new", "a2mid", "a2old", "a10"};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tasks[i]->id, want[i]) != 0) {
            FAILF("row %zu: %s, want %s", i, tasks[i]->id, want[i]);
        }
    }
    struct cli_task_view v = {.now_ms = NOW};
    struct capture c;
    capture_start(&c);
    cli_view_task_table(c.f, tasks, n, &v);
    const char *out = capture_end(&c);
    ASSERT(strstr(out, "\ng1        glob.n1     ") != NULL);
    ASSERT(strstr(out, "\na2new     web.2       ") != NULL);
    ASSERT(strstr(out, "\na2mid      \\_ web.2   ") != NULL);
    ASSERT(strstr(out, "\na2old      \\_ web.2   ") != NULL);
    ASSERT(strstr(out, "\na10       web.10      ") != NULL);
    ASSERT(strstr(out, "\"exit 1\"") != NULL);
    free(c.buf);
    for (size_t i = 0; i < n; i++) {
        protobuf_c_message_free_unpacked(&tasks[i]->base, NULL);
    }
}

TEST(task_cells)
{
    char buf[256];
    cli_view_task_error("", false, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "");
    cli_view_task_error("exactly thirty characters long", false, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "\"exactly thirty characters long\"");
    cli_view_task_error("thirty-one characters, one more", false, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "\"thirty-one characters, one mo\xe2\x80\xa6\"");
    cli_view_task_error("thirty-one characters, one more", true, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "\"thirty-one characters, one more\"");
    Swarm__Task *t = make_task("x", "web", 1, "", RUNNING, RUNNING, NOW - 300, NOW, "");
    cli_view_task_current(t, NOW, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "Running less than a second ago");
    t->status->timestamp = NOW - 70000;
    cli_view_task_current(t, NOW, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "Running about a minute ago");
    t->status->timestamp = NOW - 3 * 3600 * 1000;
    t->status->state = SWARM__TASK_STATE__TASK_STATE_COMPLETE;
    cli_view_task_current(t, NOW, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "Complete 3 hours ago");
    cli_view_task_state(SWARM__TASK_STATE__TASK_STATE_ORPHANED, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "Orphaned");
    cli_view_task_state(SWARM__TASK_STATE__TASK_STATE_NEW, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "New");
    protobuf_c_message_free_unpacked(&t->base, NULL);
}

TEST(service_progress)
{
    Swarm__Service *svc = make_service("svcid", "web", false, 3, "prog");
    svc->spec_version = 2;
    Swarm__Task *tasks[] = {
        make_task("t1", "web", 1, "n1", RUNNING, RUNNING, NOW, NOW, ""),
        make_task("t2", "web", 2, "n1", RUNNING, SWARM__TASK_STATE__TASK_STATE_STARTING, NOW,
                  NOW, ""),
        make_task("t3old", "web", 3, "n1", SHUTDOWN, FAILED, NOW - 60000, NOW - 60000, "boom"),
    };
    tasks[0]->spec_version = tasks[1]->spec_version = 2;
    tasks[2]->spec_version = 2;
    struct cli_progress p;
    cli_progress_eval(svc, tasks, 3, NOW - 1000, false, &p);
    ASSERT_INT_EQ(p.result, CLI_PROGRESS_WAITING); /* the old failure does not count */
    ASSERT_INT_EQ(p.running, 1);
    ASSERT_INT_EQ(p.desired, 3);
    char lines[8][CLI_PROGRESS_LINE];
    size_t n = cli_progress_render(&p, true, lines, 8);
    ASSERT_INT_EQ(n, 4);
    ASSERT_STR_EQ(lines[0], "overall progress: 1 out of 3 tasks");
    ASSERT_STR_EQ(lines[1],
                  "1/3: running   [==================================================>]");
    ASSERT_STR_EQ(lines[2],
                  "2/3: starting  [============================================>      ]");
    ASSERT_STR_EQ(lines[3], "3/3: boom");
    n = cli_progress_render(&p, false, lines, 8);
    ASSERT_STR_EQ(lines[2], "2/3: starting");
    cli_progress_free(&p);

    tasks[1]->status->state = RUNNING;
    tasks[2]->desired_state = RUNNING;
    tasks[2]->status->state = RUNNING;
    tasks[2]->status->err[0] = '\0';
    cli_progress_eval(svc, tasks, 3, NOW - 1000, false, &p);
    ASSERT_INT_EQ(p.result, CLI_PROGRESS_CONVERGED);
    n = cli_progress_render(&p, false, lines, 8);
    ASSERT_STR_EQ(lines[n - 1], "verify: Service converged");
    cli_progress_free(&p);

    /* An update in flight: tasks of the old spec do not count. */
    svc->spec_version = 3;
    cli_progress_eval(svc, tasks, 3, NOW - 1000, false, &p);
    ASSERT_INT_EQ(p.result, CLI_PROGRESS_WAITING);
    ASSERT_INT_EQ(p.running, 0);
    cli_progress_free(&p);

    svc->spec_version = 2;
    tasks[1]->status->state = SWARM__TASK_STATE__TASK_STATE_REJECTED;
    free(tasks[1]->status->err);
    tasks[1]->status->err = strdup("executable file not found");
    cli_progress_eval(svc, tasks, 3, NOW - 1000, false, &p);
    ASSERT_INT_EQ(p.result, CLI_PROGRESS_FAILED);
    ASSERT_STR_EQ(p.reason, "task web.2 rejected: executable file not found");
    cli_progress_free(&p);
    for (size_t i = 0; i < 3; i++) {
        protobuf_c_message_free_unpacked(&tasks[i]->base, NULL);
    }
    protobuf_c_message_free_unpacked(&svc->base, NULL);
}

TEST(service_pretty_and_json)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *spec = svc_create(
        ARGV("--name", "web", "--replicas", "2", "-l", "tier=front", "--constraint",
             "node.role==worker", "--reserve-cpu", "0.5", "--limit-memory", "512MB", "-e",
             "A=1", "-p", "8000:80", "prog", "arg1"),
        err);
    ASSERT(spec != NULL);
    Swarm__Service svc = SWARM__SERVICE__INIT;
    svc.id = "6danv3yaqapqxyzxyzxyzxyzx";
    svc.spec = spec;
    struct capture c;
    capture_start(&c);
    cli_view_service_pretty(c.f, &svc);
    const char *out = capture_end(&c);
    static const char *const want[] = {
        "\nID:\t\t6danv3yaqapqxyzxyzxyzxyzx\nName:\t\tweb\nLabels:\n tier=front\n"
        "Service Mode:\tReplicated\n Replicas:\t2\nPlacement:\n Constraints:\t[node.role==worker]\n",
        "UpdateConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n"
        " Max failure ratio: 0\n Update order:      stop-first\n",
        "RollbackConfig:\n Parallelism:\t1\n",
        " Rollback order:    stop-first\n",
        "ContainerSpec:\n Image:\t\tprog\n Args:\t\targ1 \n Env:\t\tA=1 \n",
        "Resources:\n Reservations:\n  CPU:\t\t0.5\n Limits:\n  Memory:\t512MiB\n",
        "Endpoint Mode:\tvip\nPorts:\n PublishedPort = 8000\n  Protocol = tcp\n"
        "  TargetPort = 80\n  PublishMode = ingress\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (strstr(out, want[i]) == NULL) {
            FAILF("missing %s in:\n%s", want[i], out);
        }
    }
    free(c.buf);
    const ProtobufCMessage *one = &svc.base;
    capture_start(&c);
    cli_json_print_array(c.f, &one, 1);
    out = capture_end(&c);
    ASSERT(strstr(out, "\"Name\": \"web\"") != NULL);
    ASSERT(strstr(out, "\"Replicated\": {\n") != NULL);
    ASSERT(strstr(out, "\"NanoCPUs\": 500000000") != NULL);
    ASSERT(strstr(out, "\"Condition\": \"any\"") != NULL);
    /* Docker's names and nanosecond durations */
    ASSERT(strstr(out, "\"TaskTemplate\": {\n") != NULL);
    ASSERT(strstr(out, "\"ContainerSpec\": {\n") != NULL);
    ASSERT(strstr(out, "\"RestartPolicy\": {\n") != NULL);
    ASSERT(strstr(out, "\"UpdateConfig\": {\n") != NULL);
    ASSERT(strstr(out, "\"RollbackConfig\": {\n") != NULL);
    ASSERT(strstr(out, "\"EndpointSpec\": {\n") != NULL);
    ASSERT(strstr(out, "\"StopGracePeriod\": 10000000000") != NULL);
    ASSERT(strstr(out, "\"Delay\": 5000000000") != NULL);
    ASSERT(strstr(out, "\"Monitor\": 5000000000") != NULL);
    ASSERT(strstr(out, "Ms\"") == NULL && strstr(out, "\"Task\"") == NULL);
    free(c.buf);
    /* the same names in templates; durations print as Go's time.Duration */
    capture_start(&c);
    ASSERT_INT_EQ(cli_format_inspect(c.f, stderr,
                                     "{{.Spec.TaskTemplate.ContainerSpec.Image}} "
                                     "{{.Spec.TaskTemplate.RestartPolicy.Delay}} "
                                     "{{printf \"%d %s\" .Spec.UpdateConfig.Monitor "
                                     ".Spec.TaskTemplate.ContainerSpec.StopGracePeriod}} "
                                     "{{json .Spec.UpdateConfig.Monitor}}",
                                     &one, 1),
                  0);
    ASSERT_STR_EQ(capture_end(&c), "prog 5s 5000000000 10s 5000000000\n");
    free(c.buf);
    protobuf_c_message_free_unpacked(&spec->base, NULL);
}

TEST(args_stop_at_args)
{
    bool q = false;
    struct cli_flag flags[] = {{'q', "quiet", CLI_FLAG_BOOL, &q, "", NULL, false, NULL}, {0}};
    struct cli_spec spec = {"x", "", "", NULL, CLI_ARGS_ANY, 0, 0, flags, true};
    char *argv[] = {"-q", "prog", "-q", "--x"};
    char **pos, err[SWARM_ERRMSG_SIZE];
    int npos;
    ASSERT_INT_EQ(cli_args_parse(&spec, 4, argv, &pos, &npos, err), CLI_PARSE_OK);
    ASSERT_INT_EQ(npos, 3);
    ASSERT_STR_EQ(pos[1], "-q");
    ASSERT(q);
    free(pos);
    uint64_t u;
    ASSERT_INT_EQ(cli_parse_uint("18446744073709551615", &u, err), 0);
    ASSERT_INT_EQ(cli_parse_uint("18446744073709551616", &u, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "strconv.ParseUint: parsing \"18446744073709551616\": value out of range");
}

TEST(logs_lines_like_docker)
{
    struct cli_logs_fmt f = {0};
    char a[256], b[256], *line;
    const char *id = "abc123def456ghi789jkl0123";
    cli_logs_context(&f, "web.1", id, "node1", a, sizeof a);
    ASSERT_STR_EQ(a, "web.1.abc123def456@node1");
    cli_logs_context(&f, "web.10", id, "n2", b, sizeof b);
    cli_logs_fit(&f, strlen(a));
    cli_logs_fit(&f, strlen(b));
    /* Padded to the widest context, so that the bars align. */
    line = cli_logs_line(&f, a, 0, "hello", 5);
    ASSERT_STR_EQ(line, "web.1.abc123def456@node1    | hello\n");
    free(line);
    line = cli_logs_line(&f, b, 0, "x", 1);
    ASSERT_STR_EQ(line, "web.10.abc123def456@n2      | x\n");
    free(line);
    /* -t: RFC 3339 with nanoseconds after the bar. */
    f.timestamps = true;
    line = cli_logs_line(&f, a, 1709287200123, "hi", 2);
    ASSERT_STR_EQ(line, "web.1.abc123def456@node1    | 2024-03-01T10:00:00.123000000Z hi\n");
    free(line);
    /* --no-task-ids, --no-trunc, --raw. */
    f.timestamps = false;
    f.no_task_ids = true;
    cli_logs_context(&f, "web.1", id, "node1", a, sizeof a);
    ASSERT_STR_EQ(a, "web.1@node1");
    f.no_task_ids = false;
    f.no_trunc = true;
    cli_logs_context(&f, "web.1", id, "node1", a, sizeof a);
    ASSERT_STR_EQ(a, "web.1.abc123def456ghi789jkl0123@node1");
    f.raw = true;
    line = cli_logs_line(&f, a, 0, "raw line", 8);
    ASSERT_STR_EQ(line, "raw line\n");
    free(line);
}

/* A list that came in pages is shown whole: pages merge in order. */
static Swarm__ListServicesResponse *pages_page(const char *const *ids, size_t n, const char *token)
{
    Swarm__ListServicesResponse *r = calloc(1, sizeof *r);
    swarm__list_services_response__init(r);
    r->services = calloc(n + 1, sizeof *r->services);
    r->running = calloc(n + 1, sizeof *r->running);
    r->desired = calloc(n + 1, sizeof *r->desired);
    for (size_t i = 0; i < n; i++) {
        r->services[i] = calloc(1, sizeof **r->services);
        swarm__service__init(r->services[i]);
        r->services[i]->id = strdup(ids[i]);
        r->running[i] = i + 1;
        r->desired[i] = 10 + i;
    }
    r->n_services = r->n_running = r->n_desired = n;
    r->next_page_token = strdup(token);
    return r;
}

TEST(pages_merge_in_order)
{
    static const char *first[] = {"a", "b"}, *second[] = {"c"};
    Swarm__ListServicesResponse *acc = pages_page(first, 2, "b");
    Swarm__ListServicesResponse *page = pages_page(second, 1, "");
    Swarm__ListServicesRequest req = SWARM__LIST_SERVICES_REQUEST__INIT;
    ASSERT_STR_EQ(cli_pages_token(&acc->base), "b");
    ASSERT(cli_pages_token(&page->base) == NULL);
    Swarm__ListServicesRequest *next =
        (Swarm__ListServicesRequest *)cli_pages_request(&req.base, "b");
    ASSERT(next != NULL);
    ASSERT_STR_EQ(next->page_token, "b");
    free(next);
    ASSERT_INT_EQ(cli_pages_merge(&acc->base, &page->base), 0);
    ASSERT_INT_EQ(acc->n_services, 3);
    ASSERT_INT_EQ(acc->n_running, 3);
    ASSERT_INT_EQ(acc->n_desired, 3);
    ASSERT_STR_EQ(acc->services[2]->id, "c");
    ASSERT_INT_EQ(acc->running[2], 1);
    ASSERT_INT_EQ(acc->desired[1], 11);
    ASSERT_INT_EQ(page->n_services, 0);
    ASSERT(cli_pages_token(&acc->base) == NULL); /* the last page's: none */
    swarm__list_services_response__free_unpacked(page, NULL);
    swarm__list_services_response__free_unpacked(acc, NULL);
    /* Not a paged method: no token. */
    Swarm__InfoRequest info = SWARM__INFO_REQUEST__INIT;
    ASSERT(cli_pages_request(&info.base, "x") == NULL);
}

/* ---------------------------------------------------- swarm ca progress */

static const char ca_old_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfDCCASGgAwIBAgIUdhcxRvrrEB0U5vMeoDvB5ffcxI4wCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIc3dhcm0tY2EwHhcNMjYxMTI4MTgwNjI1WhcNNDYxMTIzMTgw\n"
    "NjI1WjATMREwDwYDVQQDDAhzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABGYWBgn6D1XyBZVeUvF+td2klZdvEOT8alOhtbbdDiCklGaQuUf+DKIc5RhC\n"
    "bVtMvBY9kk9QHIzo+K7cYAOpNtCjUzBRMB0GA1UdDgQWBBRJQY0RgOzfQCKzLui0\n"
    "1Z3I5bLd+DAfBgNVHSMEGDAWgBRJQY0RgOzfQCKzLui01Z3I5bLd+DAPBgNVHRMB\n"
    "Af8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDM5VuRQhOSv4eRFU96/OtLbZpH\n"
    "F2eF2oFtoF5Mwpr5tgIhAN6BiYQrzlBBicGiHLeeaU8NKWWokjDSKX1Uoglh3ivm\n"
    "-----END CERTIFICATE-----\n";
static const char ca_new_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfDCCASGgAwIBAgIUYyeKE4MKseXcKrMUXEl2Q/1sCPowCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIc3dhcm0tY2EwHhcNMjYxMTI4MTgwNjI1WhcNNDYxMTIzMTgw\n"
    "NjI1WjATMREwDwYDVQQDDAhzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABEXszE/N0EafIU8/dqhx6dEscCqbxAr8AVcxW16Z1vjZgI/jb7TVpOO5oUdP\n"
    "GEAFnQVypFyr840kErrOUKu5jzOjUzBRMB0GA1UdDgQWBBR6ZD882FIkZUNoBzGB\n"
    "H2WRc0BKWjAfBgNVHSMEGDAWgBR6ZD882FIkZUNoBzGBH2WRc0BKWjAPBgNVHRMB\n"
    "Af8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQC8PNKj8h9Ny+dzTIlG2b8Gkq7L\n"
    "olTQXQdd7iZ7R6MvrQIhAL2NbzKVKFHHbBd3gvfDg4z52rXkPdGAFiUYkbMkLWU9\n"
    "-----END CERTIFICATE-----\n";
static const uint8_t ca_new_pub[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x45, 0xec, 0xcc, 0x4f, 0xcd, 0xd0, 0x46, 0x9f, 0x21, 0x4f, 0x3f, 0x76, 0xa8, 0x71, 0xe9, 0xd1, 0x2c, 0x70, 0x2a, 0x9b, 0xc4, 0x0a, 0xfc, 0x01, 0x57, 0x31, 0x5b, 0x5e, 0x99, 0xd6, 0xf8, 0xd9, 0x80, 0x8f, 0xe3, 0x6f, 0xb4, 0xd5, 0xa4, 0xe3, 0xb9, 0xa1, 0x47, 0x4f, 0x18, 0x40, 0x05, 0x9d, 0x05, 0x72, 0xa4, 0x5c, 0xab, 0xf3, 0x8d, 0x24, 0x12, 0xba, 0xce, 0x50, 0xab, 0xb9, 0x8f, 0x33};
static const uint8_t ca_old_pub[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x66, 0x16, 0x06, 0x09, 0xfa, 0x0f, 0x55, 0xf2, 0x05, 0x95, 0x5e, 0x52, 0xf1, 0x7e, 0xb5, 0xdd, 0xa4, 0x95, 0x97, 0x6f, 0x10, 0xe4, 0xfc, 0x6a, 0x53, 0xa1, 0xb5, 0xb6, 0xdd, 0x0e, 0x20, 0xa4, 0x94, 0x66, 0x90, 0xb9, 0x47, 0xfe, 0x0c, 0xa2, 0x1c, 0xe5, 0x18, 0x42, 0x6d, 0x5b, 0x4c, 0xbc, 0x16, 0x3d, 0x92, 0x4f, 0x50, 0x1c, 0x8c, 0xe8, 0xf8, 0xae, 0xdc, 0x60, 0x03, 0xa9, 0x36, 0xd0};
static const uint8_t ca_subject[] = {0x30, 0x13, 0x31, 0x11, 0x30, 0x0f, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x08, 0x73, 0x77, 0x61, 0x72, 0x6d, 0x2d, 0x63, 0x61};

static Swarm__Node *ca_node(Swarm__NodeState state, const char *trust, const uint8_t *pub,
                            size_t pub_len)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    Swarm__NodeStatus *st = calloc(1, sizeof *st);
    Swarm__NodeDescription *d = calloc(1, sizeof *d);
    Swarm__NodeTLSInfo *t = calloc(1, sizeof *t);
    swarm__node__init(n);
    swarm__node_status__init(st);
    swarm__node_description__init(d);
    swarm__node_tlsinfo__init(t);
    st->state = state;
    n->status = st;
    n->description = d;
    d->tls_info = t;
    t->trust_root.data = (uint8_t *)trust;
    t->trust_root.len = strlen(trust);
    t->cert_issuer_public_key.data = (uint8_t *)pub;
    t->cert_issuer_public_key.len = pub_len;
    t->cert_issuer_subject.data = (uint8_t *)ca_subject;
    t->cert_issuer_subject.len = sizeof ca_subject;
    return n;
}

static void ca_node_free(Swarm__Node *n)
{
    free(n->description->tls_info);
    free(n->description);
    free(n->status);
    free(n);
}

TEST(ca_progress_counts_and_renders_like_docker)
{
    Swarm__Cluster c = SWARM__CLUSTER__INIT;
    Swarm__RootCA ca = SWARM__ROOT_CA__INIT;
    Swarm__RootRotation rot = SWARM__ROOT_ROTATION__INIT;
    struct cli_ca_progress p;
    char lines[3][CLI_PROGRESS_LINE];
    const Swarm__NodeState READY = SWARM__NODE_STATE__NODE_STATE_READY;
    Swarm__Node *nodes[4] = {
        ca_node(READY, ca_old_pem, ca_new_pub, sizeof ca_new_pub),
        ca_node(READY, ca_old_pem, ca_old_pub, sizeof ca_old_pub),
        ca_node(READY, ca_old_pem, ca_old_pub, sizeof ca_old_pub),
        ca_node(SWARM__NODE_STATE__NODE_STATE_DOWN, ca_old_pem, ca_old_pub, sizeof ca_old_pub),
    };
    c.root_ca = &ca;
    ca.ca_cert_pem.data = (uint8_t *)ca_old_pem;
    ca.ca_cert_pem.len = strlen(ca_old_pem);
    ca.root_rotation = &rot;
    rot.ca_cert_pem.data = (uint8_t *)ca_new_pem;
    rot.ca_cert_pem.len = strlen(ca_new_pem);

    /* During the rotation: the new root is desired; 1 of the 3 nodes that
     * are up has its certificate; trust roots show 0 until it is over. */
    ASSERT_INT_EQ(cli_ca_progress_eval(&c, nodes, 4, &p), 0);
    ASSERT(p.rotating && !p.done);
    ASSERT_INT_EQ((int)p.total, 3);
    ASSERT_INT_EQ((int)p.certs_ok, 1);
    ASSERT_INT_EQ((int)p.roots_ok, 0);
    ASSERT_INT_EQ((int)cli_ca_progress_render(&p, lines), 3);
    ASSERT(strncmp(lines[0], "desired root digest: sha256:", 28) == 0 && strlen(lines[0]) == 28 + 64);
    ASSERT_STR_EQ(lines[1], "  rotated TLS certificates:  [================>"
                            "                                  ] 1/3 nodes");
    ASSERT_STR_EQ(lines[2], "  rotated CA certificates:   [>"
                            "                                                  ] 0/3 nodes");
    /* Over: every node up has the new certificate and trusts the new root. */
    for (int i = 0; i < 3; i++) {
        nodes[i]->description->tls_info->cert_issuer_public_key.data = (uint8_t *)ca_new_pub;
        nodes[i]->description->tls_info->cert_issuer_public_key.len = sizeof ca_new_pub;
    }
    ASSERT_INT_EQ(cli_ca_progress_eval(&c, nodes, 4, &p), 0);
    ASSERT_INT_EQ((int)p.certs_ok, 3);
    ASSERT(!p.done); /* still rotating in the store */
    ca.root_rotation = NULL;
    ca.ca_cert_pem.data = (uint8_t *)ca_new_pem;
    ca.ca_cert_pem.len = strlen(ca_new_pem);
    ASSERT_INT_EQ(cli_ca_progress_eval(&c, nodes, 4, &p), 0);
    ASSERT(!p.done && p.roots_ok == 0);
    for (int i = 0; i < 3; i++) {
        nodes[i]->description->tls_info->trust_root.data = (uint8_t *)ca_new_pem;
        nodes[i]->description->tls_info->trust_root.len = strlen(ca_new_pem);
    }
    ASSERT_INT_EQ(cli_ca_progress_eval(&c, nodes, 4, &p), 0);
    ASSERT(p.done && p.roots_ok == 3);
    cli_ca_progress_render(&p, lines);
    ASSERT(strstr(lines[2], "[==================================================>] 3/3 nodes"));
    /* No readable root: an error, not a crash. */
    ca.ca_cert_pem.data = (uint8_t *)"junk";
    ca.ca_cert_pem.len = 4;
    ASSERT_INT_EQ(cli_ca_progress_eval(&c, nodes, 4, &p), -1);
    for (int i = 0; i < 4; i++) {
        ca_node_free(nodes[i]);
    }
}

/* Strings users and nodes chose reach the terminal escaped: a label or env
 * value with an escape sequence, a hostname with a newline. JSON escapes
 * them its own way. */
TEST(untrusted_strings_are_escaped)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *spec = svc_create(
        ARGV("--name", "web", "-l", "color=red\x1b[31m", "-e", "A=\x1b]0;pwned\x07", "prog"),
        err);
    ASSERT(spec != NULL);
    Swarm__Service svc = SWARM__SERVICE__INIT;
    svc.id = "6danv3yaqapqxyzxyzxyzxyzx";
    svc.spec = spec;
    struct capture c;
    capture_start(&c);
    cli_view_service_pretty(c.f, &svc);
    const char *out = capture_end(&c);
    ASSERT(strchr(out, '\x1b') == NULL);
    ASSERT(strchr(out, '\x07') == NULL);
    ASSERT(strstr(out, " color=red\\x1b[31m\n") != NULL);
    ASSERT(strstr(out, " Env:\t\tA=\\x1b]0;pwned\\x07 \n") != NULL);
    free(c.buf);
    const ProtobufCMessage *one = &svc.base;
    capture_start(&c);
    cli_json_print_array(c.f, &one, 1);
    out = capture_end(&c);
    ASSERT(strchr(out, '\x1b') == NULL);
    ASSERT(strstr(out, "\"color\": \"red\\u001b[31m\"") != NULL);
    free(c.buf);
    protobuf_c_message_free_unpacked(&spec->base, NULL);

    Swarm__Node *nodes[1] = {make_node("3ak9sj3zzhxqgaf6xlri3abaf", "evil\x1b[2J\nm1",
                                       SWARM__NODE_STATE__NODE_STATE_READY, 0)};
    capture_start(&c);
    cli_view_node_table(c.f, nodes, 1, NULL, false);
    out = capture_end(&c);
    ASSERT(strchr(out, '\x1b') == NULL);
    ASSERT(strstr(out, "evil\\x1b[2J\\nm1") != NULL);
    ASSERT_INT_EQ(strchr(strchr(out, '\n') + 1, '\n')[1], '\0'); /* header + one row */
    free(c.buf);
    capture_start(&c);
    cli_view_node_pretty(c.f, nodes[0]);
    out = capture_end(&c);
    ASSERT(strstr(out, "Hostname:              \tevil\\x1b[2J\\nm1\n") != NULL);
    free(c.buf);
    free_node(nodes[0]);
}

/* ------------------------------------------------------------- --format */

/* JSON with the whitespace between tokens removed (inspect's indented
 * output -> {{json .}}'s compact one). */
static char *compact_json(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    bool in_str = false;
    for (; *s != '\0'; s++) {
        if (in_str && *s == '\\') {
            *o++ = *s++;
        } else if (*s == '"') {
            in_str = !in_str;
        } else if (!in_str && (*s == ' ' || *s == '\n')) {
            continue;
        }
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

TEST(format_service_ls)
{
    Swarm__Service *svcs[] = {
        make_service("zz9aaaaaaaaaaaaaaaaaaaaaa", "worker", true, 0, "/bin/sleep"),
        make_service("6danv3yaqapqxyzxyzxyzxyzx", "web", false, 3, "local/busybox:1"),
    };
    uint64_t running[] = {1, 2}, desired[] = {1, 3};
    char err[SWARM_ERRMSG_SIZE];
    struct capture c;
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_service_format(c.f, "{{.Name}} {{.Mode}} {{.Replicas}} {{.ID}}", svcs,
                                          2, running, desired, err),
                  0);
    ASSERT_STR_EQ(capture_end(&c), "web replicated 2/3 6danv3yaqapq\nworker global 1/1 zz9aaaaaaaaa\n");
    free(c.buf);
    /* table: header, tabwriter layout; the two characters \t are a tab */
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_service_format(c.f, "table {{.Name}}\\t{{.Image}}\\t{{.Ports}}", svcs,
                                          2, running, desired, err),
                  0);
    ASSERT_STR_EQ(capture_end(&c), "NAME      IMAGE             PORTS\n"
                                   "web       local/busybox:1   \n"
                                   "worker    /bin/sleep        \n");
    free(c.buf);
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_service_format(c.f, "json", svcs, 2, running, desired, err),
                  0);
    ASSERT_STR_EQ(capture_end(&c),
                  "{\"ID\":\"6danv3yaqapq\",\"Image\":\"local/busybox:1\",\"Mode\":\"replicated\","
                  "\"Name\":\"web\",\"Ports\":\"\",\"Replicas\":\"2/3\"}\n"
                  "{\"ID\":\"zz9aaaaaaaaa\",\"Image\":\"/bin/sleep\",\"Mode\":\"global\","
                  "\"Name\":\"worker\",\"Ports\":\"\",\"Replicas\":\"1/1\"}\n");
    free(c.buf);
    /* no rows: the header alone in a table, nothing otherwise */
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_service_format(c.f, "table {{.Name}}", svcs, 0, NULL, NULL, err),
                  0);
    ASSERT_INT_EQ(cli_view_service_format(c.f, "{{.Name}}", svcs, 0, NULL, NULL, err),
                  0);
    ASSERT_STR_EQ(capture_end(&c), "NAME\n");
    free(c.buf);
    /* a failing row prints nothing at all, not even the rows before it */
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_service_format(c.f, "{{if eq .Name \"worker\"}}{{.Nope}}{{end}}{{.Name}}",
                                          svcs, 2, running, desired, err),
                  SWARM_EINVAL);
    ASSERT_STR_EQ(capture_end(&c), "");
    free(c.buf);
    ASSERT_STR_EQ(err, "template parsing error: template: :1:26: executing \"\" at <.Nope>: "
                       "can't evaluate field Nope in type *service.serviceContext");
    ASSERT_INT_EQ(cli_view_service_format(stdout, "{{.Name", svcs, 2, running, desired, err),
                  SWARM_EINVAL);
    ASSERT_STR_EQ(err, "template parsing error: template: :1:7: unclosed action");
    for (size_t i = 0; i < 2; i++) {
        protobuf_c_message_free_unpacked(&svcs[i]->base, NULL);
    }
}

TEST(format_task_and_node_rows)
{
    Swarm__Task *tasks[] = {
        make_task("a1new", "web", 1, "n1", RUNNING, RUNNING, NOW - 3000, NOW - 1000, ""),
        make_task("a1old", "web", 1, "n1", SHUTDOWN, FAILED, NOW - 5000, NOW - 9000, "exit 1"),
    };
    Swarm__Node *nodes[] = {make_node("n1", "host-1", SWARM__NODE_STATE__NODE_STATE_READY, 3)};
    struct cli_task_view v = {.now_ms = NOW, .nodes = nodes, .n_nodes = 1};
    char err[SWARM_ERRMSG_SIZE];
    struct capture c;
    /* the older task of a slot is indented in tables only, as Docker */
    v.format = "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}";
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_task_format(c.f, tasks, 2, &v, err), 0);
    ASSERT_STR_EQ(capture_end(&c), "web.1|host-1|Running|Running 3 seconds ago|\n"
                                   "web.1|host-1|Shutdown|Failed 5 seconds ago|\"exit 1\"\n");
    free(c.buf);
    v.format = "table {{.ID}}\t{{.Name}}";
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_task_format(c.f, tasks, 2, &v, err), 0);
    ASSERT_STR_EQ(capture_end(&c), "ID        NAME\na1new     web.1\na1old      \\_ web.1\n");
    free(c.buf);
    /* node ls: Self, and Docker's own default template with its "" header */
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_node_format(c.f,
                                       "table {{.ID}} {{if .Self}}*{{else}} {{end}}\t{{.Hostname}}"
                                       "\t{{.ManagerStatus}}",
                                       nodes, 1, "n1", err),
                  0);
    ASSERT_STR_EQ(capture_end(&c), "ID        HOSTNAME   MANAGER STATUS\n"
                                   "n1 *      host-1     Leader\n");
    free(c.buf);
    capture_start(&c);
    ASSERT_INT_EQ(cli_view_node_format(c.f, "{{json .}}", nodes, 1, NULL, err), 0);
    ASSERT_STR_EQ(capture_end(&c), "{\"Availability\":\"Active\",\"EngineVersion\":"
                                   "\"20.10.24+dfsg1\",\"Hostname\":\"host-1\",\"ID\":\"n1\","
                                   "\"ManagerStatus\":\"Leader\",\"Self\":false,\"Status\":"
                                   "\"Ready\"}\n");
    free(c.buf);
    for (size_t i = 0; i < 2; i++) {
        protobuf_c_message_free_unpacked(&tasks[i]->base, NULL);
    }
    free(nodes[0]->manager_status);
    nodes[0]->manager_status = NULL;
    free_node(nodes[0]);
}

TEST(format_inspect)
{
    Swarm__Service *s = make_service("6danv3yaqapqxyzxyzxyzxyzx", "web", false, 3, "busybox");
    s->meta = calloc(1, sizeof *s->meta);
    swarm__meta__init(s->meta);
    s->meta->version = UINT64_C(18446744073709551615); /* a uint64, not an int64 */
    ASSERT_INT_EQ(cli_labels_set(&s->spec->annotations, "tier", "front"), 0);
    const ProtobufCMessage *msgs[] = {&s->base, &s->base};
    struct capture c, e;
    capture_start(&c);
    capture_start(&e);
    ASSERT_INT_EQ(cli_format_inspect(c.f, e.f,
                                     "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}} "
                                     "{{.Version.Index}} {{.Spec.Labels.tier}} "
                                     "{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}}{{end}}",
                                     msgs, 1),
                  0);
    ASSERT_STR_EQ(capture_end(&c), "web 3 18446744073709551615 front tier=front\n");
    ASSERT_STR_EQ(capture_end(&e), "");
    free(c.buf);
    free(e.buf);
    /* {{json .}} is inspect's object, compact */
    capture_start(&c);
    cli_json_print_message(c.f, &s->base, 0);
    char *want = compact_json(capture_end(&c));
    free(c.buf);
    capture_start(&c);
    ASSERT_INT_EQ(cli_format_inspect(c.f, stderr, "{{json .}}", msgs, 1), 0);
    const char *got = capture_end(&c);
    ASSERT(strlen(got) == strlen(want) + 1 && strncmp(got, want, strlen(want)) == 0);
    free(c.buf);
    free(want);
    /* missing keys are errors (Docker's missingkey=error), one per object,
     * all of them (more than one errmsg would hold) */
    const ProtobufCMessage *many[40];
    for (size_t i = 0; i < 40; i++) {
        many[i] = &s->base;
    }
    capture_start(&c);
    capture_start(&e);
    ASSERT_INT_EQ(cli_format_inspect(c.f, e.f, "{{.Spec.Nope}}", many, 40), SWARM_EINVAL);
    ASSERT_STR_EQ(capture_end(&c), "");
    const char *one = "template parsing error: template: :1:2: executing \"\" at <.Spec.Nope>: "
                      "map has no entry for key \"Nope\"\n";
    const char *errs = capture_end(&e);
    ASSERT_INT_EQ(strlen(errs), 40 * strlen(one));
    for (size_t i = 0; i < 40; i++) {
        ASSERT(strncmp(errs + i * strlen(one), one, strlen(one)) == 0);
    }
    free(c.buf);
    free(e.buf);
    /* a parse error: one message, nothing printed */
    capture_start(&c);
    capture_start(&e);
    ASSERT_INT_EQ(cli_format_inspect(c.f, e.f, "{{end}}", msgs, 2), SWARM_EINVAL);
    ASSERT_STR_EQ(capture_end(&c), "");
    ASSERT_STR_EQ(capture_end(&e), "template parsing error: template: :1:0: unexpected {{end}}\n");
    free(c.buf);
    free(e.buf);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

TEST(service_container_flags)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__ServiceSpec *s = svc_create(
        ARGV("--mount", "type=bind,source=/srv,target=/data,readonly", "--mount",
             "src=vol1,dst=/v", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--cap-add",
             "NET_ADMIN", "--cap-drop", "CHOWN", "--read-only", "--init", "--stop-signal",
             "SIGINT", "--entrypoint", "/bin/sh -c", "busybox:1", "echo", "hi"),
        err);
    if (s == NULL) {
        FAILF("%s", err);
    }
    Swarm__ContainerSpec *c = s->task->container;
    ASSERT_INT_EQ(c->n_mounts, 3);
    ASSERT_STR_EQ(c->mounts[0]->type, "bind");
    ASSERT_STR_EQ(c->mounts[0]->source, "/srv");
    ASSERT_STR_EQ(c->mounts[0]->target, "/data");
    ASSERT(c->mounts[0]->readonly);
    ASSERT_STR_EQ(c->mounts[1]->type, "volume"); /* Docker's default type */
    ASSERT(!c->mounts[1]->readonly);
    ASSERT_INT_EQ(c->mounts[2]->tmpfs_size_bytes, 1 << 20);
    ASSERT_INT_EQ(c->n_cap_add, 1);
    ASSERT_STR_EQ(c->cap_drop[0], "CHOWN");
    ASSERT(c->read_only && c->init);
    ASSERT_STR_EQ(c->stop_signal, "SIGINT");
    ASSERT_INT_EQ(c->n_command, 2);
    ASSERT_STR_EQ(c->command[1], "-c");
    ASSERT_STR_EQ(s->task->runtime, ""); /* the manager applies the rule */

    ASSERT_INT_EQ(svc_update(s, ARGV("--mount-rm", "/data", "--mount-add",
                                     "type=volume,source=vol2,target=/v", "--cap-add", "chown",
                                     "--read-only=false", "x"), err), 0);
    ASSERT_INT_EQ(c->n_mounts, 2);
    ASSERT_STR_EQ(c->mounts[1]->source, "vol2"); /* same target: replaced */
    ASSERT_INT_EQ(c->n_cap_drop, 0);             /* added back: no longer dropped */
    ASSERT_INT_EQ(c->n_cap_add, 2);
    ASSERT(!c->read_only);
    s->task->runtime = strdup("container");
    ASSERT_INT_EQ(svc_update(s, ARGV("--image", "/bin/sleep", "x"), err), 0);
    ASSERT_STR_EQ(s->task->runtime, ""); /* decided again for the new image */
    ASSERT_INT_EQ(svc_update(s, ARGV("--runtime", "container", "x"), err), 0);
    ASSERT_STR_EQ(s->task->runtime, "container");
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

TEST(service_mount_errors)
{
    static const struct {
        const char *arg, *msg;
    } bad[] = {
        {"type=bind,source=/x", "target is required"},
        {"type=bind,target", "invalid field 'target' must be a key=value pair"},
        {"type=bind,target=/x,color=red", "unexpected key 'color' in 'type=bind,target=/x,color=red'"},
        {"type=nfs,target=/x", "invalid mount type: nfs"},
        {"type=bind,target=/x,readonly=maybe", "invalid value for readonly: maybe"},
        {"type=bind,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'bind'"},
        {"type=tmpfs,target=/x,tmpfs-size=lots", "invalid value for tmpfs-size: lots"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[SWARM_ERRMSG_SIZE] = "";
        char want[SWARM_ERRMSG_SIZE];
        Swarm__ServiceSpec *s = svc_create(ARGV("--mount", (char *)bad[i].arg, "busybox:1"), err);
        ASSERT(s == NULL);
        snprintf(want, sizeof want, "invalid argument \"%s\" for \"--mount\" flag: %s",
                 bad[i].arg, bad[i].msg);
        ASSERT(strstr(err, want) != NULL);
    }
    char err[SWARM_ERRMSG_SIZE] = "";
    ASSERT(svc_create(ARGV("--cap-add", "CAP_BOGUS", "busybox:1"), err) == NULL);
    ASSERT(strstr(err, "unknown capability: \"CAP_BOGUS\"") != NULL);
    ASSERT(svc_create(ARGV("--runtime", "vm", "busybox:1"), err) == NULL);
    ASSERT(strstr(err, "invalid runtime \"vm\"") != NULL);
}

/* --network values (Docker's NetworkOpt) and the network views. */
TEST(network_flag_and_views)
{
    Swarm__NetworkAttachmentConfig *c = NULL;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(cli_svc_parse_network("front", &c, err), 0);
    ASSERT_STR_EQ(c->target, "front");
    ASSERT_INT_EQ(c->n_aliases, 0);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    ASSERT_INT_EQ(cli_svc_parse_network("name=back,alias=db,alias=pg", &c, err), 0);
    ASSERT_STR_EQ(c->target, "back");
    ASSERT_INT_EQ(c->n_aliases, 2);
    ASSERT_STR_EQ(c->aliases[1], "pg");
    protobuf_c_message_free_unpacked(&c->base, NULL);
    ASSERT(cli_svc_parse_network("alias=db", NULL, err) != 0);
    ASSERT_STR_EQ(err, "network name/id is not specified");
    ASSERT(cli_svc_parse_network("name=x,color=red", NULL, err) != 0);
    ASSERT_STR_EQ(err, "invalid field key color");

    Swarm__Network a = SWARM__NETWORK__INIT, b = SWARM__NETWORK__INIT;
    Swarm__NetworkSpec sa = SWARM__NETWORK_SPEC__INIT, sb = SWARM__NETWORK_SPEC__INIT;
    Swarm__Annotations aa = SWARM__ANNOTATIONS__INIT, ab = SWARM__ANNOTATIONS__INIT;
    Swarm__IPAMConfig ip = SWARM__IPAMCONFIG__INIT;
    a.id = "r3m9ydqq0yjd0000000000000";
    b.id = "9dj1v0ulzbne0000000000000";
    aa.name = "ingress";
    ab.name = "wp_common";
    sa.annotations = &aa;
    sb.annotations = &ab;
    sa.driver = "overlay";
    sa.ingress = true;
    a.spec = &sa;
    b.spec = &sb;
    ip.subnet = "10.0.0.0/24";
    ip.gateway = "10.0.0.1";
    a.ipam = &ip;
    a.vni = 4097;
    Swarm__Network *list[] = {&b, &a};
    struct capture cap;
    capture_start(&cap);
    cli_view_network_table(cap.f, list, 2, false);
    ASSERT_STR_EQ(capture_end(&cap), "NETWORK ID     NAME        DRIVER    SCOPE\n"
                                      "r3m9ydqq0yjd   ingress     overlay   swarm\n"
                                      "9dj1v0ulzbne   wp_common   overlay   swarm\n");
    free(cap.buf);
    struct tmpl_value *v = cli_view_network_value(&a);
    capture_start(&cap);
    tmpl_value_print_json(cap.f, tmpl_map_get(v, "IPAM"));
    ASSERT_STR_EQ(capture_end(&cap),
                  "{\"Driver\":\"default\",\"Options\":null,\"Config\":[{\"Subnet\":\"10.0.0.0/24\",\"Gateway\":\"10.0.0.1\"}]}");
    free(cap.buf);
    ASSERT(tmpl_map_get(v, "Ingress")->b);
    tmpl_value_free(v);
}

TEST_MAIN()
