/* Unit tests of store/ports.h: Docker's published-port conflicts and the
 * dynamic assignment from 30000-32767. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ports.h"
#include "test.h"

static Swarm__PortConfig *port(uint32_t published, uint32_t target, const char *proto,
                               const char *mode)
{
    Swarm__PortConfig *p = calloc(1, sizeof *p);
    swarm__port_config__init(p);
    p->published_port = published;
    p->target_port = target;
    p->protocol = strdup(proto);
    p->publish_mode = strdup(mode);
    return p;
}

/* A service named `name` whose spec asks for `ports` (taken). */
static Swarm__Service *service(const char *id, const char *name, Swarm__PortConfig **ports, size_t n)
{
    Swarm__Service *s = calloc(1, sizeof *s);
    swarm__service__init(s);
    s->id = strdup(id);
    s->spec = calloc(1, sizeof *s->spec);
    swarm__service_spec__init(s->spec);
    s->spec->annotations = calloc(1, sizeof *s->spec->annotations);
    swarm__annotations__init(s->spec->annotations);
    s->spec->annotations->name = strdup(name);
    s->spec->endpoint = calloc(1, sizeof *s->spec->endpoint);
    swarm__endpoint_spec__init(s->spec->endpoint);
    s->spec->endpoint->ports = calloc(n + 1, sizeof *ports);
    memcpy(s->spec->endpoint->ports, ports, n * sizeof *ports);
    s->spec->endpoint->n_ports = n;
    return s;
}

/* Give `s` its assignment as the Control API does. */
static void publish(Swarm__Service *s, Swarm__Service **others, size_t n)
{
    char err[SWARM_ERRMSG_SIZE];
    Swarm__PortConfig **out = NULL;
    size_t nout = 0;
    ASSERT_INT_EQ(ports_assign(s->spec->endpoint, s->endpoint, s->id, others, n, &out, &nout, err), 0);
    if (s->endpoint == NULL) {
        s->endpoint = calloc(1, sizeof *s->endpoint);
        swarm__endpoint__init(s->endpoint);
    }
    ports_free(s->endpoint->ports, s->endpoint->n_ports);
    s->endpoint->ports = out;
    s->endpoint->n_ports = nout;
}

TEST(ports_ingress_conflict_is_refused_with_dockers_message)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    Swarm__PortConfig *p1[] = {port(8000, 80, "tcp", "ingress")};
    Swarm__Service *web = service("aaaaaaaaaaaaaaaaaaaaaaaaa", "web", p1, 1);
    publish(web, &web, 1);
    Swarm__PortConfig *p2[] = {port(8000, 8080, "tcp", "ingress")};
    ASSERT_INT_EQ(ports_check_conflicts(p2, 1, NULL, &web, 1, err), SWARM_EEXIST);
    ASSERT_STR_EQ(err, "port '8000' is already in use by service 'web' (aaaaaaaaaaaaaaaaaaaaaaaaa) as an ingress port");
    /* The same service (an update) does not conflict with itself. */
    ASSERT_INT_EQ(ports_check_conflicts(p2, 1, web->id, &web, 1, err), 0);
    /* Another protocol is another port. */
    Swarm__PortConfig *p3[] = {port(8000, 80, "udp", "ingress")};
    ASSERT_INT_EQ(ports_check_conflicts(p3, 1, NULL, &web, 1, err), 0);
    /* A host-mode port over an ingress one conflicts too. */
    Swarm__PortConfig *p4[] = {port(8000, 80, "tcp", "host")};
    ASSERT_INT_EQ(ports_check_conflicts(p4, 1, NULL, &web, 1, err), SWARM_EEXIST);
    swarm__port_config__free_unpacked(p2[0], NULL);
    swarm__port_config__free_unpacked(p3[0], NULL);
    swarm__port_config__free_unpacked(p4[0], NULL);
    swarm__service__free_unpacked(web, NULL);
}

TEST(ports_host_mode_ports_may_be_shared)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    Swarm__PortConfig *p1[] = {port(9000, 80, "tcp", "host")};
    Swarm__Service *a = service("a1", "a", p1, 1);
    publish(a, &a, 1);
    Swarm__PortConfig *p2[] = {port(9000, 80, "tcp", "host")};
    ASSERT_INT_EQ(ports_check_conflicts(p2, 1, NULL, &a, 1, err), 0);
    /* An ingress port over another's host port does not. */
    Swarm__PortConfig *p3[] = {port(9000, 80, "tcp", "ingress")};
    ASSERT_INT_EQ(ports_check_conflicts(p3, 1, NULL, &a, 1, err), SWARM_EEXIST);
    ASSERT_STR_EQ(err, "port '9000' is already in use by service 'a' (a1)");
    swarm__port_config__free_unpacked(p2[0], NULL);
    swarm__port_config__free_unpacked(p3[0], NULL);
    swarm__service__free_unpacked(a, NULL);
}

TEST(ports_dynamic_assignment_takes_the_lowest_free_and_keeps_it)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    Swarm__PortConfig *pa[] = {port(0, 80, "tcp", "ingress"), port(30001, 81, "tcp", "ingress")};
    Swarm__Service *a = service("a1", "a", pa, 2);
    publish(a, &a, 1);
    ASSERT_INT_EQ(a->endpoint->n_ports, 2);
    ASSERT_INT_EQ(a->endpoint->ports[0]->published_port, 30000);
    ASSERT_INT_EQ(a->endpoint->ports[0]->target_port, 80);
    ASSERT_INT_EQ(a->endpoint->ports[1]->published_port, 30001);
    /* The spec keeps asking for 0: the store's spec is not changed. */
    ASSERT_INT_EQ(a->spec->endpoint->ports[0]->published_port, 0);
    /* Another service gets the next free one, skipping what a holds. */
    Swarm__PortConfig *pb[] = {port(0, 80, "tcp", "ingress")};
    Swarm__Service *b = service("b1", "b", pb, 1);
    Swarm__Service *all[] = {a, b};
    publish(b, all, 2);
    ASSERT_INT_EQ(b->endpoint->ports[0]->published_port, 30002);
    ASSERT_INT_EQ(ports_check_conflicts(b->endpoint->ports, 1, b->id, all, 2, err), 0);
    /* An update of a (a port added in front) keeps 30000 for target 80. */
    Swarm__PortConfig **grown = calloc(3, sizeof *grown);
    grown[0] = port(0, 443, "tcp", "ingress");
    grown[1] = a->spec->endpoint->ports[0];
    grown[2] = a->spec->endpoint->ports[1];
    free(a->spec->endpoint->ports);
    a->spec->endpoint->ports = grown;
    a->spec->endpoint->n_ports = 3;
    publish(a, all, 2);
    ASSERT_INT_EQ(a->endpoint->ports[0]->published_port, 30003);
    ASSERT_INT_EQ(a->endpoint->ports[1]->published_port, 30000);
    ASSERT_INT_EQ(a->endpoint->ports[2]->published_port, 30001);
    swarm__service__free_unpacked(a, NULL);
    swarm__service__free_unpacked(b, NULL);
}

TEST(ports_dynamic_range_exhausted_is_an_error)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    size_t n = PORTS_DYNAMIC_LAST - PORTS_DYNAMIC_FIRST + 1;
    Swarm__PortConfig **ps = calloc(n, sizeof *ps);
    for (size_t i = 0; i < n; i++) {
        ps[i] = port(0, (uint32_t)(i + 1), "tcp", "ingress");
    }
    Swarm__Service *a = service("a1", "a", ps, n);
    free(ps);
    publish(a, &a, 1);
    ASSERT_INT_EQ(a->endpoint->ports[n - 1]->published_port, PORTS_DYNAMIC_LAST);
    Swarm__PortConfig *pb[] = {port(0, 80, "tcp", "ingress")};
    Swarm__Service *b = service("b1", "b", pb, 1);
    Swarm__Service *all[] = {a, b};
    Swarm__PortConfig **out = NULL;
    size_t nout = 0;
    ASSERT_INT_EQ(ports_assign(b->spec->endpoint, NULL, b->id, all, 2, &out, &nout, err), SWARM_EUNAVAIL);
    ASSERT(out == NULL);
    ASSERT(strstr(err, "30000-32767") != NULL);
    swarm__service__free_unpacked(a, NULL);
    swarm__service__free_unpacked(b, NULL);
}

TEST_MAIN()
