/* Execution of a parsed template (tmpl.h), after Go's text/template
 * exec.go and funcs.go, with Docker's functions (docker/cli templates.go).
 * Values made while running (function results) are temporaries, freed when
 * the execution ends. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "tmpl_tree.h"

/* Text printed to a FILE * and kept in memory (open_memstream); running out
 * of memory ends swarmctl (cli_oom). memtext_close returns the text, which
 * the caller owns. */
struct memtext {
    char *buf;
    size_t len;
    FILE *f;
};

static FILE *memtext_open(struct memtext *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    if (m->f == NULL) {
        cli_oom();
    }
    return m->f;
}

static char *memtext_close(struct memtext *m)
{
    fclose(m->f);
    return m->buf;
}

struct tmpl_var {
    const char *name;
    const struct tmpl_value *v;
};

struct exec {
    const struct tmpl *t;
    FILE *out;
    unsigned flags;
    struct tmpl_value **temps;
    size_t n_temps, cap_temps;
    struct tmpl_var *vars;
    size_t n_vars, cap_vars;
    const struct tmpl_node *at; /* the node being evaluated, for errors */
    bool failed;
    enum { LOOP_NONE, LOOP_BREAK, LOOP_CONTINUE } loop;
    char *errmsg; /* SWARM_ERRMSG_SIZE bytes */
};

/* A bound on pad's spaces, so a typo cannot ask for gigabytes. */
#define TMPL_PAD_MAX 4096

static const struct tmpl_value tmpl_novalue = {.kind = TMPL_NOVALUE};

static const struct tmpl_value *temp(struct exec *e, struct tmpl_value *v)
{
    if (e->n_temps == e->cap_temps) {
        e->cap_temps = e->cap_temps ? e->cap_temps * 2 : 16;
        e->temps = cli_xrealloc(e->temps, e->cap_temps * sizeof *e->temps);
    }
    e->temps[e->n_temps++] = v;
    return v;
}

/* A temporary string from a memstream's buffer (taken). */
static const struct tmpl_value *temp_string_take(struct exec *e, char *s)
{
    struct tmpl_value *v = tmpl_value_string("");
    free(v->s);
    v->s = s;
    return temp(e, v);
}

static void errorf(struct exec *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* template: :L:C: executing "" at <NODE>: message */
static void errorf(struct exec *e, const char *fmt, ...)
{
    if (e->failed) {
        return;
    }
    e->failed = true;
    char where[64] = "template: : ", node[256] = "";
    if (e->at != NULL) {
        tmpl_position(e->t->text, e->at->pos, where, sizeof where);
        tmpl_node_string(e->at, node, sizeof node);
        if (strlen(node) > 20) {
            strcpy(node + 20, "...");
        }
    }
    size_t o = (size_t)snprintf(e->errmsg, SWARM_ERRMSG_SIZE, "%sexecuting \"\" at <%s>: ", where,
                                node);
    if (o < SWARM_ERRMSG_SIZE) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->errmsg + o, SWARM_ERRMSG_SIZE - o, fmt, ap);
        va_end(ap);
    }
}

/* Go's isTrue. */
static bool is_true(const struct tmpl_value *v)
{
    switch (v->kind) {
        case TMPL_NOVALUE:
        case TMPL_NIL:
            return false;
        case TMPL_BOOL:
            return v->b;
        case TMPL_INT:
            return v->i != 0;
        case TMPL_FLOAT:
            return v->f != 0;
        case TMPL_STRING:
            return v->s[0] != '\0';
        case TMPL_LIST:
            return v->n > 0;
        case TMPL_MAP:
            return v->type_name != NULL || v->n > 0;
    }
    return false;
}

/* ------------------------------------------------------------- variables */

static void var_push(struct exec *e, const char *name, const struct tmpl_value *v)
{
    if (e->n_vars == e->cap_vars) {
        e->cap_vars = e->cap_vars ? e->cap_vars * 2 : 16;
        e->vars = cli_xrealloc(e->vars, e->cap_vars * sizeof *e->vars);
    }
    e->vars[e->n_vars++] = (struct tmpl_var){name, v};
}

static struct tmpl_var *var_find(struct exec *e, const char *name)
{
    for (size_t i = e->n_vars; i-- > 0;) {
        if (strcmp(e->vars[i].name, name) == 0) {
            return &e->vars[i];
        }
    }
    return NULL;
}

/* ----------------------------------------------------------------- fields */

static const struct tmpl_value *eval_field(struct exec *e, const struct tmpl_value *recv,
                                           const char *name, bool has_args)
{
    if (recv->kind == TMPL_NOVALUE) {
        if (e->flags & TMPL_EXEC_MISSINGKEY_ERROR) {
            errorf(e, "nil data; no entry for key \"%s\"", name);
        }
        return &tmpl_novalue;
    }
    if (recv->kind == TMPL_NIL) {
        errorf(e, "nil pointer evaluating interface {}.%s", name);
        return NULL;
    }
    if (recv->kind != TMPL_MAP) {
        errorf(e, "can't evaluate field %s in type %s", name, tmpl_value_type(recv));
        return NULL;
    }
    const struct tmpl_value *v = tmpl_map_get(recv, name);
    if (recv->type_name != NULL) {
        if (v == NULL) {
            errorf(e, "can't evaluate field %s in type %s", name, recv->type_name);
            return NULL;
        }
        if (has_args) {
            errorf(e, "%s has arguments but cannot be invoked as function", name);
            return NULL;
        }
        return v;
    }
    if (has_args) {
        errorf(e, "%s is not a method but has arguments", name);
        return NULL;
    }
    if (v == NULL) {
        if (e->flags & TMPL_EXEC_MISSINGKEY_ERROR) {
            errorf(e, "map has no entry for key \"%s\"", name);
            return NULL;
        }
        return &tmpl_novalue;
    }
    return v;
}

static const struct tmpl_value *eval_chain(struct exec *e, const struct tmpl_value *recv,
                                           const struct tmpl_node *n, size_t first,
                                           bool has_args)
{
    e->at = n;
    for (size_t i = first; i < n->n_idents && recv != NULL && !e->failed; i++) {
        recv = eval_field(e, recv, n->idents[i], has_args && i + 1 == n->n_idents);
    }
    return e->failed ? NULL : recv;
}

/* -------------------------------------------------------------- commands */

static const struct tmpl_value *eval_pipeline(struct exec *e, const struct tmpl_value *dot,
                                              const struct tmpl_pipe *p, bool bind);
static const struct tmpl_value *call_function(struct exec *e, const struct tmpl_value *dot,
                                              const struct tmpl_cmd *cmd,
                                              const struct tmpl_node *fn,
                                              const struct tmpl_value *final);

static const struct tmpl_value *literal(struct exec *e, const struct tmpl_node *n)
{
    switch (n->type) {
        case TMPL_N_STRING:
            return temp(e, tmpl_value_string(n->text));
        case TMPL_N_NUMBER:
            return temp(e, n->is_float ? tmpl_value_float(n->f) : tmpl_value_int(n->i));
        case TMPL_N_BOOL:
            return temp(e, tmpl_value_bool(n->i != 0));
        default:
            return temp(e, tmpl_value_nil());
    }
}

/* An argument (not the head of a command). */
static const struct tmpl_value *eval_arg(struct exec *e, const struct tmpl_value *dot,
                                         const struct tmpl_node *n)
{
    e->at = n;
    switch (n->type) {
        case TMPL_N_DOT:
            return dot;
        case TMPL_N_FIELD:
            return eval_chain(e, dot, n, 0, false);
        case TMPL_N_VARIABLE: {
            struct tmpl_var *v = var_find(e, n->idents[0]);
            if (v == NULL) {
                errorf(e, "undefined variable: %s", n->idents[0]);
                return NULL;
            }
            return eval_chain(e, v->v, n, 1, false);
        }
        case TMPL_N_PIPE:
            return eval_pipeline(e, dot, n->sub != NULL ? n->sub->pipe : n->pipe, false);
        case TMPL_N_CHAIN: {
            const struct tmpl_value *v = eval_pipeline(e, dot, n->sub->pipe, false);
            return v != NULL ? eval_chain(e, v, n, 0, false) : NULL;
        }
        case TMPL_N_IDENT: {
            struct tmpl_cmd one = {n->pos, (struct tmpl_node **)&n, 1};
            return call_function(e, dot, &one, n, NULL);
        }
        default:
            return literal(e, n);
    }
}

static const struct tmpl_value *eval_command(struct exec *e, const struct tmpl_value *dot,
                                             const struct tmpl_cmd *cmd,
                                             const struct tmpl_value *final)
{
    const struct tmpl_node *head = cmd->args[0];
    bool has_args = cmd->n > 1 || final != NULL;
    e->at = head;
    switch (head->type) {
        case TMPL_N_FIELD:
            return eval_chain(e, dot, head, 0, has_args);
        case TMPL_N_VARIABLE: {
            struct tmpl_var *v = var_find(e, head->idents[0]);
            if (v == NULL) {
                errorf(e, "undefined variable: %s", head->idents[0]);
                return NULL;
            }
            if (has_args && head->n_idents == 1) {
                errorf(e, "can't give argument to non-function %s", head->idents[0]);
                return NULL;
            }
            return eval_chain(e, v->v, head, 1, has_args);
        }
        case TMPL_N_CHAIN: {
            const struct tmpl_value *v = eval_pipeline(e, dot, head->sub->pipe, false);
            return v != NULL ? eval_chain(e, v, head, 0, has_args) : NULL;
        }
        case TMPL_N_IDENT:
            return call_function(e, dot, cmd, head, final);
        default:
            break;
    }
    if (has_args) {
        char s[128];
        tmpl_node_string(head, s, sizeof s);
        errorf(e, "can't give argument to non-function %s", s);
        return NULL;
    }
    return head->type == TMPL_N_DOT ? dot : eval_arg(e, dot, head);
}

static const struct tmpl_value *eval_pipeline(struct exec *e, const struct tmpl_value *dot,
                                              const struct tmpl_pipe *p, bool bind)
{
    const struct tmpl_value *v = NULL;
    for (size_t i = 0; i < p->n && !e->failed; i++) {
        v = eval_command(e, dot, p->cmds[i], v);
    }
    if (e->failed || v == NULL) {
        return NULL;
    }
    for (size_t i = 0; bind && i < p->n_vars; i++) {
        struct tmpl_var *var = p->decl ? NULL : var_find(e, p->vars[i]);
        if (var != NULL) {
            var->v = v;
        } else {
            var_push(e, p->vars[i], v);
        }
    }
    return v;
}

/* ------------------------------------------------------------- functions */

struct fn_args {
    const struct tmpl_node *nodes[16]; /* NULL for the piped final value */
    const struct tmpl_value *v[16];
    size_t n;
};

static bool want_kind(struct exec *e, const struct fn_args *a, size_t i, enum tmpl_kind kind,
                      const char *type)
{
    const struct tmpl_value *v = a->v[i];
    if (v->kind == kind) {
        return true;
    }
    if (a->nodes[i] != NULL) {
        e->at = a->nodes[i];
    }
    errorf(e, "wrong type for value; expected %s; got %s", type, tmpl_value_type(v));
    return false;
}

static bool want_count(struct exec *e, const char *name, const struct fn_args *a, size_t want)
{
    if (a->n == want) {
        return true;
    }
    errorf(e, "wrong number of args for %s: want %zu got %zu", name, want, a->n);
    return false;
}

static const struct tmpl_value *fn_string_result(struct exec *e, const char *s, size_t len)
{
    char *copy = cli_xcalloc(len + 1, 1);
    memcpy(copy, s, len);
    return temp_string_take(e, copy);
}

static const struct tmpl_value *fn_case(struct exec *e, const struct tmpl_value *v, int mode)
{
    const struct tmpl_value *r = fn_string_result(e, v->s, strlen(v->s));
    bool word_start = true;
    for (char *p = r->s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
        if (mode == 0 && c >= 'A' && c <= 'Z') {
            *p = (char)(c + 32);
        } else if ((mode == 1 || (mode == 2 && word_start)) && c >= 'a' && c <= 'z') {
            *p = (char)(c - 32);
        }
        word_start = !letter; /* strings.Title: a word starts after a separator */
    }
    return r;
}

static const struct tmpl_value *fn_split(struct exec *e, const char *s, const char *sep)
{
    struct tmpl_value *list = tmpl_value_list();
    list->strings_list = true;
    size_t seplen = strlen(sep);
    if (seplen == 0) { /* one element per UTF-8 character */
        for (const char *p = s; *p != '\0';) {
            size_t n = 1;
            while (((unsigned char)p[n] & 0xC0) == 0x80) {
                n++;
            }
            char piece[8] = {0};
            memcpy(piece, p, n < 8 ? n : 7);
            tmpl_list_append(list, tmpl_value_string(piece));
            p += n;
        }
        return temp(e, list);
    }
    for (;;) {
        const char *hit = strstr(s, sep);
        size_t len = hit != NULL ? (size_t)(hit - s) : strlen(s);
        struct tmpl_value *piece = tmpl_value_string("");
        free(piece->s);
        piece->s = cli_xcalloc(len + 1, 1);
        memcpy(piece->s, s, len);
        tmpl_list_append(list, piece);
        if (hit == NULL) {
            return temp(e, list);
        }
        s = hit + seplen;
    }
}

static const struct tmpl_value *fn_join(struct exec *e, const struct fn_args *a)
{
    const struct tmpl_value *list = a->v[0];
    bool ok = list->kind == TMPL_LIST;
    for (size_t i = 0; ok && i < list->n; i++) {
        ok = list->items[i]->kind == TMPL_STRING;
    }
    if (!ok) {
        if (a->nodes[0] != NULL) {
            e->at = a->nodes[0];
        }
        errorf(e, "wrong type for value; expected []string; got %s", tmpl_value_type(list));
        return NULL;
    }
    if (!want_kind(e, a, 1, TMPL_STRING, "string")) {
        return NULL;
    }
    struct memtext mt;
    FILE *f = memtext_open(&mt);
    for (size_t i = 0; i < list->n; i++) {
        fprintf(f, "%s%s", i > 0 ? a->v[1]->s : "", list->items[i]->s);
    }
    return temp_string_take(e, memtext_close(&mt));
}

/* index item 1 "key" ... */
static const struct tmpl_value *fn_index(struct exec *e, const struct fn_args *a)
{
    const struct tmpl_value *v = a->v[0];
    if (a->n == 0) {
        errorf(e, "wrong number of args for index: want at least 1 got 0");
        return NULL;
    }
    for (size_t i = 1; i < a->n; i++) {
        const struct tmpl_value *k = a->v[i];
        if (v->kind == TMPL_NOVALUE || v->kind == TMPL_NIL) {
            errorf(e, "error calling index: index of untyped nil");
            return NULL;
        }
        if (v->kind == TMPL_LIST || v->kind == TMPL_STRING) {
            if (k->kind != TMPL_INT) {
                errorf(e, "error calling index: cannot index slice/array with type %s",
                       tmpl_value_type(k));
                return NULL;
            }
            size_t len = v->kind == TMPL_LIST ? v->n : strlen(v->s);
            if (k->i < 0 || (uint64_t)k->i >= len) {
                errorf(e, "error calling index: index out of range: %lld", (long long)k->i);
                return NULL;
            }
            v = v->kind == TMPL_LIST ? v->items[k->i]
                                     : temp(e, tmpl_value_int((unsigned char)v->s[k->i]));
        } else if (v->kind == TMPL_MAP && v->type_name == NULL) {
            if (k->kind != TMPL_STRING) {
                errorf(e, "error calling index: value has type %s; should be string",
                       tmpl_value_type(k));
                return NULL;
            }
            const struct tmpl_value *got = tmpl_map_get(v, k->s);
            v = got != NULL                             ? got
                : v->map_flags & TMPL_MAP_STRINGS ? temp(e, tmpl_value_string(""))
                                                  : temp(e, tmpl_value_nil());
        } else {
            errorf(e, "error calling index: can't index item of type %s", tmpl_value_type(v));
            return NULL;
        }
    }
    return v;
}

static const struct tmpl_value *fn_print(struct exec *e, const struct fn_args *a, bool ln)
{
    struct memtext mt;
    FILE *f = memtext_open(&mt);
    for (size_t i = 0; i < a->n; i++) {
        /* Sprint: a space between operands when neither is a string;
         * Sprintln: always. */
        if (i > 0 && (ln || (a->v[i - 1]->kind != TMPL_STRING && a->v[i]->kind != TMPL_STRING))) {
            fputc(' ', f);
        }
        tmpl_value_print(f, a->v[i]);
    }
    if (ln) {
        fputc('\n', f);
    }
    return temp_string_take(e, memtext_close(&mt));
}

static const struct tmpl_value *fn_json(struct exec *e, const struct tmpl_value *v)
{
    struct memtext mt;
    FILE *f = memtext_open(&mt);
    tmpl_value_print_json(f, v);
    return temp_string_take(e, memtext_close(&mt));
}

/* eq/ne/lt/le/gt/ge: Go's basic comparisons. Returns -2 on error. */
static int compare(struct exec *e, const struct tmpl_value *a, const struct tmpl_value *b,
                   bool ordered)
{
    enum tmpl_kind ka = a->kind, kb = b->kind;
    if ((ka == TMPL_NIL || ka == TMPL_NOVALUE) && (kb == TMPL_NIL || kb == TMPL_NOVALUE) &&
        !ordered) {
        return 0;
    }
    if (ka != kb) {
        errorf(e, "error calling %s: incompatible types for comparison", ordered ? "lt" : "eq");
        return -2;
    }
    switch (ka) {
        case TMPL_BOOL:
            if (ordered) {
                errorf(e, "error calling lt: invalid type for comparison");
                return -2;
            }
            return a->b == b->b ? 0 : 1;
        case TMPL_INT:
            return a->i < b->i ? -1 : a->i > b->i;
        case TMPL_FLOAT:
            return a->f < b->f ? -1 : a->f > b->f;
        case TMPL_STRING: {
            int c = strcmp(a->s, b->s);
            return c < 0 ? -1 : c > 0;
        }
        default:
            errorf(e, "error calling %s: non-comparable type %s", ordered ? "lt" : "eq",
                   tmpl_value_type(a));
            return -2;
    }
}

static const struct tmpl_value *fn_compare(struct exec *e, const char *name,
                                           const struct fn_args *a)
{
    if (a->n < 2) {
        errorf(e, "wrong number of args for %s: want 2 got %zu", name, a->n);
        return NULL;
    }
    bool ordered = strcmp(name, "eq") != 0 && strcmp(name, "ne") != 0;
    if (ordered && a->n != 2) {
        errorf(e, "wrong number of args for %s: want 2 got %zu", name, a->n);
        return NULL;
    }
    bool result = false;
    for (size_t i = 1; i < a->n && !result; i++) { /* eq a b c: a==b || a==c */
        int c = compare(e, a->v[0], a->v[i], ordered);
        if (c == -2) {
            return NULL;
        }
        result = strcmp(name, "eq") == 0   ? c == 0
                 : strcmp(name, "ne") == 0 ? c != 0
                 : strcmp(name, "lt") == 0 ? c < 0
                 : strcmp(name, "le") == 0 ? c <= 0
                 : strcmp(name, "gt") == 0 ? c > 0
                                           : c >= 0;
        if (strcmp(name, "ne") == 0) {
            break;
        }
    }
    return temp(e, tmpl_value_bool(result));
}

/* The table header: Docker's HeaderFunctions keep the column name. */
static bool header_function(const char *name)
{
    static const char *const names[] = {"json", "split", "join", "title", "lower", "upper",
                                        "truncate"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static const struct tmpl_value *fn_dispatch(struct exec *e, const char *name,
                                            const struct fn_args *a)
{
    if ((e->flags & TMPL_EXEC_HEADER) && header_function(name)) {
        size_t want = strcmp(name, "json") == 0 || strcmp(name, "title") == 0 ||
                              strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0
                          ? 1
                          : 2;
        if (!want_count(e, name, a, want) || !want_kind(e, a, 0, TMPL_STRING, "string")) {
            return NULL;
        }
        return a->v[0];
    }
    if (strcmp(name, "json") == 0) {
        return want_count(e, name, a, 1) ? fn_json(e, a->v[0]) : NULL;
    }
    if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0 || strcmp(name, "title") == 0) {
        if (!want_count(e, name, a, 1) || !want_kind(e, a, 0, TMPL_STRING, "string")) {
            return NULL;
        }
        return fn_case(e, a->v[0], name[0] == 'l' ? 0 : name[0] == 'u' ? 1 : 2);
    }
    if (strcmp(name, "split") == 0) {
        if (!want_count(e, name, a, 2) || !want_kind(e, a, 0, TMPL_STRING, "string") ||
            !want_kind(e, a, 1, TMPL_STRING, "string")) {
            return NULL;
        }
        return fn_split(e, a->v[0]->s, a->v[1]->s);
    }
    if (strcmp(name, "join") == 0) {
        return want_count(e, name, a, 2) ? fn_join(e, a) : NULL;
    }
    if (strcmp(name, "truncate") == 0) { /* truncate STRING LENGTH */
        if (!want_count(e, name, a, 2) || !want_kind(e, a, 0, TMPL_STRING, "string") ||
            !want_kind(e, a, 1, TMPL_INT, "int")) {
            return NULL;
        }
        size_t len = strlen(a->v[0]->s);
        if (a->v[1]->i < 0 || (uint64_t)a->v[1]->i > len) {
            return a->v[0];
        }
        return fn_string_result(e, a->v[0]->s, (size_t)a->v[1]->i);
    }
    if (strcmp(name, "pad") == 0) { /* pad STRING PREFIX SUFFIX */
        if (!want_count(e, name, a, 3) || !want_kind(e, a, 0, TMPL_STRING, "string") ||
            !want_kind(e, a, 1, TMPL_INT, "int") || !want_kind(e, a, 2, TMPL_INT, "int")) {
            return NULL;
        }
        if (a->v[0]->s[0] == '\0') {
            return a->v[0];
        }
        if (a->v[1]->i < 0 || a->v[2]->i < 0) {
            errorf(e, "error calling pad: strings: negative Repeat count");
            return NULL;
        }
        if (a->v[1]->i > TMPL_PAD_MAX || a->v[2]->i > TMPL_PAD_MAX) {
            errorf(e, "error calling pad: padding over %d spaces", TMPL_PAD_MAX);
            return NULL;
        }
        struct memtext mt;
        FILE *f = memtext_open(&mt);
        fprintf(f, "%*s%s%*s", (int)a->v[1]->i, "", a->v[0]->s, (int)a->v[2]->i, "");
        return temp_string_take(e, memtext_close(&mt));
    }
    if (strcmp(name, "index") == 0) {
        return fn_index(e, a);
    }
    if (strcmp(name, "printf") == 0) {
        if (a->n == 0) {
            errorf(e, "wrong number of args for printf: want at least 1 got 0");
            return NULL;
        }
        if (!want_kind(e, a, 0, TMPL_STRING, "string")) {
            return NULL;
        }
        struct memtext mt;
        FILE *f = memtext_open(&mt);
        tmpl_printf(f, a->v[0]->s, a->v + 1, a->n - 1);
        return temp_string_take(e, memtext_close(&mt));
    }
    if (strcmp(name, "println") == 0 || strcmp(name, "print") == 0) {
        return fn_print(e, a, name[5] == 'l');
    }
    if (strcmp(name, "len") == 0) {
        if (!want_count(e, name, a, 1)) {
            return NULL;
        }
        const struct tmpl_value *v = a->v[0];
        if (v->kind != TMPL_STRING && v->kind != TMPL_LIST && v->kind != TMPL_MAP) {
            errorf(e, "error calling len: len of type %s", tmpl_value_type(v));
            return NULL;
        }
        return temp(e, tmpl_value_int(v->kind == TMPL_STRING ? (int64_t)strlen(v->s)
                                                             : (int64_t)v->n));
    }
    if (strcmp(name, "not") == 0) {
        return want_count(e, name, a, 1) ? temp(e, tmpl_value_bool(!is_true(a->v[0]))) : NULL;
    }
    if (strcmp(name, "and") == 0 || strcmp(name, "or") == 0) {
        if (a->n == 0) {
            errorf(e, "wrong number of args for %s: want at least 1 got 0", name);
            return NULL;
        }
        /* the first falsy (and) / truthy (or) argument, else the last */
        for (size_t i = 0; i + 1 < a->n; i++) {
            if (is_true(a->v[i]) == (name[0] == 'o')) {
                return a->v[i];
            }
        }
        return a->v[a->n - 1];
    }
    return fn_compare(e, name, a);
}

static const struct tmpl_value *call_function(struct exec *e, const struct tmpl_value *dot,
                                              const struct tmpl_cmd *cmd,
                                              const struct tmpl_node *fn,
                                              const struct tmpl_value *final)
{
    struct fn_args a = {.n = 0};
    if (cmd->n - 1 + (final != NULL) > sizeof a.v / sizeof *a.v) {
        errorf(e, "too many arguments for %s", fn->text);
        return NULL;
    }
    for (size_t i = 1; i < cmd->n; i++) {
        a.nodes[a.n] = cmd->args[i];
        a.v[a.n] = eval_arg(e, dot, cmd->args[i]);
        if (a.v[a.n] == NULL) {
            return NULL;
        }
        a.n++;
    }
    if (final != NULL) {
        a.nodes[a.n] = NULL;
        a.v[a.n++] = final;
    }
    e->at = fn;
    return fn_dispatch(e, fn->text, &a);
}

/* ------------------------------------------------------------------ walk */

static void walk_list(struct exec *e, const struct tmpl_value *dot, const struct tmpl_list *l);

static void walk_range(struct exec *e, const struct tmpl_value *dot, const struct tmpl_node *n)
{
    const struct tmpl_value *v = eval_pipeline(e, dot, n->pipe, false);
    if (v == NULL) {
        return;
    }
    size_t mark = e->n_vars;
    size_t count = v->kind == TMPL_LIST || v->kind == TMPL_MAP ? v->n : 0;
    if (v->kind != TMPL_LIST && v->kind != TMPL_MAP && v->kind != TMPL_NIL &&
               v->kind != TMPL_NOVALUE) {
        struct memtext mt;
        FILE *f = memtext_open(&mt);
        tmpl_value_print(f, v);
        char *text = memtext_close(&mt);
        errorf(e, "range can't iterate over %s", text);
        free(text);
        return;
    }
    size_t *order = v->kind == TMPL_MAP ? tmpl_map_order(v) : NULL;
    for (size_t i = 0; i < count && !e->failed; i++) {
        const struct tmpl_value *key, *elem;
        if (v->kind == TMPL_MAP) {
            key = temp(e, tmpl_value_string(v->keys[order[i]]));
            elem = v->items[order[i]];
        } else {
            key = temp(e, tmpl_value_int((int64_t)i));
            elem = v->items[i];
        }
        e->n_vars = mark;
        if (n->pipe->n_vars == 1) {
            var_push(e, n->pipe->vars[0], elem);
        } else if (n->pipe->n_vars == 2) {
            var_push(e, n->pipe->vars[0], key);
            var_push(e, n->pipe->vars[1], elem);
        }
        walk_list(e, elem, &n->list);
        if (e->loop == LOOP_BREAK) {
            e->loop = LOOP_NONE;
            break;
        }
        e->loop = LOOP_NONE;
    }
    free(order);
    e->n_vars = mark;
    if (count == 0 && !e->failed) {
        walk_list(e, dot, &n->else_list);
    }
}

static void walk(struct exec *e, const struct tmpl_value *dot, const struct tmpl_node *n)
{
    const struct tmpl_value *v;
    size_t mark = e->n_vars;
    switch (n->type) {
        case TMPL_N_TEXT:
            fwrite(n->text, 1, n->text_len, e->out);
            return;
        case TMPL_N_ACTION:
            v = eval_pipeline(e, dot, n->pipe, true);
            if (v != NULL && n->pipe->n_vars == 0) {
                tmpl_value_print(e->out, v);
            }
            return;
        case TMPL_N_IF:
        case TMPL_N_WITH:
            v = eval_pipeline(e, dot, n->pipe, true);
            if (v != NULL) {
                if (is_true(v)) {
                    walk_list(e, n->type == TMPL_N_WITH ? v : dot, &n->list);
                } else {
                    walk_list(e, dot, &n->else_list);
                }
            }
            e->n_vars = mark;
            return;
        case TMPL_N_RANGE:
            walk_range(e, dot, n);
            return;
        case TMPL_N_BREAK:
            e->loop = LOOP_BREAK;
            return;
        case TMPL_N_CONTINUE:
            e->loop = LOOP_CONTINUE;
            return;
        default:
            return;
    }
}

static void walk_list(struct exec *e, const struct tmpl_value *dot, const struct tmpl_list *l)
{
    for (size_t i = 0; i < l->n && !e->failed && e->loop == LOOP_NONE; i++) {
        walk(e, dot, l->nodes[i]);
    }
}

int tmpl_execute(const struct tmpl *t, FILE *out, const struct tmpl_value *dot, unsigned flags,
                 char *errmsg)
{
    struct exec e = {.t = t, .out = out, .flags = flags, .errmsg = errmsg};
    var_push(&e, "$", dot);
    walk_list(&e, dot, &t->root);
    for (size_t i = 0; i < e.n_temps; i++) {
        tmpl_value_free(e.temps[i]);
    }
    free(e.temps);
    free(e.vars);
    return e.failed ? SWARM_EINVAL : 0;
}
