/* Tests of the harness itself (test.h): a failed assertion still runs the
 * case's teardown and skips the rest of the body; a crash, a hang and a
 * dirty global stay in their case; the next case passes. The demo_* cases
 * fail on purpose, so they are TEST_EXPLICIT: they run only when this
 * binary runs itself with their names (and then report FAIL, as they
 * should). Their teardowns append to the file named by $TEST_HARNESS_MARK. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static void mark(const char *what)
{
    const char *path = getenv("TEST_HARNESS_MARK");
    FILE *f = path != NULL ? fopen(path, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "%s\n", what);
        fclose(f);
    }
}

struct demo_fx {
    int value;
};

static void demo_setup(struct demo_fx *f)
{
    f->value = 42;
}

static void demo_teardown(struct demo_fx *f)
{
    char line[64];
    snprintf(line, sizeof line, "teardown value=%d", f->value);
    mark(line);
}

static void demo_helper_fails(void)
{
    ASSERT_INT_EQ(1 + 1, 3);
}

TEST_F_EXPLICIT(demo_fails_in_helper, struct demo_fx, demo_setup, demo_teardown)
{
    f->value = 7;
    demo_helper_fails();
    mark("body went on after the failure"); /* never: the failure left the case */
}

static int dirty;

TEST_EXPLICIT(demo_dirties_a_global)
{
    dirty = 1;
    ASSERT(dirty == 0);
}

TEST_EXPLICIT(demo_sees_a_clean_global)
{
    ASSERT_INT_EQ(dirty, 0);
}

TEST_EXPLICIT(demo_crashes)
{
    abort(); /* as a failed assert() would; ASan would catch a SIGSEGV itself */
}

TEST_EXPLICIT(demo_hangs)
{
    pause();
}

TEST_F_EXPLICIT(demo_passes, struct demo_fx, demo_setup, demo_teardown)
{
    ASSERT_INT_EQ(f->value, 42); /* setup ran, in this case's own fixture */
}

/* Run this binary on the demo cases; its output into `out`. */
static int run_demos(const char *markfile, char *out, size_t size)
{
    char cmd[512];
    size_t n = 0;
    snprintf(cmd, sizeof cmd,
             "TEST_HARNESS_MARK=%s TEST_TIMEOUT_S=2 TEST_JOBS=%s /proc/%d/exe "
             "demo_fails_in_helper demo_dirties_a_global demo_sees_a_clean_global "
             "demo_crashes demo_hangs demo_passes 2>/dev/null",
             markfile, getenv("DEMO_JOBS"), (int)getpid());
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        return -1;
    }
    while (n < size - 1 && fgets(out + n, (int)(size - n), p) != NULL) {
        n += strlen(out + n);
    }
    return pclose(p);
}

static void check_demos(const char *jobs)
{
    char markfile[] = "/tmp/test_harness.XXXXXX", out[4096] = "", marks[256] = "";
    int fd = mkstemp(markfile);
    ASSERT(fd >= 0);
    close(fd);
    setenv("DEMO_JOBS", jobs, 1);
    int status = run_demos(markfile, out, sizeof out);
    FILE *m = fopen(markfile, "r");
    size_t got = m != NULL ? fread(marks, 1, sizeof marks - 1, m) : 0;
    marks[got] = '\0';
    if (m != NULL) {
        fclose(m);
    }
    unlink(markfile);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    /* The failure names the helper's line and stops the case there... */
    ASSERT(strstr(out, "FAIL demo_fails_in_helper: ") != NULL);
    ASSERT(strstr(out, "test_harness.c:") != NULL);
    ASSERT(strstr(out, "1 + 1 == 3: 2 != 3\n") != NULL);
    /* ...whose teardown still ran, on its own fixture; so did the passing
     * case's (in either order when cases run in parallel). */
    ASSERT(strstr(marks, "teardown value=7\n") != NULL);
    ASSERT(strstr(marks, "teardown value=42\n") != NULL);
    ASSERT(strstr(marks, "body went on") == NULL);
    ASSERT_INT_EQ(strlen(marks), strlen("teardown value=7\nteardown value=42\n"));
    ASSERT(strstr(out, "FAIL demo_dirties_a_global: ") != NULL);
    ASSERT(strstr(out, "PASS demo_sees_a_clean_global\n") != NULL);
    ASSERT(strstr(out, "FAIL demo_crashes: killed by signal 6") != NULL);
    ASSERT(strstr(out, "FAIL demo_hangs: timed out after 2 s\n") != NULL);
    ASSERT(strstr(out, "PASS demo_passes\n") != NULL);
    /* In file order, whatever order they finished in. */
    ASSERT(strstr(out, "demo_fails_in_helper") < strstr(out, "demo_dirties_a_global"));
    ASSERT(strstr(out, "demo_hangs") < strstr(out, "demo_passes"));
    ASSERT(strstr(out, "\n2 passed, 4 failed\n") != NULL);
}

TEST(failures_stay_in_their_case_one_at_a_time)
{
    check_demos("1");
}

TEST(failures_stay_in_their_case_in_parallel)
{
    check_demos("4");
}

TEST_MAIN()
