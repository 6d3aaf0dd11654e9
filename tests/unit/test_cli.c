/* swarmctl's pure parts: what Docker users see must match Docker's output
 * byte for byte (tables, durations, sizes), inspect must be valid JSON with
 * Docker's names, and bad input must get Docker's messages. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "edit.h"
#include "format.h"
#include "json.h"
#include "test.h"
#include "view.h"

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
    char err[128];
    return cli_parse_duration(s, &ns, err, sizeof err) == 0 ? ns : -42;
}

static const char *dur_err(const char *s)
{
    static char err[128];
    int64_t ns;
    err[0] = '\0';
    return cli_parse_duration(s, &ns, err, sizeof err) == 0 ? "(ok)" : err;
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
    ASSERT_STR_EQ(capture_end(&c), "{\n  \"Replicated\": {\n    \"Replicas\": 3\n  }\n}");
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
    return cli_args_parse(&spec, argc, argv, pos, npos, err, CLI_ERRMSG_SIZE);
}

TEST(args_parse_ok)
{
    struct update_opts o = {0};
    char err[CLI_ERRMSG_SIZE], **pos;
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
    static char err[CLI_ERRMSG_SIZE];
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

TEST_MAIN()
