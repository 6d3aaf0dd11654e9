/* Unit tests of the visualizer's pure parts: who may see it (webauth.h:
 * loopback addresses, token rules, constant-time comparison, bearer
 * headers) and what a live client keeps (webfeed.h: SSE frames shared by
 * reference, a newer state replacing a waiting one, partial reads). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "test.h"
#include "webauth.h"
#include "webfeed.h"

TEST(loopback_addresses)
{
    ASSERT(webauth_addr_is_loopback("127.0.0.1:8080"));
    ASSERT(webauth_addr_is_loopback("127.45.3.9:80"));
    ASSERT(!webauth_addr_is_loopback("0.0.0.0:8080"));
    ASSERT(!webauth_addr_is_loopback("10.0.0.1:8080"));
    ASSERT(!webauth_addr_is_loopback("128.0.0.1:8080"));
}

TEST(token_rules)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(webauth_token_check("0123456789abcdef", errmsg), 0);
    ASSERT_INT_EQ(webauth_token_check("short", errmsg), SWARM_EINVAL);
    ASSERT(strstr(errmsg, "16 to 256 characters") != NULL);
    ASSERT_INT_EQ(webauth_token_check("0123456789abcdef; x=1", errmsg), SWARM_EINVAL);
    ASSERT(strstr(errmsg, "letters, digits") != NULL);
    char long_token[300];
    memset(long_token, 'a', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    ASSERT_INT_EQ(webauth_token_check(long_token, errmsg), SWARM_EINVAL);
}

TEST(token_comparison)
{
    ASSERT(webauth_token_equal("0123456789abcdef", "0123456789abcdef"));
    ASSERT(!webauth_token_equal("0123456789abcdef", "0123456789abcdeF"));
    ASSERT(!webauth_token_equal("0123456789abcdef", "0123456789abcde"));
    ASSERT(!webauth_token_equal("0123456789abcdef", ""));
    ASSERT(!webauth_token_equal("0123456789abcdef", NULL));
}

TEST(bearer_header)
{
    ASSERT_STR_EQ(webauth_bearer("Bearer abc"), "abc");
    ASSERT_STR_EQ(webauth_bearer("bearer   abc"), "abc");
    ASSERT(webauth_bearer("Basic abc") == NULL);
    ASSERT(webauth_bearer(NULL) == NULL);
}

TEST(frames_are_server_sent_events)
{
    struct webfeed_msg *m = webfeed_msg_new("state", "{\"a\":1}", 7);
    ASSERT(m != NULL);
    ASSERT_INT_EQ(m->len, strlen("event: state\ndata: {\"a\":1}\n\n"));
    ASSERT(memcmp(m->data, "event: state\ndata: {\"a\":1}\n\n", m->len) == 0);
    webfeed_msg_unref(m);
    m = webfeed_msg_new(NULL, NULL, 0);
    ASSERT(m != NULL);
    ASSERT_INT_EQ(m->len, 3);
    ASSERT(memcmp(m->data, ":\n\n", 3) == 0);
    webfeed_msg_unref(m);
}

static struct webfeed_msg *frame(const char *text)
{
    struct webfeed_msg *m = webfeed_msg_new("state", text, strlen(text));
    if (m == NULL) {
        abort();
    }
    return m;
}

TEST(a_slow_client_keeps_the_current_frame_and_only_the_latest)
{
    struct webfeed_queue q = {0};
    char buf[256];
    struct webfeed_msg *a = frame("A"), *b = frame("B"), *c = frame("C");
    ASSERT(webfeed_queue_empty(&q));
    ASSERT(!webfeed_queue_push(&q, a));
    /* A is being written: 5 bytes out, the rest later. */
    ASSERT_INT_EQ(webfeed_queue_read(&q, buf, 5), 5);
    ASSERT(!webfeed_queue_push(&q, b));
    ASSERT(webfeed_queue_push(&q, c)); /* B was still waiting: C replaces it */
    ASSERT_INT_EQ(a->refs, 2);
    ASSERT_INT_EQ(b->refs, 1);
    ASSERT_INT_EQ(c->refs, 2);
    size_t n = webfeed_queue_read(&q, buf, sizeof buf - 1);
    buf[n] = '\0';
    ASSERT_STR_EQ(buf, ": state\ndata: A\n\nevent: state\ndata: C\n\n");
    ASSERT(webfeed_queue_empty(&q));
    ASSERT_INT_EQ(webfeed_queue_read(&q, buf, sizeof buf), 0);
    ASSERT_INT_EQ(a->refs, 1);
    ASSERT_INT_EQ(c->refs, 1);
    webfeed_queue_push(&q, a);
    webfeed_queue_push(&q, b);
    webfeed_queue_clear(&q);
    ASSERT(webfeed_queue_empty(&q));
    webfeed_msg_unref(a);
    webfeed_msg_unref(b);
    webfeed_msg_unref(c);
}

TEST_MAIN()
