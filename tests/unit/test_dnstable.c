/* Unit tests of the embedded DNS server's pure parts: the records
 * (net/dnstable.c: which name answers what, to whom) and the messages
 * (net/dnsmsg.c: queries in, answers out, through ldns), including garbage
 * and truncated bytes. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsfix.h"
#include "dnsmsg.h"
#include "dnstable.h"
#include "err.h"
#include "test.h"

/* "FORWARD", or the sorted addresses ("" for an answer with none). */
static const char *lookup(const struct dnstable *t, const char *name, uint16_t type,
                          const char *const *nets, size_t n, char *buf, size_t size)
{
    struct dnstable_answer ans = {0};
    size_t used = 0;
    char **strs;

    if (dnstable_lookup(t, name, type, nets, n, &ans) != 0) {
        snprintf(buf, size, "ENOMEM");
        return buf;
    }
    if (ans.kind == DNSTABLE_FORWARD) {
        dnstable_answer_free(&ans);
        snprintf(buf, size, "FORWARD");
        return buf;
    }
    strs = calloc(ans.addrs.len + 1, sizeof *strs);
    for (size_t i = 0; i < ans.addrs.len; i++) {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(ans.addrs.items[i].family, ans.addrs.items[i].a, a, sizeof a);
        strs[i] = strdup(a);
    }
    for (size_t i = 1; i < ans.addrs.len; i++) { /* sort: order is the shuffle's */
        for (size_t j = i; j > 0 && strcmp(strs[j - 1], strs[j]) > 0; j--) {
            char *tmp = strs[j];
            strs[j] = strs[j - 1];
            strs[j - 1] = tmp;
        }
    }
    buf[0] = '\0';
    for (size_t i = 0; i < ans.addrs.len; i++) {
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "", strs[i]);
        free(strs[i]);
    }
    free(strs);
    dnstable_answer_free(&ans);
    return buf;
}

static const char *const NET_A[] = {"netA"};
static const char *const NET_B[] = {"netB"};
static const char *const NET_AB[] = {"netA", "netB"};
static const char *const NET_BA[] = {"netB", "netA"};
static char *web_aliases[] = {"www", "Front", NULL};

/* netA ("front"): web (vip 10.0.1.2, aliases www/Front), tasks .3 .4 ready
 * and .5 not; db (dnsrr) tasks .6 .7 ready. netB ("back"): db (dnsrr) task
 * 10.0.2.6 ready, api (vip 10.0.2.2) with no ready task. */
static struct dnstable *table_fixture(void)
{
    static struct dnsfix_map a, b;
    struct dnstable *t;
    char errmsg[SWARM_ERRMSG_SIZE] = "";

    dnsfix_map_init(&a, "netA", "front");
    dnsfix_map_service(&a, "svcweb", "web", "vip", "10.0.1.2", web_aliases);
    dnsfix_map_service(&a, "svcdb", "db", "dnsrr", "", NULL);
    dnsfix_map_task(&a, "t3", "web.1.t3", "svcweb", "10.0.1.3", true, web_aliases);
    dnsfix_map_task(&a, "t4", "web.2.t4", "svcweb", "10.0.1.4", true, web_aliases);
    dnsfix_map_task(&a, "t5", "web.3.t5", "svcweb", "10.0.1.5", false, web_aliases);
    dnsfix_map_task(&a, "t6", "db.1.t6", "svcdb", "10.0.1.6", true, NULL);
    dnsfix_map_task(&a, "t7", "db.2.t7", "svcdb", "10.0.1.7/24", true, NULL);
    dnsfix_map_init(&b, "netB", "back");
    dnsfix_map_service(&b, "svcdb", "db", "dnsrr", "", NULL);
    dnsfix_map_service(&b, "svcapi", "api", "vip", "10.0.2.2", NULL);
    dnsfix_map_task(&b, "t8", "db.1.t8", "svcdb", "10.0.2.6", true, NULL);
    dnsfix_map_task(&b, "t9", "api.1.t9", "svcapi", "10.0.2.9", false, NULL);
    if (dnstable_new(&t) != 0 || dnstable_network_update(t, &a.map, errmsg) != 0 ||
        dnstable_network_update(t, &b.map, errmsg) != 0) {
        return NULL;
    }
    return t;
}

#define LOOKUP_EQ(t, name, type, nets, expect)                                      \
    do {                                                                            \
        char lkbuf_[512];                                                             \
        ASSERT_STR_EQ(lookup(t, name, type, nets, sizeof nets / sizeof nets[0],    \
                             lkbuf_, sizeof lkbuf_), expect);                           \
    } while (0)

TEST(dnstable_vip_service_answers_its_vip)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, NET_A, "10.0.1.2");
    dnstable_free(t);
}

TEST(dnstable_dnsrr_service_answers_ready_task_ips)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, NET_A, "10.0.1.6,10.0.1.7");
    dnstable_free(t);
}

TEST(dnstable_tasks_name_answers_every_ready_task)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "tasks.web", DNSTABLE_TYPE_A, NET_A, "10.0.1.3,10.0.1.4");
    LOOKUP_EQ(t, "tasks.db", DNSTABLE_TYPE_A, NET_A, "10.0.1.6,10.0.1.7");
    dnstable_free(t);
}

TEST(dnstable_aliases_answer_like_the_service)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "www", DNSTABLE_TYPE_A, NET_A, "10.0.1.2");
    LOOKUP_EQ(t, "front", DNSTABLE_TYPE_A, NET_A, "10.0.1.2");
    LOOKUP_EQ(t, "tasks.www", DNSTABLE_TYPE_A, NET_A, "10.0.1.3,10.0.1.4");
    dnstable_free(t);
}

TEST(dnstable_task_name_answers_that_task_full_name_only)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "web.1.t3", DNSTABLE_TYPE_A, NET_A, "10.0.1.3");
    LOOKUP_EQ(t, "db.2.t7", DNSTABLE_TYPE_A, NET_A, "10.0.1.7");
    LOOKUP_EQ(t, "web.1", DNSTABLE_TYPE_A, NET_A, "FORWARD"); /* as Docker */
    LOOKUP_EQ(t, "web.3.t5", DNSTABLE_TYPE_A, NET_A, "FORWARD"); /* not ready */
    dnstable_free(t);
}

TEST(dnstable_names_resolve_only_on_the_askers_networks)
{
    struct dnstable *t = table_fixture();
    const char *const none[] = {"netZ"};
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, NET_B, "FORWARD");
    LOOKUP_EQ(t, "tasks.web", DNSTABLE_TYPE_A, NET_B, "FORWARD");
    LOOKUP_EQ(t, "web.1.t3", DNSTABLE_TYPE_A, NET_B, "FORWARD");
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, NET_B, "10.0.2.6");
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, none, "FORWARD");
    ASSERT_INT_EQ(dnstable_lookup(t, "web", DNSTABLE_TYPE_A, NULL, 0,
                                  &(struct dnstable_answer){0}), 0);
    dnstable_free(t);
}

TEST(dnstable_first_network_of_the_sandbox_answers)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, NET_AB, "10.0.1.6,10.0.1.7");
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, NET_BA, "10.0.2.6");
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, NET_BA, "10.0.1.2");
    dnstable_free(t);
}

TEST(dnstable_name_dot_network_picks_that_network)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "db.back", DNSTABLE_TYPE_A, NET_AB, "10.0.2.6");
    LOOKUP_EQ(t, "db.front", DNSTABLE_TYPE_A, NET_BA, "10.0.1.6,10.0.1.7");
    LOOKUP_EQ(t, "tasks.web.front", DNSTABLE_TYPE_A, NET_AB, "10.0.1.3,10.0.1.4");
    LOOKUP_EQ(t, "web.back", DNSTABLE_TYPE_A, NET_AB, "FORWARD");
    LOOKUP_EQ(t, "db.front", DNSTABLE_TYPE_A, NET_B, "FORWARD"); /* not attached */
    dnstable_free(t);
}

TEST(dnstable_case_and_trailing_dot_do_not_matter)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "WEB.", DNSTABLE_TYPE_A, NET_A, "10.0.1.2");
    LOOKUP_EQ(t, "Tasks.Web", DNSTABLE_TYPE_A, NET_A, "10.0.1.3,10.0.1.4");
    LOOKUP_EQ(t, "FRONT.", DNSTABLE_TYPE_A, NET_A, "10.0.1.2");
    LOOKUP_EQ(t, "DB.BACK.", DNSTABLE_TYPE_A, NET_AB, "10.0.2.6");
    LOOKUP_EQ(t, ".", DNSTABLE_TYPE_A, NET_A, "FORWARD");
    LOOKUP_EQ(t, "", DNSTABLE_TYPE_A, NET_A, "FORWARD");
    dnstable_free(t);
}

TEST(dnstable_aaaa_and_other_types_of_our_names_have_no_records)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_AAAA, NET_A, "");
    LOOKUP_EQ(t, "tasks.db", DNSTABLE_TYPE_AAAA, NET_A, "");
    LOOKUP_EQ(t, "web", 15 /* MX */, NET_A, "");
    LOOKUP_EQ(t, "example.org", DNSTABLE_TYPE_AAAA, NET_A, "FORWARD");
    dnstable_free(t);
}

TEST(dnstable_unknown_names_are_forwarded)
{
    struct dnstable *t = table_fixture();
    ASSERT(t != NULL);
    LOOKUP_EQ(t, "example.org", DNSTABLE_TYPE_A, NET_AB, "FORWARD");
    LOOKUP_EQ(t, "tasks.nothing", DNSTABLE_TYPE_A, NET_AB, "FORWARD");
    /* a vip service none of whose tasks is ready has no record (Docker
     * removes the VIP's name with its last backend) */
    LOOKUP_EQ(t, "api", DNSTABLE_TYPE_A, NET_B, "FORWARD");
    LOOKUP_EQ(t, "tasks.api", DNSTABLE_TYPE_A, NET_B, "FORWARD");
    dnstable_free(t);
}

TEST(dnstable_update_replaces_a_network_and_remove_forgets_it)
{
    struct dnstable *t = table_fixture();
    struct dnsfix_map a;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    ASSERT(t != NULL);
    dnsfix_map_init(&a, "netA", "front");
    dnsfix_map_service(&a, "svcweb", "web", "dnsrr", "", NULL);
    dnsfix_map_task(&a, "t3", "web.1.t3", "svcweb", "10.0.1.3", true, NULL);
    ASSERT_INT_EQ(dnstable_network_update(t, &a.map, errmsg), 0);
    ASSERT_INT_EQ(dnstable_network_count(t), 2);
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, NET_A, "10.0.1.3");
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, NET_A, "FORWARD");
    LOOKUP_EQ(t, "www", DNSTABLE_TYPE_A, NET_A, "FORWARD");
    dnstable_network_remove(t, "netA");
    dnstable_network_remove(t, "never-there");
    ASSERT_INT_EQ(dnstable_network_count(t), 1);
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, NET_AB, "FORWARD");
    LOOKUP_EQ(t, "db", DNSTABLE_TYPE_A, NET_AB, "10.0.2.6");
    dnstable_free(t);
}

TEST(dnstable_bad_map_is_refused_and_changes_nothing)
{
    struct dnstable *t = table_fixture();
    struct dnsfix_map a;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    ASSERT(t != NULL);
    dnsfix_map_init(&a, "netA", "front");
    dnsfix_map_service(&a, "svcweb", "web", "dnsrr", "", NULL);
    dnsfix_map_task(&a, "t3", "web.1.t3", "svcweb", "10.0.1.300", true, NULL);
    ASSERT_INT_EQ(dnstable_network_update(t, &a.map, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "network netA: task t3: address \"10.0.1.300\" is not an IP address");
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, NET_A, "10.0.1.2");
    dnsfix_map_init(&a, "netA", "front");
    dnsfix_map_service(&a, "svcweb", "web", "vip", "vip?", NULL);
    dnsfix_map_task(&a, "t3", "web.1.t3", "svcweb", "10.0.1.3", true, NULL);
    ASSERT_INT_EQ(dnstable_network_update(t, &a.map, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "network netA: service web: VIP \"vip?\" is not an IP address");
    dnsfix_map_init(&a, "", "front");
    ASSERT_INT_EQ(dnstable_network_update(t, &a.map, errmsg), SWARM_EINVAL);
    ASSERT_STR_EQ(errmsg, "network map without a network ID");
    LOOKUP_EQ(t, "tasks.web", DNSTABLE_TYPE_A, NET_A, "10.0.1.3,10.0.1.4");
    dnstable_free(t);
}

TEST(dnstable_ingress_network_has_no_names)
{
    struct dnstable *t;
    struct dnsfix_map m;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    const char *const ing[] = {"ing"};
    ASSERT_INT_EQ(dnstable_new(&t), 0);
    dnsfix_map_init(&m, "ing", "ingress");
    m.spec.ingress = true;
    dnsfix_map_service(&m, "svcweb", "web", "vip", "10.0.0.2", NULL);
    dnsfix_map_task(&m, "t3", "web.1.t3", "svcweb", "10.0.0.3", true, NULL);
    ASSERT_INT_EQ(dnstable_network_update(t, &m.map, errmsg), 0);
    LOOKUP_EQ(t, "web", DNSTABLE_TYPE_A, ing, "FORWARD");
    LOOKUP_EQ(t, "web.1.t3", DNSTABLE_TYPE_A, ing, "FORWARD");
    dnstable_free(t);
}

TEST(dnstable_shared_alias_answers_both_services_and_ipv6_is_aaaa)
{
    struct dnstable *t;
    struct dnsfix_map m;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    static char *shared[] = {"shared", NULL};
    ASSERT_INT_EQ(dnstable_new(&t), 0);
    dnsfix_map_init(&m, "netA", "front");
    dnsfix_map_service(&m, "s1", "one", "vip", "10.0.1.10", shared);
    dnsfix_map_service(&m, "s2", "two", "vip", "10.0.1.20", shared);
    dnsfix_map_service(&m, "s3", "six", "dnsrr", "", NULL);
    dnsfix_map_task(&m, "t1", "one.1.t1", "s1", "10.0.1.11", true, NULL);
    dnsfix_map_task(&m, "t2", "two.1.t2", "s2", "10.0.1.21", true, NULL);
    dnsfix_map_task(&m, "t6", "six.1.t6", "s3", "fd00::6", true, NULL);
    ASSERT_INT_EQ(dnstable_network_update(t, &m.map, errmsg), 0);
    LOOKUP_EQ(t, "shared", DNSTABLE_TYPE_A, NET_A, "10.0.1.10,10.0.1.20");
    LOOKUP_EQ(t, "six", DNSTABLE_TYPE_AAAA, NET_A, "fd00::6");
    LOOKUP_EQ(t, "six", DNSTABLE_TYPE_A, NET_A, "");
    dnstable_free(t);
}

/* 10,000 tasks whose endpoints all carry the service's aliases: each name
 * once per address (an alias list gathered per endpoint made this map
 * take 200 million records, far past the case's timeout). */
TEST(dnstable_big_map_holds_each_name_once_per_address)
{
    enum { TASKS = 10000 };
    static Swarm__NetworkEndpoint eps[TASKS], *epp[TASKS];
    static char strs[TASKS][3][32];
    static const Swarm__NetworkEndpoint ep0 = SWARM__NETWORK_ENDPOINT__INIT;
    static char *aliases[] = {"a1", "A2", NULL};
    struct dnstable *t;
    struct dnsfix_map m;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct dnstable_answer ans = {0};
    ASSERT_INT_EQ(dnstable_new(&t), 0);
    dnsfix_map_init(&m, "netA", "front");
    dnsfix_map_service(&m, "s", "web", "vip", "10.1.0.1", aliases);
    for (int i = 0; i < TASKS; i++) {
        eps[i] = ep0;
        snprintf(strs[i][0], 32, "t%d", i);
        snprintf(strs[i][1], 32, "web.%d.t%d", i + 1, i);
        snprintf(strs[i][2], 32, "10.2.%d.%d", i / 250, i % 250 + 2);
        eps[i].task_id = strs[i][0];
        eps[i].task_name = strs[i][1];
        eps[i].service_id = "s";
        eps[i].addr = strs[i][2];
        eps[i].aliases = aliases;
        eps[i].n_aliases = 2;
        eps[i].ready = true;
        epp[i] = &eps[i];
    }
    m.map.endpoints = epp;
    m.map.n_endpoints = TASKS;
    ASSERT_INT_EQ(dnstable_network_update(t, &m.map, errmsg), 0);
    /* task names + tasks.{web,a1,a2} per task + {web,a1,a2} -> VIP */
    ASSERT_INT_EQ(dnstable_record_count(t), TASKS + 3 * TASKS + 3);
    ASSERT_INT_EQ(dnstable_lookup(t, "tasks.a2", DNSTABLE_TYPE_A, NET_A, 1, &ans), 0);
    ASSERT_INT_EQ(ans.kind, DNSTABLE_FOUND);
    ASSERT_INT_EQ(ans.addrs.len, TASKS);
    dnstable_answer_free(&ans);
    LOOKUP_EQ(t, "a1", DNSTABLE_TYPE_A, NET_A, "10.1.0.1");
    dnstable_free(t);
}

TEST(dnstable_shuffle_keeps_the_set_and_varies_the_order)
{
    struct dnstable_addr a[4];
    uint64_t rng = 42;
    int seen_first[4] = {0};

    for (int round = 0; round < 200; round++) {
        int sum = 0;
        for (int i = 0; i < 4; i++) {
            memset(&a[i], 0, sizeof a[i]);
            a[i].family = 2;
            a[i].a[3] = (unsigned char)(i + 1);
        }
        dnstable_shuffle(a, 4, &rng);
        for (int i = 0; i < 4; i++) {
            sum += 1 << (a[i].a[3] - 1);
        }
        ASSERT_INT_EQ(sum, 15); /* each address exactly once */
        seen_first[a[0].a[3] - 1]++;
    }
    for (int i = 0; i < 4; i++) {
        ASSERT(seen_first[i] > 20); /* every address comes first, often */
    }
}

/* ---- messages ----------------------------------------------------------- */

struct handled {
    enum dnsmsg_action action;
    ldns_pkt *reply;
    size_t len;
};

static int handle(const struct dnstable *t, const char *name, ldns_rr_type type,
                  uint16_t edns, bool tcp, const char *const *nets, size_t n,
                  struct handled *h)
{
    size_t qlen;
    uint8_t *q = dnsfix_query(name, type, 4242, edns, &qlen), *reply = NULL;
    static uint64_t rng = 7;
    int rv = dnsmsg_query_handle(t, q, qlen, nets, n, tcp, &rng, &h->action, &reply,
                                 &h->len);

    h->reply = reply != NULL ? dnsfix_parse(reply, h->len) : NULL;
    free(reply);
    free(q);
    return rv;
}

TEST(dnsmsg_a_query_of_our_name_is_answered)
{
    struct dnstable *t = table_fixture();
    struct handled h;
    char addrs[256];
    ASSERT(t != NULL);
    ASSERT_INT_EQ(handle(t, "tasks.web.", LDNS_RR_TYPE_A, 0, false, NET_A, 1, &h), 0);
    ASSERT_INT_EQ(h.action, DNSMSG_REPLY);
    ASSERT(h.reply != NULL);
    ASSERT_INT_EQ(ldns_pkt_id(h.reply), 4242);
    ASSERT(ldns_pkt_qr(h.reply));
    ASSERT(ldns_pkt_ra(h.reply));
    ASSERT(ldns_pkt_rd(h.reply));
    ASSERT_INT_EQ(ldns_pkt_get_rcode(h.reply), LDNS_RCODE_NOERROR);
    ASSERT_INT_EQ(ldns_pkt_qdcount(h.reply), 1);
    dnsfix_answer_addrs(h.reply, addrs, sizeof addrs);
    ASSERT_STR_EQ(addrs, "10.0.1.3,10.0.1.4");
    ASSERT_INT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(h.reply), 0)), DNSTABLE_TTL);
    ldns_pkt_free(h.reply);
    dnstable_free(t);
}

TEST(dnsmsg_aaaa_of_our_name_is_noerror_without_records)
{
    struct dnstable *t = table_fixture();
    struct handled h;
    ASSERT(t != NULL);
    ASSERT_INT_EQ(handle(t, "web.", LDNS_RR_TYPE_AAAA, 0, false, NET_A, 1, &h), 0);
    ASSERT_INT_EQ(h.action, DNSMSG_REPLY);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(h.reply), LDNS_RCODE_NOERROR);
    ASSERT_INT_EQ(ldns_pkt_ancount(h.reply), 0);
    ldns_pkt_free(h.reply);
    dnstable_free(t);
}

TEST(dnsmsg_other_names_and_other_networks_are_forwarded)
{
    struct dnstable *t = table_fixture();
    struct handled h;
    ASSERT(t != NULL);
    ASSERT_INT_EQ(handle(t, "example.org.", LDNS_RR_TYPE_A, 0, false, NET_A, 1, &h), 0);
    ASSERT_INT_EQ(h.action, DNSMSG_FORWARD);
    ASSERT(h.reply == NULL);
    ASSERT_INT_EQ(handle(t, "web.", LDNS_RR_TYPE_A, 0, false, NET_B, 1, &h), 0);
    ASSERT_INT_EQ(h.action, DNSMSG_FORWARD);
    dnstable_free(t);
}

TEST(dnsmsg_dnsrr_answers_are_shuffled)
{
    struct dnstable *t = table_fixture();
    int first6 = 0, first7 = 0;
    ASSERT(t != NULL);
    for (int i = 0; i < 100; i++) {
        struct handled h;
        char *first;
        ASSERT_INT_EQ(handle(t, "db.", LDNS_RR_TYPE_A, 0, false, NET_A, 1, &h), 0);
        ASSERT_INT_EQ(ldns_pkt_ancount(h.reply), 2);
        first = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(h.reply), 0), 0));
        first6 += strcmp(first, "10.0.1.6") == 0;
        first7 += strcmp(first, "10.0.1.7") == 0;
        free(first);
        ldns_pkt_free(h.reply);
    }
    ASSERT_INT_EQ(first6 + first7, 100);
    ASSERT(first6 > 10 && first7 > 10);
    dnstable_free(t);
}

TEST(dnsmsg_big_answer_is_truncated_over_udp_and_whole_over_tcp)
{
    struct dnstable *t;
    static struct dnsfix_map m;
    static char names[DNSFIX_MAX][32], addrs[DNSFIX_MAX][32];
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct handled h;
    ASSERT_INT_EQ(dnstable_new(&t), 0);
    dnsfix_map_init(&m, "netA", "front");
    dnsfix_map_service(&m, "s", "big", "dnsrr", "", NULL);
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "big.%d.t%d", i + 1, i);
        snprintf(addrs[i], sizeof addrs[i], "10.0.3.%d", i + 1);
        dnsfix_map_task(&m, names[i] + 6, names[i], "s", addrs[i], true, NULL);
    }
    ASSERT_INT_EQ(dnstable_network_update(t, &m.map, errmsg), 0);
    ASSERT_INT_EQ(handle(t, "big.", LDNS_RR_TYPE_A, 0, false, NET_A, 1, &h), 0);
    ASSERT_INT_EQ(h.action, DNSMSG_REPLY);
    ASSERT(h.len <= 512);
    ASSERT(ldns_pkt_tc(h.reply));
    ASSERT(ldns_pkt_ancount(h.reply) > 10 && ldns_pkt_ancount(h.reply) < 100);
    ldns_pkt_free(h.reply);
    ASSERT_INT_EQ(handle(t, "big.", LDNS_RR_TYPE_A, 4096, false, NET_A, 1, &h), 0);
    ASSERT(!ldns_pkt_tc(h.reply));
    ASSERT_INT_EQ(ldns_pkt_ancount(h.reply), 100);
    ldns_pkt_free(h.reply);
    ASSERT_INT_EQ(handle(t, "big.", LDNS_RR_TYPE_A, 0, true, NET_A, 1, &h), 0);
    ASSERT(!ldns_pkt_tc(h.reply));
    ASSERT_INT_EQ(ldns_pkt_ancount(h.reply), 100);
    ldns_pkt_free(h.reply);
    dnstable_free(t);
}

TEST(dnsmsg_bad_queries_get_formerr_notimp_or_nothing)
{
    struct dnstable *t = table_fixture();
    enum dnsmsg_action action;
    uint8_t *wire, *reply;
    size_t len, rlen;
    ldns_pkt *p, *r;
    uint64_t rng = 1;
    ASSERT(t != NULL);
    /* no question */
    p = ldns_pkt_new();
    ldns_pkt_set_id(p, 9);
    ASSERT(ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK);
    ASSERT_INT_EQ(dnsmsg_query_handle(t, wire, len, NET_A, 1, false, &rng, &action,
                                      &reply, &rlen), 0);
    ASSERT_INT_EQ(action, DNSMSG_REPLY);
    r = dnsfix_parse(reply, rlen);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
    ASSERT_INT_EQ(ldns_pkt_id(r), 9);
    ldns_pkt_free(r);
    free(reply);
    free(wire);
    /* an answer (QR set) is never answered */
    ldns_pkt_set_qr(p, true);
    ASSERT(ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK);
    ASSERT_INT_EQ(dnsmsg_query_handle(t, wire, len, NET_A, 1, false, &rng, &action,
                                      &reply, &rlen), 0);
    ASSERT_INT_EQ(action, DNSMSG_DROP);
    ASSERT(reply == NULL);
    free(wire);
    /* another opcode */
    ldns_pkt_set_qr(p, false);
    ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
    ASSERT(ldns_pkt2wire(&wire, p, &len) == LDNS_STATUS_OK);
    ASSERT_INT_EQ(dnsmsg_query_handle(t, wire, len, NET_A, 1, false, &rng, &action,
                                      &reply, &rlen), 0);
    ASSERT_INT_EQ(action, DNSMSG_REPLY);
    r = dnsfix_parse(reply, rlen);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(r), LDNS_RCODE_NOTIMPL);
    ldns_pkt_free(r);
    free(reply);
    free(wire);
    ldns_pkt_free(p);
    dnstable_free(t);
}

/* Random bytes, truncations and bit flips of a valid query: never a crash
 * (ASan runs this too), and always one of the three outcomes. */
TEST(dnsmsg_garbage_and_truncated_bytes_never_crash)
{
    struct dnstable *t = table_fixture();
    uint8_t buf[600];
    uint64_t rng = 99, x = 0x1234567;
    size_t qlen;
    uint8_t *q = dnsfix_query("tasks.web.front.", LDNS_RR_TYPE_A, 77, 1232, &qlen);
    int replies = 0, drops = 0;
    ASSERT(t != NULL && q != NULL && qlen < sizeof buf);
    for (int i = 0; i < 20000; i++) {
        enum dnsmsg_action action;
        uint8_t *reply;
        size_t len, rlen;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (i % 3 == 0) { /* pure noise */
            len = (size_t)(x % sizeof buf);
            for (size_t j = 0; j < len; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[j] = (uint8_t)x;
            }
        } else if (i % 3 == 1) { /* a truncated query */
            len = (size_t)(x % (qlen + 1));
            memcpy(buf, q, len);
        } else { /* a query with a few bytes flipped */
            len = qlen;
            memcpy(buf, q, qlen);
            for (int k = 0; k < 3; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[x % qlen] ^= (uint8_t)(x >> 32);
            }
        }
        ASSERT_INT_EQ(dnsmsg_query_handle(t, buf, len, NET_AB, 2, i % 2 == 0, &rng,
                                          &action, &reply, &rlen), 0);
        if (action == DNSMSG_REPLY) {
            ldns_pkt *r = dnsfix_parse(reply, rlen);
            ASSERT(r != NULL && ldns_pkt_qr(r));
            ldns_pkt_free(r);
            replies++;
        } else {
            ASSERT(reply == NULL);
            drops += action == DNSMSG_DROP;
        }
        free(reply);
    }
    ASSERT(replies > 0 && drops > 0);
    free(q);
    dnstable_free(t);
}

TEST(dnsmsg_forwarded_answer_must_match_and_gets_the_askers_id)
{
    size_t qlen, flen, alen, out_len;
    uint8_t *q = dnsfix_query("example.org.", LDNS_RR_TYPE_A, 1111, 0, &qlen);
    uint8_t *fwd, *ans, *out;
    uint16_t old;
    ldns_pkt *a, *o;
    /* the forwarded copy carries our ID */
    ASSERT_INT_EQ(dnsmsg_id_rewrite(q, qlen, 2222, &old, &fwd, &flen), 0);
    ASSERT_INT_EQ(old, 1111);
    a = dnsfix_parse(fwd, flen);
    ASSERT_INT_EQ(ldns_pkt_id(a), 2222);
    /* the upstream's answer */
    ldns_pkt_set_qr(a, true);
    ldns_pkt_set_rcode(a, LDNS_RCODE_NXDOMAIN);
    ASSERT(ldns_pkt2wire(&ans, a, &alen) == LDNS_STATUS_OK);
    ASSERT_INT_EQ(dnsmsg_answer_relay(ans, alen, q, qlen, 2222, 1111, &out, &out_len), 0);
    o = dnsfix_parse(out, out_len);
    ASSERT_INT_EQ(ldns_pkt_id(o), 1111);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(o), LDNS_RCODE_NXDOMAIN);
    ldns_pkt_free(o);
    free(out);
    /* wrong ID, or the query itself, or garbage: not our answer */
    ASSERT_INT_EQ(dnsmsg_answer_relay(ans, alen, q, qlen, 3333, 1111, &out, &out_len),
                  SWARM_EPROTO);
    ASSERT_INT_EQ(dnsmsg_answer_relay(fwd, flen, q, qlen, 2222, 1111, &out, &out_len),
                  SWARM_EPROTO);
    ASSERT_INT_EQ(dnsmsg_answer_relay(ans, 5, q, qlen, 2222, 1111, &out, &out_len),
                  SWARM_EPROTO);
    free(ans);
    /* an answer to another question */
    {
        ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(a), 0);
        ldns_rdf *prev = ldns_rr_owner(qrr);
        ldns_rr_set_owner(qrr, ldns_dname_new_frm_str("evil.example."));
        ldns_rdf_deep_free(prev);
    }
    ASSERT(ldns_pkt2wire(&ans, a, &alen) == LDNS_STATUS_OK);
    ASSERT_INT_EQ(dnsmsg_answer_relay(ans, alen, q, qlen, 2222, 1111, &out, &out_len),
                  SWARM_EPROTO);
    free(ans);
    ldns_pkt_free(a);
    /* SERVFAIL for the asker */
    ASSERT_INT_EQ(dnsmsg_reply_rcode(q, qlen, LDNS_RCODE_SERVFAIL, &out, &out_len), 0);
    o = dnsfix_parse(out, out_len);
    ASSERT_INT_EQ(ldns_pkt_id(o), 1111);
    ASSERT_INT_EQ(ldns_pkt_get_rcode(o), LDNS_RCODE_SERVFAIL);
    ASSERT_INT_EQ(ldns_pkt_qdcount(o), 1);
    ldns_pkt_free(o);
    free(out);
    free(fwd);
    free(q);
}

TEST_MAIN()
