/* Text formatting that matches Docker's CLI byte for byte: the table layout
 * of Go's text/tabwriter, go-units' HumanDuration and BytesSize, Go's
 * time.ParseDuration and Duration.String. Docker users read these outputs
 * with their eyes and with scripts, so the exact shapes matter. */
#include "format.h"
#include "err.h"
#include "escape.h"
#include "vec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ tables */

struct cli_table_row {
    char **cells;
    size_t n, cap;
};

struct cli_table {
    size_t minwidth;
    size_t padding;
    struct cli_table_row *rows;
    size_t nrows; /* rows closed so far; rows[nrows] is the open one */
    size_t cap;
};

void cli_oom(void)
{
    fputs("swarmctl: out of memory\n", stderr);
    exit(1);
}

void *cli_xrealloc(void *p, size_t size)
{
    p = realloc(p, size != 0 ? size : 1);
    if (p == NULL) {
        cli_oom();
    }
    return p;
}

void *cli_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL) {
        cli_oom();
    }
    return p;
}

struct cli_table *cli_table_new(size_t minwidth, size_t padding)
{
    struct cli_table *t = cli_xrealloc(NULL, sizeof *t);
    *t = (struct cli_table){.minwidth = minwidth, .padding = padding};
    if (vec_grow(t->rows, t->cap, 1) != 0) {
        cli_oom();
    }
    t->rows[0] = (struct cli_table_row){0};
    return t;
}

void cli_table_add(struct cli_table *t, const char *cell)
{
    struct cli_table_row *r = &t->rows[t->nrows];
    if (vec_grow(r->cells, r->cap, r->n + 1) != 0) {
        cli_oom();
    }
    /* Cells show what users and nodes chose (names, hostnames, errors):
     * escaped, so none of it reaches the terminal as a control sequence. */
    size_t len = esc_len(cell);
    r->cells[r->n] = cli_xrealloc(NULL, len);
    esc_str(cell, r->cells[r->n], len);
    r->n++;
}

const char *cli_esc(const char *s)
{
    static char *ring[CLI_ESC_RING];
    static size_t next;
    size_t len = esc_len(s);
    char *buf = cli_xrealloc(ring[next], len);
    ring[next] = buf;
    next = (next + 1) % CLI_ESC_RING;
    return esc_str(s, buf, len);
}

void cli_table_addf(struct cli_table *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cli_table_add(t, buf);
}

void cli_table_end_row(struct cli_table *t)
{
    if (vec_grow(t->rows, t->cap, t->nrows + 2) != 0) {
        cli_oom();
    }
    t->nrows++;
    t->rows[t->nrows] = (struct cli_table_row){0};
}

size_t cli_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* Width of column `col`: tabwriter measures only the cells that a tab
 * terminates, i.e. not the last cell of a row. */
static size_t cli_table_width(const struct cli_table *t, size_t col)
{
    size_t width = t->minwidth;
    for (size_t i = 0; i < t->nrows; i++) {
        const struct cli_table_row *r = &t->rows[i];
        if (col + 1 < r->n) {
            size_t w = cli_utf8_len(r->cells[col]) + t->padding;
            width = w > width ? w : width;
        }
    }
    return width;
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
    size_t ncols = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        ncols = t->rows[i].n > ncols ? t->rows[i].n : ncols;
    }
    size_t *widths = cli_xrealloc(NULL, (ncols + 1) * sizeof *widths);
    for (size_t c = 0; c < ncols; c++) {
        widths[c] = cli_table_width(t, c);
    }
    for (size_t i = 0; i < t->nrows; i++) {
        const struct cli_table_row *r = &t->rows[i];
        for (size_t c = 0; c < r->n; c++) {
            fputs(r->cells[c], out);
            if (c + 1 < r->n) {
                size_t len = cli_utf8_len(r->cells[c]);
                fprintf(out, "%*s", (int)(widths[c] - len), "");
            }
        }
        fputc('\n', out);
    }
    free(widths);
}

void cli_table_free(struct cli_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i <= t->nrows; i++) {
        for (size_t c = 0; c < t->rows[i].n; c++) {
            free(t->rows[i].cells[c]);
        }
        free(t->rows[i].cells);
    }
    free(t->rows);
    free(t);
}

/* ------------------------------------------------------ Go duration parse */

#define CLI_DUR_MAX ((uint64_t)1 << 63)

struct cli_duration_unit {
    const char *name;
    uint64_t ns;
};

static const struct cli_duration_unit cli_duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", UINT64_C(60) * 1000000000},
    {"h", UINT64_C(3600) * 1000000000},
};

static int cli_duration_unit(const char *u, size_t len, uint64_t *ns)
{
    for (size_t i = 0; i < sizeof cli_duration_units / sizeof *cli_duration_units; i++) {
        const char *name = cli_duration_units[i].name;
        if (strlen(name) == len && memcmp(name, u, len) == 0) {
            *ns = cli_duration_units[i].ns;
            return 0;
        }
    }
    return -1;
}

/* One "<number><unit>" element, as Go's ParseDuration loop body. Returns 0,
 * -1 invalid, -2 missing unit, -3 unknown unit (unit span in *u, *ulen). */
static int cli_duration_element(const char **sp, uint64_t *out,
                                const char **u, size_t *ulen)
{
    const char *s = *sp;
    uint64_t v = 0, f = 0, unit;
    double scale = 1;
    bool pre = false, post = false, overflow = false;
    for (; isdigit((unsigned char)*s); s++, pre = true) {
        if (v > CLI_DUR_MAX / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > CLI_DUR_MAX) {
            return -1;
        }
    }
    if (*s == '.') {
        for (s++; isdigit((unsigned char)*s); s++, post = true) {
            if (overflow || f > (CLI_DUR_MAX - 1) / 10) {
                overflow = true; /* Go keeps consuming, drops precision */
                continue;
            }
            f = f * 10 + (uint64_t)(*s - '0');
            scale *= 10;
        }
    }
    if (!pre && !post) {
        return -1;
    }
    *u = s;
    while (*s != '\0' && *s != '.' && !isdigit((unsigned char)*s)) {
        s++;
    }
    *ulen = (size_t)(s - *u);
    if (*ulen == 0) {
        return -2;
    }
    if (cli_duration_unit(*u, *ulen, &unit) != 0) {
        return -3;
    }
    if (v > CLI_DUR_MAX / unit) {
        return -1;
    }
    v *= unit;
    if (f > 0) {
        v += (uint64_t)((double)f * ((double)unit / scale));
        if (v > CLI_DUR_MAX) {
            return -1;
        }
    }
    *sp = s;
    *out = v;
    return 0;
}

int cli_parse_duration(const char *orig, int64_t *ns, char *errmsg)
{
    const char *s = orig;
    uint64_t d = 0;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0') {
        goto invalid;
    }
    while (*s != '\0') {
        const char *u = NULL;
        size_t ulen = 0;
        uint64_t v;
        if (*s != '.' && !isdigit((unsigned char)*s)) {
            goto invalid;
        }
        int rv = cli_duration_element(&s, &v, &u, &ulen);
        if (rv == -2) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "time: missing unit in duration \"%s\"", orig);
            return SWARM_EINVAL;
        }
        if (rv == -3) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "time: unknown unit \"%.*s\" in duration \"%s\"",
                          (int)ulen, u, orig);
            return SWARM_EINVAL;
        }
        if (rv != 0 || (d += v) > CLI_DUR_MAX) {
            goto invalid;
        }
    }
    if (!neg && d > CLI_DUR_MAX - 1) {
        goto invalid;
    }
    *ns = neg ? (int64_t)(0 - d) : (int64_t)d;
    return 0;
invalid:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "time: invalid duration \"%s\"", orig);
    return SWARM_EINVAL;
}

/* "<int>[.<frac without trailing zeros>]" of v / 10^prec. */
static int cli_format_frac(char *buf, size_t size, uint64_t v, int prec)
{
    uint64_t div = 1;
    for (int i = 0; i < prec; i++) {
        div *= 10;
    }
    uint64_t frac = v % div;
    if (frac == 0) {
        return snprintf(buf, size, "%llu", (unsigned long long)(v / div));
    }
    while (frac % 10 == 0) {
        frac /= 10;
        prec--;
    }
    return snprintf(buf, size, "%llu.%0*llu", (unsigned long long)(v / div),
                    prec, (unsigned long long)frac);
}

void cli_format_go_duration(int64_t ns, char *buf, size_t size)
{
    uint64_t u = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
    const char *sign = ns < 0 ? "-" : "";
    char num[64];
    if (u == 0) {
        snprintf(buf, size, "0s");
    } else if (u < 1000) {
        snprintf(buf, size, "%s%lluns", sign, (unsigned long long)u);
    } else if (u < 1000000) {
        cli_format_frac(num, sizeof num, u, 3);
        snprintf(buf, size, "%s%s\xc2\xb5s", sign, num);
    } else if (u < 1000000000) {
        cli_format_frac(num, sizeof num, u, 6);
        snprintf(buf, size, "%s%sms", sign, num);
    } else {
        uint64_t secs = u / 1000000000;
        cli_format_frac(num, sizeof num, secs % 60 * 1000000000 + u % 1000000000, 9);
        uint64_t mins = secs / 60, hours = mins / 60;
        if (hours > 0) {
            snprintf(buf, size, "%s%lluh%llum%ss", sign, (unsigned long long)hours,
                     (unsigned long long)(mins % 60), num);
        } else if (mins > 0) {
            snprintf(buf, size, "%s%llum%ss", sign, (unsigned long long)mins, num);
        } else {
            snprintf(buf, size, "%s%ss", sign, num);
        }
    }
}

/* --------------------------------------------------------- human formats */

void cli_format_human_duration(int64_t ns, char *buf, size_t size)
{
    long long seconds = ns / CLI_NS_PER_S;
    long long minutes = seconds / 60;
    long long hours = (long long)((double)ns / 3.6e12 + 0.5);
    if (seconds < 1) {
        snprintf(buf, size, "Less than a second");
    } else if (seconds == 1) {
        snprintf(buf, size, "1 second");
    } else if (seconds < 60) {
        snprintf(buf, size, "%lld seconds", seconds);
    } else if (minutes == 1) {
        snprintf(buf, size, "About a minute");
    } else if (minutes < 60) {
        snprintf(buf, size, "%lld minutes", minutes);
    } else if (hours == 1) {
        snprintf(buf, size, "About an hour");
    } else if (hours < 48) {
        snprintf(buf, size, "%lld hours", hours);
    } else if (hours < 24 * 7 * 2) {
        snprintf(buf, size, "%lld days", hours / 24);
    } else if (hours < 24 * 30 * 2) {
        snprintf(buf, size, "%lld weeks", hours / 24 / 7);
    } else if (hours < 24 * 365 * 2) {
        snprintf(buf, size, "%lld months", hours / 24 / 30);
    } else {
        snprintf(buf, size, "%lld years",
                 (long long)(ns / (3600 * CLI_NS_PER_S) / 24 / 365));
    }
}

void cli_format_time_ago(int64_t now_ms, int64_t then_ms, char *buf,
                         size_t size)
{
    char human[64];
    cli_format_human_duration((now_ms - then_ms) * CLI_NS_PER_MS, human,
                              sizeof human);
    snprintf(buf, size, "%s ago", human);
}

void cli_format_bytes(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB",
                                        "PiB", "EiB", "ZiB", "YiB"};
    size_t i = 0;
    while (bytes >= 1024.0 && i + 1 < sizeof units / sizeof *units) {
        bytes /= 1024.0;
        i++;
    }
    snprintf(buf, size, "%.4g%s", bytes, units[i]);
}

/* ------------------------------------------------------------- timestamps */

static bool cli_utc(int64_t unix_ms, struct tm *tm)
{
    time_t secs = (time_t)(unix_ms / 1000);
    return gmtime_r(&secs, tm) != NULL;
}

void cli_format_rfc3339(int64_t unix_ms, char *buf, size_t size)
{
    struct tm tm;
    if (unix_ms <= 0 || !cli_utc(unix_ms, &tm)) {
        snprintf(buf, size, "0001-01-01T00:00:00Z");
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
}

void cli_format_go_time(int64_t unix_ms, char *buf, size_t size)
{
    struct tm tm;
    char frac[8] = "";
    if (unix_ms <= 0 || !cli_utc(unix_ms, &tm)) {
        snprintf(buf, size, "0001-01-01 00:00:00 +0000 UTC");
        return;
    }
    if (unix_ms % 1000 != 0) {
        cli_format_frac(frac, sizeof frac, (uint64_t)(unix_ms % 1000), 3);
        memmove(frac, frac + 1, strlen(frac)); /* drop the leading "0" */
    }
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d%s +0000 UTC",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, frac);
}

/* ------------------------------------------------------------------ misc */

bool cli_natural_less(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            const char *ea = a, *eb = b;
            while (*a == '0') {
                a++;
            }
            while (*b == '0') {
                b++;
            }
            const char *da = a, *db = b;
            while (isdigit((unsigned char)*a)) {
                a++;
            }
            while (isdigit((unsigned char)*b)) {
                b++;
            }
            size_t la = (size_t)(a - da), lb = (size_t)(b - db);
            if (la != lb) {
                return la < lb;
            }
            int c = memcmp(da, db, la);
            if (c != 0) {
                return c < 0;
            }
            if (a - ea != b - eb) { /* same value: fewer zeros first */
                return a - ea < b - eb;
            }
            continue;
        }
        if (*a != *b) {
            return (unsigned char)*a < (unsigned char)*b;
        }
        a++;
        b++;
    }
    return *a == '\0' && *b != '\0';
}

void cli_format_capitalized(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s);
    if (size > 0 && buf[0] != '\0') {
        buf[0] = (char)toupper((unsigned char)buf[0]);
    }
}
