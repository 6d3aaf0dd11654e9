/* Unit tests of common/: base36 IDs and error codes/messages. */
#include <string.h>

#include "caps.h"
#include "err.h"
#include "id.h"
#include "log.h"
#include "runtime.h"
#include "test.h"

TEST(base36_zero_pads_with_zeros)
{
    uint8_t zero[16] = {0};
    char out[ID_LEN + 1];
    ASSERT_INT_EQ(base36_encode(zero, sizeof zero, ID_LEN, out), 0);
    ASSERT_STR_EQ(out, "0000000000000000000000000");
}

TEST(base36_known_values)
{
    uint8_t v35[] = {35}, v36[] = {36}, v1295[] = {0x05, 0x0f}; /* 1295 = 36^2 - 1 */
    char out[8];
    ASSERT_INT_EQ(base36_encode(v35, sizeof v35, 3, out), 0);
    ASSERT_STR_EQ(out, "00z");
    ASSERT_INT_EQ(base36_encode(v36, sizeof v36, 3, out), 0);
    ASSERT_STR_EQ(out, "010");
    ASSERT_INT_EQ(base36_encode(v1295, sizeof v1295, 2, out), 0);
    ASSERT_STR_EQ(out, "zz");
}

TEST(base36_max_128_bits_fits_25)
{
    uint8_t ff[16];
    char out[ID_LEN + 1];
    memset(ff, 0xff, sizeof ff);
    ASSERT_INT_EQ(base36_encode(ff, sizeof ff, ID_LEN, out), 0);
    /* 2^128 - 1 in base 36. */
    ASSERT_STR_EQ(out, "f5lxx1zz5pnorynqglhzmsp33");
    ASSERT(id_is_valid(out));
}

TEST(base36_max_256_bits_fits_50)
{
    uint8_t ff[32];
    char out[51];
    memset(ff, 0xff, sizeof ff);
    ASSERT_INT_EQ(base36_encode(ff, sizeof ff, 50, out), 0);
    ASSERT_INT_EQ(strlen(out), 50);
    ASSERT(out[0] != '0'); /* 36^49 < 2^256: all 50 digits are needed */
    ASSERT_STR_EQ(out, "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof");
}

TEST(base36_overflow_returns_minus_one)
{
    uint8_t ff[16], v36[] = {36};
    char out[ID_LEN + 1];
    memset(ff, 0xff, sizeof ff);
    ASSERT_INT_EQ(base36_encode(ff, sizeof ff, ID_LEN - 1, out), -1);
    ASSERT_INT_EQ(base36_encode(v36, sizeof v36, 1, out), -1);
    ASSERT_INT_EQ(base36_encode(v36, sizeof v36, 0, out), -1);
}

TEST(id_generate_valid_and_distinct)
{
    char ids[64][ID_LEN + 1];
    for (int i = 0; i < 64; i++) {
        ASSERT_INT_EQ(id_generate(ids[i]), 0);
        ASSERT_INT_EQ(strlen(ids[i]), ID_LEN);
        ASSERT(id_is_valid(ids[i]));
        for (int j = 0; j < i; j++) {
            ASSERT(strcmp(ids[i], ids[j]) != 0);
        }
    }
}

TEST(id_is_valid_rejects_bad_ids)
{
    ASSERT(id_is_valid("0123456789abcdefghijklmno"));
    ASSERT(!id_is_valid(""));
    ASSERT(!id_is_valid("0123456789abcdefghijklmn"));   /* 24 */
    ASSERT(!id_is_valid("0123456789abcdefghijklmnop")); /* 26 */
    ASSERT(!id_is_valid("0123456789ABCDEFGHIJKLMNO"));  /* upper case */
    ASSERT(!id_is_valid("0123456789abcdefghijklm-o"));
    ASSERT(!id_is_valid("0123456789abcdefghijklm o"));
}

TEST(id_is_path_safe_refuses_paths)
{
    ASSERT(id_is_path_safe("0123456789abcdefghijklmno"));
    ASSERT(id_is_path_safe("task-1_x.Y"));
    ASSERT(!id_is_path_safe(NULL));
    ASSERT(!id_is_path_safe(""));
    ASSERT(!id_is_path_safe("."));
    ASSERT(!id_is_path_safe(".."));
    ASSERT(!id_is_path_safe("../x"));
    ASSERT(!id_is_path_safe("x..y"));
    ASSERT(!id_is_path_safe("a/b"));
    ASSERT(!id_is_path_safe("/etc"));
    ASSERT(!id_is_path_safe("a b"));
    ASSERT(!id_is_path_safe("a\nb"));
    char longid[ID_PATH_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    ASSERT(!id_is_path_safe(longid));
    longid[ID_PATH_MAX] = '\0';
    ASSERT(id_is_path_safe(longid));
}

TEST(strerror_texts)
{
    ASSERT_STR_EQ(swarm_strerror(0), "success");
    ASSERT_STR_EQ(swarm_strerror(SWARM_ENOTFOUND), "not found");
    ASSERT_STR_EQ(swarm_strerror(SWARM_EAMBIGUOUS), "ambiguous");
    ASSERT_STR_EQ(swarm_strerror(SWARM_ERAFT), "raft error");
    ASSERT_STR_EQ(swarm_strerror(-9999), "unknown error");
    ASSERT_STR_EQ(swarm_strerror(1), "unknown error");
}

TEST(errmsg_printf_and_wrapf)
{
    char buf[SWARM_ERRMSG_SIZE];
    char small[12];
    errmsg_printf(buf, sizeof buf, "open %s: %d", "store.db", 5);
    ASSERT_STR_EQ(buf, "open store.db: 5");
    errmsg_wrapf(buf, sizeof buf, "start %s", "manager");
    ASSERT_STR_EQ(buf, "start manager: open store.db: 5");
    errmsg_wrapf(buf, sizeof buf, "swarmd");
    ASSERT_STR_EQ(buf, "swarmd: start manager: open store.db: 5");
    /* Truncated, still terminated. */
    errmsg_printf(small, sizeof small, "%s", "a rather long message");
    ASSERT_STR_EQ(small, "a rather lo");
    errmsg_wrapf(small, sizeof small, "prefix");
    ASSERT_STR_EQ(small, "prefix: a r");
    /* NULL buffers are ignored. */
    errmsg_printf(NULL, 0, "x");
    errmsg_wrapf(NULL, 0, "x");
}

/* A burst passes, then one line per period; the dropped lines are counted
 * and reported once with the next line that passes. */
TEST(log_limit_burst_refill_and_suppressed_count)
{
    struct log_limit lim = {0};
    unsigned sup = 99;
    for (int i = 0; i < LOG_LIMIT_BURST; i++) {
        ASSERT_INT_EQ(log_limit_take(&lim, 1000, &sup), 1);
        ASSERT_INT_EQ(sup, 0);
    }
    ASSERT_INT_EQ(log_limit_take(&lim, 1000, &sup), 0);
    ASSERT_INT_EQ(log_limit_take(&lim, 1000 + LOG_LIMIT_PERIOD_MS - 1, &sup), 0);
    ASSERT_INT_EQ(log_limit_take(&lim, 1000 + LOG_LIMIT_PERIOD_MS, &sup), 1);
    ASSERT_INT_EQ(sup, 2);
    ASSERT_INT_EQ(log_limit_take(&lim, 1000 + LOG_LIMIT_PERIOD_MS, &sup), 0);
    /* A long quiet spell refills the bucket, never beyond the burst. */
    for (int i = 0; i < LOG_LIMIT_BURST; i++) {
        ASSERT_INT_EQ(log_limit_take(&lim, 1000000, &sup), 1);
    }
    ASSERT_INT_EQ(sup, 0);
    ASSERT_INT_EQ(log_limit_take(&lim, 1000000, NULL), 0);
}

/* The runtime rule (README "Containers"): every image Docker names with a
 * registry host, a tag or a digest is a container; paths and bare words are
 * programs on the host, as before. */
TEST(runtime_rule)
{
    static const char *const containers[] = {
        "busybox:1", "busybox:latest", "busybox@sha256:0123abcd",
        "127.0.0.1:5000/busybox:1", "127.0.0.1:5000/busybox", "localhost/x", "quay.io/a/b",
        "library/nginx", "myorg/app", "registry:5000/x@sha256:00",
    };
    static const char *const processes[] = {"sleep", "nginx", "/bin/sleep", "./prog",
                                            "../bin/prog", "", "python3"};
    for (size_t i = 0; i < sizeof containers / sizeof *containers; i++) {
        ASSERT_STR_EQ(runtime_of_image(containers[i]), "container");
    }
    for (size_t i = 0; i < sizeof processes / sizeof *processes; i++) {
        ASSERT_STR_EQ(runtime_of_image(processes[i]), "process");
    }
    ASSERT_STR_EQ(runtime_of_image(NULL), "process");
    /* An explicit runtime wins; anything else is the rule. */
    ASSERT_STR_EQ(runtime_resolve("container", "nginx"), "container");
    ASSERT_STR_EQ(runtime_resolve("process", "busybox:1"), "process");
    ASSERT_STR_EQ(runtime_resolve("", "busybox:1"), "container");
    ASSERT_STR_EQ(runtime_resolve(NULL, "sleep"), "process");
    ASSERT(runtime_is_known("process") && runtime_is_known("container"));
    ASSERT(!runtime_is_known("") && !runtime_is_known("Container") && !runtime_is_known(NULL));
}

TEST(caps_names_and_sets)
{
    ASSERT_INT_EQ(caps_lookup("NET_ADMIN"), 12);
    ASSERT_INT_EQ(caps_lookup("cap_net_admin"), 12);
    ASSERT_INT_EQ(caps_lookup("CAP_CHOWN"), 0);
    ASSERT_INT_EQ(caps_lookup("all"), CAPS_ALL);
    ASSERT_INT_EQ(caps_lookup("CAP_FOO"), -1);
    ASSERT_INT_EQ(caps_lookup(""), -1);
    ASSERT_STR_EQ(caps_name(21), "CAP_SYS_ADMIN");
    ASSERT(caps_name(CAPS_COUNT) == NULL);
    ASSERT(caps_effective(NULL, 0, NULL, 0) == CAPS_DOCKER_DEFAULT);
    char *add[] = {"NET_ADMIN"}, *drop[] = {"chown", "CAP_NET_RAW"}, *all[] = {"ALL"};
    uint64_t set = caps_effective(add, 1, drop, 2);
    ASSERT(set & (UINT64_C(1) << 12));
    ASSERT(!(set & 1) && !(set & (UINT64_C(1) << 13)));
    ASSERT(caps_effective(add, 1, all, 1) == UINT64_C(1) << 12); /* add wins over drop ALL */
    ASSERT(caps_effective(all, 1, NULL, 0) == (UINT64_C(1) << CAPS_COUNT) - 1);
}

TEST_MAIN()
