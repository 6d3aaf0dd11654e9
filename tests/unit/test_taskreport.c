/* Unit tests of taskreport: what a worker's status report may say. */
#include <stdlib.h>
#include <string.h>

#include "taskreport.h"
#include "test.h"

#define NOW 1800000000000LL
#define TID "0123456789abcdefghijklmno"

struct report {
    Swarm__UpdateTaskStatusRequest req;
    Swarm__TaskStatusUpdate up, *ups[1];
    Swarm__TaskStatus st;
};

static void report_init(struct report *r)
{
    swarm__update_task_status_request__init(&r->req);
    swarm__task_status_update__init(&r->up);
    swarm__task_status__init(&r->st);
    r->up.task_id = TID;
    r->up.status = &r->st;
    r->st.state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    r->st.timestamp = NOW - 5;
    r->st.message = "started";
    r->ups[0] = &r->up;
    r->req.updates = r->ups;
    r->req.n_updates = 1;
}

TEST(good_report_passes)
{
    struct report r;
    char err[SWARM_ERRMSG_SIZE];
    report_init(&r);
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_OK);
}

TEST(too_many_updates_refused)
{
    struct report r;
    char err[SWARM_ERRMSG_SIZE];
    report_init(&r);
    r.req.n_updates = TASKREPORT_MAX_UPDATES + 1; /* refused before any is read */
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    ASSERT(strstr(err, "too many updates") != NULL);
}

TEST(bad_ids_states_timestamps_strings_refused)
{
    struct report r;
    char err[SWARM_ERRMSG_SIZE];
    char *big = malloc(TASKREPORT_STR_MAX + 2);
    memset(big, 'x', TASKREPORT_STR_MAX + 1);
    big[TASKREPORT_STR_MAX + 1] = '\0';

    report_init(&r);
    r.up.task_id = "nope";
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    report_init(&r);
    r.up.status = NULL;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    report_init(&r);
    r.st.state = SWARM__TASK_STATE__TASK_STATE_PENDING;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    report_init(&r);
    r.st.state = 12345;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    report_init(&r);
    r.st.timestamp = 0;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    ASSERT(strstr(err, "timestamp") != NULL && strstr(err, TID) != NULL);
    report_init(&r);
    r.st.timestamp = -1;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    report_init(&r);
    r.st.timestamp = NOW + TASKREPORT_FUTURE_MS + 1;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    report_init(&r);
    r.st.timestamp = NOW + 60000; /* a minute of clock skew is fine */
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_OK);
    report_init(&r);
    r.st.err = big;
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_INVALID);
    ASSERT(strstr(err, "longer than 1024 bytes") != NULL);
    big[TASKREPORT_STR_MAX] = '\0';
    ASSERT_INT_EQ(taskreport_check(&r.req, NOW, err), TASKREPORT_OK);
    free(big);
}

TEST(task_checks_against_store)
{
    struct report r;
    char err[SWARM_ERRMSG_SIZE];
    Swarm__Task t = SWARM__TASK__INIT;
    Swarm__TaskStatus cur = SWARM__TASK_STATUS__INIT;
    report_init(&r);
    ASSERT_INT_EQ(taskreport_check_task(NULL, "node1", &r.up, err),
                  TASKREPORT_NOT_FOUND);
    ASSERT(strstr(err, TID) != NULL);
    t.id = TID;
    t.node_id = "node2";
    t.status = &cur;
    cur.state = SWARM__TASK_STATE__TASK_STATE_ASSIGNED;
    ASSERT_INT_EQ(taskreport_check_task(&t, "node1", &r.up, err), TASKREPORT_FOREIGN);
    t.node_id = "node1";
    ASSERT_INT_EQ(taskreport_check_task(&t, "node1", &r.up, err), TASKREPORT_OK);
    cur.state = SWARM__TASK_STATE__TASK_STATE_RUNNING; /* the same again: fine */
    ASSERT_INT_EQ(taskreport_check_task(&t, "node1", &r.up, err), TASKREPORT_OK);
    cur.state = SWARM__TASK_STATE__TASK_STATE_FAILED;
    ASSERT_INT_EQ(taskreport_check_task(&t, "node1", &r.up, err),
                  TASKREPORT_REGRESSION);
}

TEST_MAIN()
