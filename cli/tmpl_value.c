/* The values a template runs against (tmpl.h): constructors, Go's %v
 * printing and Go's compact JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "json.h"
#include "tmpl_tree.h"

static struct tmpl_value *tmpl_value_new(enum tmpl_kind kind)
{
    struct tmpl_value *v = cli_xcalloc(1, sizeof *v);
    v->kind = kind;
    return v;
}

struct tmpl_value *tmpl_value_nil(void)
{
    return tmpl_value_new(TMPL_NIL);
}

struct tmpl_value *tmpl_value_bool(bool b)
{
    struct tmpl_value *v = tmpl_value_new(TMPL_BOOL);
    v->b = b;
    return v;
}

struct tmpl_value *tmpl_value_int(int64_t i)
{
    struct tmpl_value *v = tmpl_value_new(TMPL_INT);
    v->i = i;
    return v;
}

struct tmpl_value *tmpl_value_uint(uint64_t u)
{
    struct tmpl_value *v = tmpl_value_new(TMPL_INT);
    v->i = (int64_t)u;
    v->is_unsigned = true;
    return v;
}

struct tmpl_value *tmpl_value_float(double f)
{
    struct tmpl_value *v = tmpl_value_new(TMPL_FLOAT);
    v->f = f;
    return v;
}

struct tmpl_value *tmpl_value_string(const char *s)
{
    struct tmpl_value *v = tmpl_value_new(TMPL_STRING);
    s = s != NULL ? s : "";
    size_t len = strlen(s);
    v->s = cli_xcalloc(len + 1, 1);
    memcpy(v->s, s, len);
    return v;
}

struct tmpl_value *tmpl_value_list(void)
{
    return tmpl_value_new(TMPL_LIST);
}

struct tmpl_value *tmpl_value_map(const char *type_name, unsigned flags)
{
    struct tmpl_value *v = tmpl_value_new(TMPL_MAP);
    v->type_name = type_name;
    v->map_flags = flags;
    return v;
}

static void tmpl_value_grow(struct tmpl_value *v)
{
    if (v->n < v->cap) {
        return;
    }
    size_t cap = v->cap ? v->cap * 2 : 8;
    struct tmpl_value **items = cli_xcalloc(cap, sizeof *items);
    char **keys = cli_xcalloc(cap, sizeof *keys);
    if (v->n > 0) {
        memcpy(items, v->items, v->n * sizeof *items);
        if (v->keys != NULL) {
            memcpy(keys, v->keys, v->n * sizeof *keys);
        }
    }
    free(v->items);
    free(v->keys);
    v->items = items;
    v->keys = keys;
    v->cap = cap;
}

struct tmpl_value *tmpl_list_append(struct tmpl_value *list, struct tmpl_value *item)
{
    tmpl_value_grow(list);
    list->items[list->n++] = item;
    return item;
}

struct tmpl_value *tmpl_map_get(const struct tmpl_value *map, const char *key)
{
    for (size_t i = 0; map->kind == TMPL_MAP && i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            return map->items[i];
        }
    }
    return NULL;
}

struct tmpl_value *tmpl_map_set(struct tmpl_value *map, const char *key, struct tmpl_value *v)
{
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            tmpl_value_free(map->items[i]);
            map->items[i] = v;
            return v;
        }
    }
    tmpl_value_grow(map);
    size_t len = strlen(key);
    map->keys[map->n] = cli_xcalloc(len + 1, 1);
    memcpy(map->keys[map->n], key, len);
    map->items[map->n++] = v;
    return v;
}

void tmpl_map_set_string(struct tmpl_value *map, const char *key, const char *s)
{
    tmpl_map_set(map, key, tmpl_value_string(s));
}

void tmpl_map_set_bool(struct tmpl_value *map, const char *key, bool b)
{
    tmpl_map_set(map, key, tmpl_value_bool(b));
}

void tmpl_value_free(struct tmpl_value *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        tmpl_value_free(v->items[i]);
        if (v->keys != NULL) {
            free(v->keys[i]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

/* ----------------------------------------------------------------- order */

static int tmpl_key_cmp(const void *a, const void *b)
{
    return strcmp(**(char **const *)a, **(char **const *)b);
}

size_t *tmpl_map_order(const struct tmpl_value *map)
{
    size_t *order = cli_xcalloc(map->n + 1, sizeof *order);
    char ***keys = cli_xcalloc(map->n + 1, sizeof *keys);
    for (size_t i = 0; i < map->n; i++) {
        keys[i] = &map->keys[i];
    }
    if (map->map_flags & TMPL_MAP_SORTED) {
        qsort(keys, map->n, sizeof *keys, tmpl_key_cmp);
    }
    for (size_t i = 0; i < map->n; i++) {
        order[i] = (size_t)(keys[i] - map->keys);
    }
    free(keys);
    return order;
}

const char *tmpl_value_type(const struct tmpl_value *v)
{
    switch (v->kind) {
        case TMPL_NOVALUE:
            return "<invalid reflect.Value>";
        case TMPL_NIL:
            return "interface {}";
        case TMPL_BOOL:
            return "bool";
        case TMPL_INT:
            return v->is_unsigned ? "uint64" : v->is_duration ? "time.Duration" : "int";
        case TMPL_FLOAT:
            return "float64";
        case TMPL_STRING:
            return "string";
        case TMPL_LIST:
            return v->strings_list ? "[]string" : "[]interface {}";
        case TMPL_MAP:
            return v->type_name != NULL                   ? v->type_name
                   : v->map_flags & TMPL_MAP_STRINGS ? "map[string]string"
                                                         : "map[string]interface {}";
    }
    return "?";
}

/* ----------------------------------------------------------------- print */

/* Go's strconv.FormatFloat(f, 'g'-like, -1): the shortest digits that read
 * back as f, in %e form when the exponent is < exp_lo or >= exp_hi. */
void tmpl_format_float(double f, int exp_lo, int exp_hi, bool json, char *buf, size_t size)
{
    if (isnan(f) || isinf(f)) {
        snprintf(buf, size, "%s", isnan(f) ? "NaN" : f > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (f == 0) {
        snprintf(buf, size, "%s", signbit(f) && !json ? "-0" : "0");
        return;
    }
    char e[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) {
            break;
        }
    }
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < exp_lo || exp >= exp_hi) {
        /* C prints e+06; Go %v prints e+06, JSON e+06 -> e+06 too except
         * that Go's JSON trims "e-07" to "e-7". */
        char *x = strchr(e, 'e');
        if (json && x[2] == '0' && x[3] != '\0') {
            memmove(x + 2, x + 3, strlen(x + 3) + 1);
        }
        snprintf(buf, size, "%s", e);
        return;
    }
    int decimals = prec - 1 - exp;
    snprintf(buf, size, "%.*f", decimals > 0 ? decimals : 0, f);
}

/* Go's fmtFrac: the digits of v's last `prec` decimal places, written
 * backwards before buf[w], trailing zeros and a bare '.' left out. */
static size_t tmpl_duration_frac(char *buf, size_t w, uint64_t *v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(*v % 10);
        print = print || digit != 0;
        if (print) {
            buf[--w] = (char)('0' + digit);
        }
        *v /= 10;
    }
    if (print) {
        buf[--w] = '.';
    }
    return w;
}

static size_t tmpl_duration_int(char *buf, size_t w, uint64_t v)
{
    do {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return w;
}

void tmpl_format_duration(int64_t ns, char *buf, size_t size)
{
    char b[40];
    size_t w = sizeof b;
    bool neg = ns < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    b[--w] = '\0';
    if (u < 1000000000ull) {
        int prec;
        b[--w] = 's';
        if (u == 0) {
            snprintf(buf, size, "0s");
            return;
        } else if (u < 1000ull) {
            prec = 0;
            b[--w] = 'n';
        } else if (u < 1000000ull) {
            prec = 3;
            w -= 2;
            memcpy(b + w, "\xc2\xb5", 2); /* µ */
        } else {
            prec = 6;
            b[--w] = 'm';
        }
        w = tmpl_duration_frac(b, w, &u, prec);
        w = tmpl_duration_int(b, w, u);
    } else {
        b[--w] = 's';
        w = tmpl_duration_frac(b, w, &u, 9);
        w = tmpl_duration_int(b, w, u % 60);
        u /= 60;
        if (u > 0) {
            b[--w] = 'm';
            w = tmpl_duration_int(b, w, u % 60);
            u /= 60;
            if (u > 0) {
                b[--w] = 'h';
                w = tmpl_duration_int(b, w, u);
            }
        }
    }
    if (neg) {
        b[--w] = '-';
    }
    snprintf(buf, size, "%s", b + w);
}

void tmpl_value_print(FILE *out, const struct tmpl_value *v)
{
    char buf[64];
    switch (v->kind) {
        case TMPL_NOVALUE:
            fputs("<no value>", out);
            return;
        case TMPL_NIL:
            fputs("<nil>", out);
            return;
        case TMPL_BOOL:
            fputs(v->b ? "true" : "false", out);
            return;
        case TMPL_INT:
            if (v->is_duration) {
                tmpl_format_duration(v->i, buf, sizeof buf);
                fputs(buf, out);
            } else if (v->is_unsigned) {
                fprintf(out, "%llu", (unsigned long long)v->i);
            } else {
                fprintf(out, "%lld", (long long)v->i);
            }
            return;
        case TMPL_FLOAT:
            tmpl_format_float(v->f, -4, 21, false, buf, sizeof buf);
            fputs(buf, out);
            return;
        case TMPL_STRING:
            fputs(v->s, out);
            return;
        case TMPL_LIST:
            fputc('[', out);
            for (size_t i = 0; i < v->n; i++) {
                if (i > 0) {
                    fputc(' ', out);
                }
                tmpl_value_print(out, v->items[i]);
            }
            fputc(']', out);
            return;
        case TMPL_MAP: {
            size_t *order = tmpl_map_order(v);
            fputs(v->type_name != NULL ? "{" : "map[", out);
            for (size_t i = 0; i < v->n; i++) {
                if (i > 0) {
                    fputc(' ', out);
                }
                if (v->type_name == NULL) {
                    fprintf(out, "%s:", v->keys[order[i]]);
                }
                tmpl_value_print(out, v->items[order[i]]);
            }
            fputc(v->type_name != NULL ? '}' : ']', out);
            free(order);
            return;
        }
    }
}

void tmpl_value_print_json(FILE *out, const struct tmpl_value *v)
{
    char buf[64];
    switch (v->kind) {
        case TMPL_NOVALUE:
        case TMPL_NIL:
            fputs("null", out);
            return;
        case TMPL_BOOL:
            fputs(v->b ? "true" : "false", out);
            return;
        case TMPL_INT:
            if (v->is_unsigned) {
                fprintf(out, "%llu", (unsigned long long)v->i);
            } else {
                fprintf(out, "%lld", (long long)v->i);
            }
            return;
        case TMPL_FLOAT:
            tmpl_format_float(v->f, -6, 21, true, buf, sizeof buf);
            fputs(isnan(v->f) || isinf(v->f) ? "null" : buf, out);
            return;
        case TMPL_STRING:
            cli_json_print_string(out, v->s, strlen(v->s));
            return;
        case TMPL_LIST:
            fputc('[', out);
            for (size_t i = 0; i < v->n; i++) {
                if (i > 0) {
                    fputc(',', out);
                }
                tmpl_value_print_json(out, v->items[i]);
            }
            fputc(']', out);
            return;
        case TMPL_MAP: {
            size_t *order = tmpl_map_order(v);
            bool first = true;
            fputc('{', out);
            for (size_t i = 0; i < v->n; i++) {
                const struct tmpl_value *item = v->items[order[i]];
                if (item->omitempty) {
                    continue;
                }
                if (!first) {
                    fputc(',', out);
                }
                first = false;
                const char *k = v->keys[order[i]];
                cli_json_print_string(out, k, strlen(k));
                fputc(':', out);
                tmpl_value_print_json(out, item);
            }
            fputc('}', out);
            free(order);
            return;
        }
    }
}

static void json_indent(FILE *out, int level)
{
    fprintf(out, "%*s", level * 2, "");
}

void tmpl_value_print_json_indent(FILE *out, const struct tmpl_value *v, int level)
{
    if (v->kind == TMPL_LIST && v->n > 0) {
        fputs("[\n", out);
        for (size_t i = 0; i < v->n; i++) {
            json_indent(out, level + 1);
            tmpl_value_print_json_indent(out, v->items[i], level + 1);
            fputs(i + 1 < v->n ? ",\n" : "\n", out);
        }
        json_indent(out, level);
        fputc(']', out);
        return;
    }
    if (v->kind == TMPL_MAP) {
        size_t *order = tmpl_map_order(v);
        bool first = true;
        fputc('{', out);
        for (size_t i = 0; i < v->n; i++) {
            const struct tmpl_value *item = v->items[order[i]];
            const char *k = v->keys[order[i]];
            if (item->omitempty) {
                continue;
            }
            fputs(first ? "\n" : ",\n", out);
            first = false;
            json_indent(out, level + 1);
            cli_json_print_string(out, k, strlen(k));
            fputs(": ", out);
            tmpl_value_print_json_indent(out, item, level + 1);
        }
        if (!first) {
            fputc('\n', out);
            json_indent(out, level);
        }
        fputc('}', out);
        free(order);
        return;
    }
    tmpl_value_print_json(out, v);
}
