/* A minimal unit-test harness, after libuv's process-per-test runner and
 * munit's setUp/tearDown.
 *
 * Each binary defines cases with TEST() (or TEST_F() with a fixture) and
 * ends with TEST_MAIN(), which runs them all (or those named on the command
 * line) and prints one line per case, "PASS name" or "FAIL name: why", then
 * "N passed, N failed"; the binary exits non-zero if any case failed.
 *
 * Isolation: every case runs in its own forked child, so a crash, a leak, a
 * handle left open or a global left dirty never reaches the next case. A
 * failed assertion jumps out of the case at once (from any depth: helpers,
 * loop callbacks) back to the runner in that child, which then runs the
 * case's teardown; the failure reaches the parent before the teardown runs,
 * so it is reported even if the teardown crashes. The parent reports a case
 * that crashed ("killed by signal N"), exited non-zero (e.g. a leak found by
 * LeakSanitizer) or ran longer than TEST_TIMEOUT_S seconds (default 60,
 * "timed out") as failed, and goes on with the next one.
 *
 * Fixtures: TEST_F(name, type, setup, teardown) gives the body a zeroed
 * `type *f`; setup(f) runs first (in the child), teardown(f) after the body
 * whether it passed or failed. A failure in setup fails the case without
 * running the body or the teardown: setup undoes its own partial work (the
 * child exits anyway). A failure in teardown fails the case too.
 *
 * TEST_NOFORK=1 runs the cases in the runner's process (for a debugger):
 * teardown still runs after a failure, but nothing else is isolated.
 * TEST_EXPLICIT() and TEST_F_EXPLICIT() cases run only when named on the
 * command line (the harness's own tests use them to fail on purpose).
 * TEST_JOBS=N runs up to N cases at once (default 4); the results are
 * printed in file order all the same. */
#ifndef SWARM_TEST_H
#define SWARM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void *fixture);
    void (*setup)(void *fixture);    /* NULL: none */
    void (*teardown)(void *fixture); /* NULL: none */
    size_t fixture_size;
    bool explicit_only;
};

#define TEST_MAX 256
extern struct test_case test_cases[TEST_MAX];
extern int test_count;
/* Set once the running case failed (readable by tests, e.g. after a helper). */
extern int test_failed_flag;
extern char test_failure[1024];

void test_register(const struct test_case *tc);
/* Record the failure (the first one wins) and leave the case; returns only
 * when no case is running. */
void test_fail_(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int test_main(int argc, char **argv);

#define TEST_DEFINE_(tname, explicit_)                                     \
    static void test_##tname(void);                                        \
    static void test_run_##tname(void *f_)                                 \
    {                                                                      \
        (void)f_;                                                          \
        test_##tname();                                                    \
    }                                                                      \
    __attribute__((constructor)) static void test_register_##tname(void)   \
    {                                                                      \
        struct test_case tc_ = {#tname, test_run_##tname, NULL, NULL, 0,   \
                                explicit_};                                \
        test_register(&tc_);                                               \
    }                                                                      \
    static void test_##tname(void)

#define TEST(tname) TEST_DEFINE_(tname, false)
#define TEST_EXPLICIT(tname) TEST_DEFINE_(tname, true)

#define TEST_F_DEFINE_(tname, ftype, fsetup, fteardown, explicit_)         \
    static void test_##tname(ftype *f);                                    \
    static void test_run_##tname(void *f_)                                 \
    {                                                                      \
        test_##tname((ftype *)f_);                                         \
    }                                                                      \
    static void test_setup_##tname(void *f_)                               \
    {                                                                      \
        fsetup((ftype *)f_);                                               \
    }                                                                      \
    static void test_teardown_##tname(void *f_)                            \
    {                                                                      \
        fteardown((ftype *)f_);                                            \
    }                                                                      \
    __attribute__((constructor)) static void test_register_##tname(void)   \
    {                                                                      \
        struct test_case tc_ = {#tname, test_run_##tname,                  \
                                test_setup_##tname, test_teardown_##tname, \
                                sizeof(ftype), explicit_};                 \
        test_register(&tc_);                                               \
    }                                                                      \
    static void test_##tname(ftype *f)

#define TEST_F(tname, ftype, fsetup, fteardown) \
    TEST_F_DEFINE_(tname, ftype, fsetup, fteardown, false)
#define TEST_F_EXPLICIT(tname, ftype, fsetup, fteardown) \
    TEST_F_DEFINE_(tname, ftype, fsetup, fteardown, true)

/* Fail the current case and leave it (teardown still runs). The `return`
 * is never reached while a case runs; it keeps FAILF a statement that
 * ends the function in every context. */
#define FAILF(...)                                        \
    do {                                                  \
        test_fail_(__FILE__, __LINE__, __VA_ARGS__);      \
        return;                                           \
    } while (0)

#define ASSERT(cond)                              \
    do {                                          \
        if (!(cond)) {                            \
            FAILF("assertion failed: %s", #cond); \
        }                                         \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                  \
    do {                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);  \
        if (a_ != b_) {                                      \
            FAILF("%s == %s: %lld != %lld", #a, #b, a_, b_); \
        }                                                    \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                \
    do {                                                   \
        const char *a_ = (a), *b_ = (b);                   \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) { \
            FAILF("%s == %s: \"%s\" != \"%s\"", #a, #b,    \
                  a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
        }                                                  \
    } while (0)

#define TEST_MAIN()                     \
    int main(int argc, char **argv)     \
    {                                   \
        return test_main(argc, argv);   \
    }

#endif
