/* Leveled logging to stderr: "<time> <level> <module>: message". */
#ifndef SWARM_COMMON_LOG_H
#define SWARM_COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
/* Parses debug|info|warn|error; returns 0 or -1 for an unknown name. */
int log_parse_level(const char *name, enum log_level *out);
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) log_write(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_write(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)

/* A token bucket per reason, for messages a peer can provoke at will (audit
 * lines about refused certificates, tokens, raft peers): LOG_LIMIT_BURST
 * lines at once, then one per LOG_LIMIT_PERIOD_MS; what is dropped is
 * counted and reported with the next line that passes. Zero-initialise
 * (static struct log_limit lim;). */
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_PERIOD_MS 1000

struct log_limit {
    unsigned tokens;
    unsigned suppressed;
    unsigned long long last_ms; /* when tokens were last refilled */
    int started;
};

/* Pure decision at `now_ms` (any monotonic clock): true if a line may be
 * written now; then *suppressed (may be NULL) is the number of lines dropped
 * since the last one that passed, and the count restarts. */
int log_limit_take(struct log_limit *lim, unsigned long long now_ms, unsigned *suppressed);

/* log_write at `level` if `lim` lets it pass (monotonic clock), with
 * " (N similar messages suppressed)" appended after a gap. */
void log_write_limited(struct log_limit *lim, enum log_level level, const char *module,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_warn_limited(lim, mod, ...) log_write_limited(lim, LOG_WARN, mod, __VA_ARGS__)

#endif
