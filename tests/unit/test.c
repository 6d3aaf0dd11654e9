/* The harness of test.h: registration, the forked runner, reporting. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test_case test_cases[TEST_MAX];
int test_count;
int test_failed_flag;
char test_failure[1024];

static sigjmp_buf *test_jump;  /* where a failure goes; NULL outside a case */
static int test_report_fd = -1; /* the child's end of the pipe to the parent */

void test_register(const struct test_case *tc)
{
    if (test_count == TEST_MAX) {
        fprintf(stderr, "test.h: more than %d cases; raise TEST_MAX\n", TEST_MAX);
        abort();
    }
    test_cases[test_count++] = *tc;
}

void test_fail_(const char *file, int line, const char *fmt, ...)
{
    if (!test_failed_flag) {
        va_list ap;
        int off = snprintf(test_failure, sizeof test_failure, "%s:%d: ", file, line);
        va_start(ap, fmt);
        vsnprintf(test_failure + off, sizeof test_failure - (size_t)off, fmt, ap);
        va_end(ap);
        test_failed_flag = 1;
        if (test_report_fd >= 0) {
            /* Before the teardown runs: it may crash. */
            size_t len = strlen(test_failure), done = 0;
            while (done < len) {
                ssize_t n = write(test_report_fd, test_failure + done, len - done);
                if (n <= 0 && errno != EINTR) {
                    break;
                }
                done += n > 0 ? (size_t)n : 0;
            }
        }
    }
    if (test_jump != NULL) {
        siglongjmp(*test_jump, 1);
    }
}

/* setup, body, teardown; the teardown runs after a failed body too. Returns
 * whether the case failed. */
static int test_run_case(const struct test_case *tc)
{
    sigjmp_buf jump;
    volatile bool set_up = false;
    void *fixture = tc->fixture_size > 0 ? calloc(1, tc->fixture_size) : NULL;

    test_failed_flag = 0;
    test_failure[0] = '\0';
    if (tc->fixture_size > 0 && fixture == NULL) {
        test_jump = NULL;
        test_fail_(__FILE__, __LINE__, "out of memory for the fixture");
        return 1;
    }
    test_jump = &jump;
    if (sigsetjmp(jump, 1) == 0) {
        if (tc->setup != NULL) {
            tc->setup(fixture);
        }
        set_up = true;
        tc->fn(fixture);
    }
    if (set_up && tc->teardown != NULL && sigsetjmp(jump, 1) == 0) {
        tc->teardown(fixture);
    }
    test_jump = NULL;
    free(fixture);
    return test_failed_flag;
}

static int test_timeout_s(void)
{
    const char *s = getenv("TEST_TIMEOUT_S");
    int v = s != NULL ? atoi(s) : 0;
    return v > 0 ? v : 60;
}

static int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A case running in its forked child. */
struct test_child {
    int index; /* in test_cases */
    pid_t pid;
    int fd; /* read end of its report pipe */
    int64_t deadline;
    size_t got;
    char msg[sizeof test_failure];
};

static int test_child_start(int index, struct test_child *c, char *why, size_t size)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, size, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    if ((c->pid = fork()) < 0) {
        snprintf(why, size, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (c->pid == 0) {
        close(fds[0]);
        test_report_fd = fds[1];
        int failed = test_run_case(&test_cases[index]);
        fflush(stdout);
        exit(failed ? 1 : 0); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    close(fds[1]);
    c->index = index;
    c->fd = fds[0];
    c->deadline = test_now_ms() + (int64_t)test_timeout_s() * 1000;
    c->got = 0;
    c->msg[0] = '\0';
    return 0;
}

static void test_child_read(struct test_child *c)
{
    while (c->got < sizeof c->msg - 1) {
        ssize_t n = read(c->fd, c->msg + c->got, sizeof c->msg - 1 - c->got);
        if (n <= 0) {
            break;
        }
        c->got += (size_t)n;
    }
    c->msg[c->got] = '\0';
}

/* The child is gone (status) or timed out: its verdict into `why` (empty
 * when it passed). */
static void test_child_verdict(struct test_child *c, int status, bool timed_out, char *why,
                               size_t size)
{
    test_child_read(c);
    close(c->fd);
    why[0] = '\0';
    if (c->got > 0) {
        snprintf(why, size, "%s", c->msg);
    } else if (timed_out) {
        snprintf(why, size, "timed out after %d s", test_timeout_s());
    } else if (WIFSIGNALED(status)) {
        snprintf(why, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(why, size, "exited with status %d", WEXITSTATUS(status));
    }
}

static int test_jobs(void)
{
    const char *s = getenv("TEST_JOBS");
    int v = s != NULL ? atoi(s) : 0;
    return v > 0 ? (v < 64 ? v : 64) : 4;
}

struct test_result {
    bool selected, done, failed;
    char why[sizeof test_failure];
};

static bool test_selected(const struct test_case *tc, int argc, char **argv)
{
    bool named = false;
    for (int j = 1; j < argc; j++) {
        named |= strcmp(argv[j], tc->name) == 0;
    }
    return argc >= 2 ? named : !tc->explicit_only;
}

/* Print finished results in registration order. */
static void test_print_ready(struct test_result *res, int *next, int *passed, int *failed)
{
    while (*next < test_count && (!res[*next].selected || res[*next].done)) {
        struct test_result *r = &res[*next];
        if (r->selected) {
            if (r->failed) {
                printf("FAIL %s: %s\n", test_cases[*next].name, r->why);
                (*failed)++;
            } else {
                printf("PASS %s\n", test_cases[*next].name);
                (*passed)++;
            }
            fflush(stdout);
        }
        (*next)++;
    }
}

/* Up to TEST_JOBS cases at once (default 4: most wait on timers and
 * sockets), each in its own child; results are printed in file order. */
static void test_run_all_forked(struct test_result *res, int *passed, int *failed)
{
    struct test_child kids[64];
    int nkids = 0, jobs = test_jobs(), start = 0, next = 0;
    for (;;) {
        while (nkids < jobs && start < test_count) {
            int i = start++;
            if (!res[i].selected) {
                continue;
            }
            if (test_child_start(i, &kids[nkids], res[i].why, sizeof res[i].why) != 0) {
                res[i].done = res[i].failed = true;
                continue;
            }
            nkids++;
        }
        test_print_ready(res, &next, passed, failed);
        if (nkids == 0) {
            break;
        }
        struct pollfd pfds[64];
        for (int k = 0; k < nkids; k++) {
            pfds[k] = (struct pollfd){kids[k].fd, POLLIN, 0};
        }
        (void)poll(pfds, (nfds_t)nkids, 20);
        for (int k = 0; k < nkids; k++) {
            struct test_child *c = &kids[k];
            int status = 0;
            bool timed_out = false, gone;
            if (pfds[k].revents & POLLIN) {
                ssize_t n = c->got < sizeof c->msg - 1
                                ? read(c->fd, c->msg + c->got, sizeof c->msg - 1 - c->got)
                                : 0;
                c->got += n > 0 ? (size_t)n : 0;
            }
            /* Until the child is gone, not until EOF: a process the case
             * started may still hold the pipe. */
            gone = waitpid(c->pid, &status, WNOHANG) == c->pid;
            if (!gone && test_now_ms() >= c->deadline) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &status, 0);
                gone = timed_out = true;
            }
            if (!gone) {
                continue;
            }
            fcntl(c->fd, F_SETFL, O_NONBLOCK);
            test_child_verdict(c, status, timed_out, res[c->index].why, sizeof res[c->index].why);
            res[c->index].done = true;
            res[c->index].failed = res[c->index].why[0] != '\0';
            kids[k] = kids[--nkids];
            pfds[k] = pfds[nkids];
            k--;
        }
    }
}

int test_main(int argc, char **argv)
{
    static struct test_result res[TEST_MAX];
    int passed = 0, failed = 0, next = 0;
    bool nofork = getenv("TEST_NOFORK") != NULL && strcmp(getenv("TEST_NOFORK"), "0") != 0;
    for (int i = 0; i < test_count; i++) {
        res[i].selected = test_selected(&test_cases[i], argc, argv);
    }
    if (!nofork) {
        test_run_all_forked(res, &passed, &failed);
    } else {
        for (int i = 0; i < test_count; i++) {
            if (res[i].selected) {
                res[i].failed = test_run_case(&test_cases[i]) != 0;
                snprintf(res[i].why, sizeof res[i].why, "%s", test_failure);
                res[i].done = true;
            }
            test_print_ready(res, &next, &passed, &failed);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
