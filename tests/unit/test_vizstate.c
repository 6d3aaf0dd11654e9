/* Unit tests of the visualizer's document (vizstate.h): nodes with their
 * role, leader mark, status, availability and resources; services with
 * service ls's running/desired; only the tasks a node runs or starts, with
 * their service's stable color; the document of a node without a manager;
 * text from users stays text (JSON-escaped, one line). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "vizstate.h"

#define TS(x) SWARM__TASK_STATE__TASK_STATE_##x

struct fixture {
    Swarm__Node nodes[2];
    Swarm__NodeSpec nspec[2];
    Swarm__NodeDescription desc[2];
    Swarm__Resources res[2];
    Swarm__NodeStatus nstatus[2];
    Swarm__ManagerStatus mstatus;
    Swarm__Service svc;
    Swarm__ServiceSpec sspec;
    Swarm__Annotations sann;
    Swarm__TaskSpec tspec;
    Swarm__ContainerSpec cspec;
    Swarm__ReplicatedService rep;
    Swarm__Task tasks[5];
    Swarm__TaskStatus tstatus[5];
    Swarm__Node *np[2];
    Swarm__Service *sp[1];
    Swarm__Task *tp[5];
};

static void fixture_fill(struct fixture *f)
{
    static const char *node_ids[] = {"node-a", "node-b"};
    static const char *hosts[] = {"alpha", "beta\"<b>\n"};
    for (int i = 0; i < 2; i++) {
        swarm__node__init(&f->nodes[i]);
        swarm__node_spec__init(&f->nspec[i]);
        swarm__node_description__init(&f->desc[i]);
        swarm__resources__init(&f->res[i]);
        swarm__node_status__init(&f->nstatus[i]);
        f->nodes[i].id = (char *)node_ids[i];
        f->nodes[i].spec = &f->nspec[i];
        f->nodes[i].description = &f->desc[i];
        f->nodes[i].status = &f->nstatus[i];
        f->desc[i].hostname = (char *)hosts[i];
        f->desc[i].resources = &f->res[i];
        f->res[i].nano_cpus = 2000000000LL * (i + 1);
        f->res[i].memory_bytes = 1024LL * 1024 * 1024 * (i + 1);
        f->np[i] = &f->nodes[i];
    }
    swarm__manager_status__init(&f->mstatus);
    f->mstatus.raft_id = 7;
    f->nodes[0].manager_status = &f->mstatus;
    f->nodes[0].role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    f->nstatus[0].state = SWARM__NODE_STATE__NODE_STATE_READY;
    f->nstatus[0].addr = "127.0.0.2";
    f->nstatus[1].state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    f->nspec[1].availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;

    swarm__service__init(&f->svc);
    swarm__service_spec__init(&f->sspec);
    swarm__annotations__init(&f->sann);
    swarm__task_spec__init(&f->tspec);
    swarm__container_spec__init(&f->cspec);
    swarm__replicated_service__init(&f->rep);
    f->svc.id = "svc1";
    f->svc.spec = &f->sspec;
    f->sspec.annotations = &f->sann;
    f->sann.name = "web";
    f->sspec.task = &f->tspec;
    f->tspec.container = &f->cspec;
    f->cspec.image = "busybox";
    f->sspec.mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    f->sspec.replicated = &f->rep;
    f->rep.replicas = 4;
    f->sp[0] = &f->svc;

    /* running, starting, pending without a node, shut down, running but
     * desired shutdown (leaving). */
    static const char *task_ids[] = {"t1", "t2", "t3", "t4", "t5"};
    static const Swarm__TaskState states[] = {TS(RUNNING), TS(STARTING), TS(PENDING), TS(SHUTDOWN),
                                              TS(RUNNING)};
    static const Swarm__TaskState desired[] = {TS(RUNNING), TS(RUNNING), TS(RUNNING),
                                               TS(SHUTDOWN), TS(SHUTDOWN)};
    for (int i = 0; i < 5; i++) {
        swarm__task__init(&f->tasks[i]);
        swarm__task_status__init(&f->tstatus[i]);
        f->tasks[i].id = (char *)task_ids[i];
        f->tasks[i].service_id = "svc1";
        f->tasks[i].slot = (uint64_t)i + 1;
        f->tasks[i].node_id = i == 2 ? "" : (char *)node_ids[i % 2];
        f->tasks[i].spec = &f->tspec;
        f->tasks[i].status = &f->tstatus[i];
        f->tasks[i].desired_state = desired[i];
        f->tstatus[i].state = states[i];
        f->tp[i] = &f->tasks[i];
    }
}

static json_t *render(struct fixture *f, uint64_t leader)
{
    struct vizstate_in in = {.leader_raft_id = leader, .nodes = f->np, .n_nodes = 2,
                             .services = f->sp, .n_services = 1, .tasks = f->tp, .n_tasks = 5};
    char *text = NULL;
    size_t len = 0;
    json_error_t err;
    if (vizstate_render(&in, &text, &len) != 0 || strlen(text) != len || strchr(text, '\n') != NULL) {
        free(text);
        return NULL;
    }
    json_t *doc = json_loads(text, 0, &err);
    free(text);
    return doc;
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

TEST(nodes_with_role_leader_status_availability_and_resources)
{
    struct fixture f;
    fixture_fill(&f);
    json_t *doc = render(&f, 7);
    ASSERT(doc != NULL);
    ASSERT(json_is_true(json_object_get(doc, "manager")));
    ASSERT(json_is_true(json_object_get(doc, "leader")));
    json_t *nodes = json_object_get(doc, "nodes");
    ASSERT_INT_EQ(json_array_size(nodes), 2);
    json_t *a = json_array_get(nodes, 0), *b = json_array_get(nodes, 1);
    ASSERT_STR_EQ(str(a, "hostname"), "alpha");
    ASSERT_STR_EQ(str(a, "role"), "manager");
    ASSERT(json_is_true(json_object_get(a, "leader")));
    ASSERT_STR_EQ(str(a, "status"), "ready");
    ASSERT_STR_EQ(str(a, "availability"), "active");
    ASSERT_STR_EQ(str(a, "addr"), "127.0.0.2");
    ASSERT(json_real_value(json_object_get(a, "cpus")) == 2.0);
    ASSERT(json_integer_value(json_object_get(a, "memory")) == 1024LL * 1024 * 1024);
    /* A hostname with quotes, markup and a newline comes back as it was. */
    ASSERT_STR_EQ(str(b, "hostname"), "beta\"<b>\n");
    ASSERT_STR_EQ(str(b, "role"), "worker");
    ASSERT(json_is_false(json_object_get(b, "leader")));
    ASSERT_STR_EQ(str(b, "status"), "down");
    ASSERT_STR_EQ(str(b, "availability"), "drain");
    ASSERT(json_real_value(json_object_get(b, "cpus")) == 4.0);
    json_decref(doc);
}

TEST(leader_mark_follows_the_raft_leader)
{
    struct fixture f;
    fixture_fill(&f);
    json_t *doc = render(&f, 9); /* a manager not in the list leads */
    ASSERT(doc != NULL);
    ASSERT(json_is_false(json_object_get(json_array_get(json_object_get(doc, "nodes"), 0), "leader")));
    json_decref(doc);
    doc = render(&f, 0); /* no leader known */
    ASSERT(doc != NULL);
    ASSERT(json_is_false(json_object_get(doc, "leader")));
    ASSERT(json_is_false(json_object_get(json_array_get(json_object_get(doc, "nodes"), 0), "leader")));
    json_decref(doc);
}

TEST(services_count_replicas_as_service_ls)
{
    struct fixture f;
    fixture_fill(&f);
    json_t *doc = render(&f, 7);
    ASSERT(doc != NULL);
    json_t *s = json_array_get(json_object_get(doc, "services"), 0);
    ASSERT_STR_EQ(str(s, "name"), "web");
    ASSERT_STR_EQ(str(s, "mode"), "replicated");
    ASSERT_STR_EQ(str(s, "image"), "busybox");
    ASSERT_INT_EQ(json_integer_value(json_object_get(s, "running")), 1);
    ASSERT_INT_EQ(json_integer_value(json_object_get(s, "desired")), 4);
    json_decref(doc);
    /* Global: desired is the tasks desired running. */
    f.sspec.mode_case = SWARM__SERVICE_SPEC__MODE_GLOBAL;
    doc = render(&f, 7);
    ASSERT(doc != NULL);
    s = json_array_get(json_object_get(doc, "services"), 0);
    ASSERT_STR_EQ(str(s, "mode"), "global");
    ASSERT_INT_EQ(json_integer_value(json_object_get(s, "desired")), 3);
    json_decref(doc);
}

TEST(cards_only_for_tasks_a_node_runs_or_starts)
{
    struct fixture f;
    char color[32];
    fixture_fill(&f);
    json_t *doc = render(&f, 7);
    ASSERT(doc != NULL);
    json_t *tasks = json_object_get(doc, "tasks");
    ASSERT_INT_EQ(json_array_size(tasks), 2);
    json_t *t1 = json_array_get(tasks, 0), *t2 = json_array_get(tasks, 1);
    ASSERT_STR_EQ(str(t1, "id"), "t1");
    ASSERT_STR_EQ(str(t1, "state"), "running");
    ASSERT_STR_EQ(str(t1, "service"), "web"); /* from the service, the task has none */
    ASSERT_STR_EQ(str(t1, "node_id"), "node-a");
    ASSERT_STR_EQ(str(t1, "image"), "busybox");
    ASSERT_INT_EQ(json_integer_value(json_object_get(t1, "slot")), 1);
    ASSERT_STR_EQ(str(t2, "id"), "t2");
    ASSERT_STR_EQ(str(t2, "state"), "starting");
    vizstate_color("svc1", color, sizeof color);
    ASSERT_STR_EQ(str(t1, "color"), color);
    ASSERT_STR_EQ(str(json_array_get(json_object_get(doc, "services"), 0), "color"), color);
    json_decref(doc);
}

TEST(colors_are_stable_and_differ_between_services)
{
    char a[32], b[32], c[32];
    vizstate_color("abc", a, sizeof a);
    vizstate_color("abc", b, sizeof b);
    vizstate_color("abd", c, sizeof c);
    ASSERT_STR_EQ(a, b);
    ASSERT(strcmp(a, c) != 0);
    ASSERT(strncmp(a, "hsl(", 4) == 0);
}

TEST(no_manager_says_why)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t err;
    ASSERT_INT_EQ(vizstate_render_none("This node is not a swarm manager.", &text, &len), 0);
    json_t *doc = json_loads(text, 0, &err);
    free(text);
    ASSERT(doc != NULL);
    ASSERT(json_is_false(json_object_get(doc, "manager")));
    ASSERT_STR_EQ(str(doc, "message"), "This node is not a swarm manager.");
    ASSERT_INT_EQ(json_array_size(json_object_get(doc, "nodes")), 0);
    ASSERT_INT_EQ(json_array_size(json_object_get(doc, "tasks")), 0);
    json_decref(doc);
}

TEST_MAIN()
