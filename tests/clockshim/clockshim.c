/* A clock moved forward, for tests: LD_PRELOAD this into swarmd (and
 * swarmctl) with SWARM_CLOCK_OFFSET_FILE naming a file that holds a number
 * of seconds; time(), gettimeofday() and clock_gettime(CLOCK_REALTIME*) then
 * answer the real wall clock plus that offset. The file is read again at
 * most every 100 ms (of the real monotonic clock), so a test moves the clock
 * of running processes by rewriting it. Monotonic clocks are left alone:
 * timers keep their pace, as on a host whose wall clock jumped. OpenSSL
 * checks certificate validity with time(), so expiry follows the offset.
 *
 * SWARM_CLOCK_MONO_OFFSET_FILE (milliseconds) moves the monotonic clocks
 * instead: raising it by N makes the process's event loop see N ms pass at
 * once, exactly as after a callback that held the loop for N ms, without
 * the kernel having held anything back (a stalled loop, made on demand). */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_s;
static long long mono_offset_ms;
static long long last_read_ns = -1000000000LL;

static long long real_mono_ns(void)
{
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The number held by the file named by $var, into *out (unchanged when
 * there is no such file). */
static void read_offset(const char *var, long long *out)
{
    const char *path = getenv(var);
    char buf[32];
    int fd;
    ssize_t n;
    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return;
    }
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        *out = strtoll(buf, NULL, 10);
    }
}

static void refresh(void)
{
    long long now = real_mono_ns();
    if (now - last_read_ns < 100000000LL) {
        return;
    }
    last_read_ns = now;
    read_offset("SWARM_CLOCK_OFFSET_FILE", &offset_s);
    read_offset("SWARM_CLOCK_MONO_OFFSET_FILE", &mono_offset_ms);
}

static int real_clock_gettime(clockid_t clk, struct timespec *ts)
{
    return (int)syscall(SYS_clock_gettime, clk, ts);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    int rv = real_clock_gettime(clk, ts);
    if (rv == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
        refresh();
        ts->tv_sec += (time_t)offset_s;
    } else if (rv == 0 && (clk == CLOCK_MONOTONIC || clk == CLOCK_MONOTONIC_COARSE ||
                           clk == CLOCK_MONOTONIC_RAW || clk == CLOCK_BOOTTIME)) {
        long long ns;
        refresh();
        ns = (long long)ts->tv_nsec + (mono_offset_ms % 1000) * 1000000LL;
        ts->tv_sec += (time_t)(mono_offset_ms / 1000 + ns / 1000000000LL);
        ts->tv_nsec = (long)(ns % 1000000000LL);
    }
    return rv;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return -1;
    }
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL) {
        *out = ts.tv_sec;
    }
    return ts.tv_sec;
}
