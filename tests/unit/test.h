/* A minimal unit-test harness. Each test binary defines tests with TEST(),
 * and TEST_MAIN() runs them all (or those named on the command line), printing
 * one line per test, "PASS name" or "FAIL name: file:line: what", then
 * "N passed, N failed". The binary exits non-zero if any test failed. */
#ifndef SWARM_TEST_H
#define SWARM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define TEST_MAX 256
extern struct test_case test_cases[TEST_MAX];
extern int test_count;
extern int test_failed_flag;
extern char test_failure[1024];

#define TEST(tname)                                                      \
    static void test_##tname(void);                                      \
    __attribute__((constructor)) static void test_register_##tname(void) \
    {                                                                    \
        test_cases[test_count].name = #tname;                            \
        test_cases[test_count].fn = test_##tname;                        \
        test_count++;                                                    \
    }                                                                    \
    static void test_##tname(void)

/* Fail the current test and return from it. */
#define FAILF(...)                                                     \
    do {                                                               \
        int off_ = snprintf(test_failure, sizeof test_failure,         \
                            "%s:%d: ", __FILE__, __LINE__);            \
        snprintf(test_failure + off_, sizeof test_failure - (size_t)off_, \
                 __VA_ARGS__);                                         \
        test_failed_flag = 1;                                          \
        return;                                                        \
    } while (0)

#define ASSERT(cond)                          \
    do {                                      \
        if (!(cond)) {                        \
            FAILF("assertion failed: %s", #cond); \
        }                                     \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                             \
    do {                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);             \
        if (a_ != b_) {                                                 \
            FAILF("%s == %s: %lld != %lld", #a, #b, a_, b_);            \
        }                                                               \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                             \
    do {                                                                \
        const char *a_ = (a), *b_ = (b);                                \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {          \
            FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b,                 \
                  a_ ? a_ : "(null)", b_ ? b_ : "(null)");              \
        }                                                               \
    } while (0)

#define TEST_MAIN()                                                         \
    struct test_case test_cases[TEST_MAX];                                  \
    int test_count;                                                         \
    int test_failed_flag;                                                   \
    char test_failure[1024];                                                \
    int main(int argc, char **argv)                                         \
    {                                                                       \
        int passed = 0, failed = 0;                                         \
        for (int i = 0; i < test_count; i++) {                              \
            int selected = argc < 2;                                        \
            for (int j = 1; j < argc; j++) {                                \
                selected |= strcmp(argv[j], test_cases[i].name) == 0;       \
            }                                                               \
            if (!selected) {                                                \
                continue;                                                   \
            }                                                               \
            test_failed_flag = 0;                                           \
            test_failure[0] = '\0';                                         \
            test_cases[i].fn();                                             \
            if (test_failed_flag) {                                         \
                printf("FAIL %s: %s\n", test_cases[i].name, test_failure);  \
                failed++;                                                   \
            } else {                                                        \
                printf("PASS %s\n", test_cases[i].name);                    \
                passed++;                                                   \
            }                                                               \
            fflush(stdout);                                                 \
        }                                                                   \
        printf("%d passed, %d failed\n", passed, failed);                   \
        return failed ? 1 : 0;                                              \
    }

#endif
