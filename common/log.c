#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level current_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    current_level = level;
}

int log_parse_level(const char *name, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char stamp[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < current_level) {
        return;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03dZ %-5s %s: ", stamp, (int)(tv.tv_usec / 1000),
            tags[level], module);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int log_limit_take(struct log_limit *lim, unsigned long long now_ms, unsigned *suppressed)
{
    if (!lim->started) {
        lim->started = 1;
        lim->tokens = LOG_LIMIT_BURST;
        lim->last_ms = now_ms;
    }
    if (now_ms > lim->last_ms) {
        unsigned long long refill = (now_ms - lim->last_ms) / LOG_LIMIT_PERIOD_MS;
        if (refill > 0) {
            lim->tokens = refill >= LOG_LIMIT_BURST - lim->tokens
                              ? LOG_LIMIT_BURST
                              : lim->tokens + (unsigned)refill;
            lim->last_ms += refill * LOG_LIMIT_PERIOD_MS;
        }
    }
    if (lim->tokens == 0) {
        if (lim->suppressed < UINT32_MAX) {
            lim->suppressed++;
        }
        return 0;
    }
    lim->tokens--;
    if (suppressed != NULL) {
        *suppressed = lim->suppressed;
    }
    lim->suppressed = 0;
    return 1;
}

void log_write_limited(struct log_limit *lim, enum log_level level, const char *module,
                       const char *fmt, ...)
{
    struct timespec ts;
    unsigned suppressed = 0;
    char line[1024];
    va_list ap;
    if (level < current_level) {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (!log_limit_take(lim, (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000,
                        &suppressed)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (suppressed > 0) {
        log_write(level, module, "%s (%u similar messages suppressed)", line, suppressed);
    } else {
        log_write(level, module, "%s", line);
    }
}
