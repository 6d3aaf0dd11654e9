/* Unit tests of the events module's pure part: Docker's event filters
 * (parse errors in Docker's words, matching). */
#include <string.h>

#include "err.h"
#include "events.h"
#include "test.h"

static int parse(const char *a, const char *b, const char *c, struct events_filter *f, char *err)
{
    char *v[3] = {(char *)a, (char *)b, (char *)c};
    size_t n = c != NULL ? 3 : b != NULL ? 2 : a != NULL ? 1 : 0;
    return events_filter_parse(v, n, f, err);
}

static Swarm__Event *event(Swarm__Event *e, Swarm__EventAttribute *a, Swarm__EventAttribute **pa,
                           const char *type, const char *action, const char *id, const char *name)
{
    swarm__event__init(e);
    swarm__event_attribute__init(a);
    a->key = (char *)"name";
    a->value = (char *)name;
    pa[0] = a;
    e->type = (char *)type;
    e->action = (char *)action;
    e->actor_id = (char *)id;
    e->attributes = pa;
    e->n_attributes = 1;
    return e;
}

TEST(filter_parse_errors)
{
    struct events_filter f;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(parse("foo=bar", NULL, NULL, &f, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid filter 'foo'");
    ASSERT_INT_EQ(parse("type=service", "type=bogus", NULL, &f, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid filter 'type=bogus'");
    ASSERT_INT_EQ(parse("scope=global", NULL, NULL, &f, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid filter 'scope=global'");
    ASSERT_INT_EQ(parse("typeservice", NULL, NULL, &f, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "bad format of filter (expected name=value)");
    ASSERT_INT_EQ(parse("=service", NULL, NULL, &f, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "bad format of filter (expected name=value)");
    ASSERT_INT_EQ(parse("event=", NULL, NULL, &f, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid filter 'event='");
    ASSERT_INT_EQ(parse("type=network", "event=start", "scope=local", &f, err), 0);
    ASSERT_INT_EQ(f.n[EVENTS_F_TYPE], 1);
    ASSERT_INT_EQ(f.n[EVENTS_F_EVENT], 1);
    ASSERT_INT_EQ(f.n[EVENTS_F_SCOPE], 1);
}

TEST(filter_match)
{
    struct events_filter f;
    char err[SWARM_ERRMSG_SIZE];
    Swarm__Event e, e2;
    Swarm__EventAttribute a, a2, *pa[1], *pa2[1];
    event(&e, &a, pa, "service", "create", "s1", "web");
    event(&e2, &a2, pa2, "task", "update", "t1", "web.1");

    ASSERT_INT_EQ(parse(NULL, NULL, NULL, &f, err), 0); /* no filter: all */
    ASSERT(events_filter_match(&f, &e) && events_filter_match(&f, &e2));
    ASSERT_INT_EQ(parse("type=service", NULL, NULL, &f, err), 0);
    ASSERT(events_filter_match(&f, &e) && !events_filter_match(&f, &e2));
    /* The same key ORs. */
    ASSERT_INT_EQ(parse("type=service", "type=task", NULL, &f, err), 0);
    ASSERT(events_filter_match(&f, &e) && events_filter_match(&f, &e2));
    /* Keys AND. */
    ASSERT_INT_EQ(parse("type=service", "type=task", "event=update", &f, err), 0);
    ASSERT(!events_filter_match(&f, &e) && events_filter_match(&f, &e2));
    /* Every event is swarm-scoped. */
    ASSERT_INT_EQ(parse("scope=local", NULL, NULL, &f, err), 0);
    ASSERT(!events_filter_match(&f, &e));
    ASSERT_INT_EQ(parse("scope=swarm", NULL, NULL, &f, err), 0);
    ASSERT(events_filter_match(&f, &e));
    /* service= by ID or name, on service events only. */
    ASSERT_INT_EQ(parse("service=web", NULL, NULL, &f, err), 0);
    ASSERT(events_filter_match(&f, &e) && !events_filter_match(&f, &e2));
    ASSERT_INT_EQ(parse("service=s1", NULL, NULL, &f, err), 0);
    ASSERT(events_filter_match(&f, &e));
    ASSERT_INT_EQ(parse("service=s2", NULL, NULL, &f, err), 0);
    ASSERT(!events_filter_match(&f, &e));
    ASSERT_INT_EQ(parse("node=web", NULL, NULL, &f, err), 0);
    ASSERT(!events_filter_match(&f, &e));
}

TEST_MAIN()
