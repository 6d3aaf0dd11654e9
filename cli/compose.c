/* Compose files: YAML -> tree (anchors, merge keys, interpolation), files
 * merged, tree -> project (see compose.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "args.h"
#include "cmd_service_opts.h"
#include "compose.h"
#include "format.h"

#define COMPOSE_MAX_NODES 100000 /* bounds what aliases can expand to */
#define COMPOSE_MAX_DEPTH 64
#define COMPOSE_MAX_FILE (16 * 1024 * 1024)

enum cnode_kind { CN_SCALAR, CN_MAP, CN_SEQ };

struct cnode {
    enum cnode_kind kind;
    char *s;     /* scalar (interpolated) */
    bool plain;  /* an unquoted scalar: may be a number or a boolean */
    bool null;   /* ~, null or empty */
    size_t n;
    char **k;    /* map keys */
    struct cnode **v;
    const char *file;
    int line;
};

struct compose_env {
    char **kv; /* K=V from .env */
    size_t n;
};

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cli_xrealloc(NULL, n);
    memcpy(d, s, n);
    return d;
}

static void strv_push(char ***arr, size_t *n, const char *s)
{
    *arr = cli_xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = xstrdup(s);
}

static void strv_free(char **arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(arr[i]);
    }
    free(arr);
}

static void cnode_free(struct cnode *c)
{
    if (c == NULL) {
        return;
    }
    free(c->s);
    for (size_t i = 0; i < c->n; i++) {
        if (c->k != NULL) {
            free(c->k[i]);
        }
        cnode_free(c->v[i]);
    }
    free(c->k);
    free(c->v);
    free(c);
}

static struct cnode *cnode_new(enum cnode_kind kind, const char *file, int line)
{
    struct cnode *c = cli_xcalloc(1, sizeof *c);
    c->kind = kind;
    c->file = file;
    c->line = line;
    return c;
}

static void cnode_add(struct cnode *m, const char *key, struct cnode *v)
{
    m->v = cli_xrealloc(m->v, (m->n + 1) * sizeof *m->v);
    if (m->kind == CN_MAP) {
        m->k = cli_xrealloc(m->k, (m->n + 1) * sizeof *m->k);
        m->k[m->n] = xstrdup(key);
    }
    m->v[m->n++] = v;
}

static struct cnode *cnode_get(const struct cnode *m, const char *key)
{
    if (m == NULL || m->kind != CN_MAP) {
        return NULL;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->k[i], key) == 0) {
            return m->v[i];
        }
    }
    return NULL;
}

static struct cnode *cnode_copy(const struct cnode *c)
{
    struct cnode *d = cnode_new(c->kind, c->file, c->line);
    d->s = c->s != NULL ? xstrdup(c->s) : NULL;
    d->plain = c->plain;
    d->null = c->null;
    for (size_t i = 0; i < c->n; i++) {
        cnode_add(d, c->k != NULL ? c->k[i] : NULL, cnode_copy(c->v[i]));
    }
    return d;
}

/* ------------------------------------------------------- interpolation */

static const char *env_lookup(const char *name, compose_lookup_fn lookup, void *arg,
                              const struct compose_env *env)
{
    const char *v = lookup != NULL ? lookup(name, arg) : NULL;
    if (v != NULL) {
        return v;
    }
    size_t len = strlen(name);
    for (size_t i = 0; env != NULL && i < env->n; i++) {
        if (strncmp(env->kv[i], name, len) == 0 && env->kv[i][len] == '=') {
            return env->kv[i] + len + 1;
        }
    }
    return NULL;
}

struct sbuf {
    char *p;
    size_t n, cap;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = cli_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static bool var_char(char c, bool first)
{
    return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

char *compose_interpolate(const char *s, compose_lookup_fn lookup, void *arg,
                          const struct compose_env *env, char *errmsg)
{
    struct sbuf b = {0};
    sbuf_add(&b, "", 0);
    for (const char *p = s; *p != '\0';) {
        if (*p != '$') {
            sbuf_add(&b, p, 1);
            p++;
            continue;
        }
        if (p[1] == '$') {
            sbuf_add(&b, "$", 1);
            p += 2;
            continue;
        }
        if (p[1] != '{') {
            const char *q = p + 1;
            while (var_char(*q, q == p + 1)) {
                q++;
            }
            if (q == p + 1) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Invalid interpolation format for \"%s\"", s);
                free(b.p);
                return NULL;
            }
            char *name = strndup(p + 1, (size_t)(q - p - 1));
            const char *v = env_lookup(name, lookup, arg, env);
            free(name);
            sbuf_add(&b, v != NULL ? v : "", v != NULL ? strlen(v) : 0);
            p = q;
            continue;
        }
        const char *close = strchr(p, '}');
        const char *q = p + 2;
        while (var_char(*q, q == p + 2)) {
            q++;
        }
        if (close == NULL || q == p + 2) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Invalid interpolation format for \"%s\"", s);
            free(b.p);
            return NULL;
        }
        char *name = strndup(p + 2, (size_t)(q - p - 2));
        const char *v = env_lookup(name, lookup, arg, env);
        bool colon = *q == ':';
        const char *op = colon ? q + 1 : q;
        const char *rest = op + 1;
        char *word = strndup(rest, (size_t)(close > rest ? close - rest : 0));
        bool unset = v == NULL || (colon && v[0] == '\0');
        const char *out = v;
        bool bad = false;
        if (op == close) {
            if (colon) {
                bad = true;
            }
        } else if (*op == '-') {
            out = unset ? word : v;
        } else if (*op == '?') {
            if (unset) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "required variable %s is missing a value: %s",
                              name, word);
                free(name);
                free(word);
                free(b.p);
                return NULL;
            }
        } else {
            bad = true;
        }
        free(name);
        if (bad) {
            free(word);
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Invalid interpolation format for \"%s\"", s);
            free(b.p);
            return NULL;
        }
        if (out != NULL) {
            char *sub = compose_interpolate(out, lookup, arg, env, errmsg);
            if (out == word && sub == NULL) {
                free(word);
                free(b.p);
                return NULL;
            }
            const char *use = out == word ? sub : out;
            sbuf_add(&b, use, strlen(use));
            free(sub);
        }
        free(word);
        p = close + 1;
    }
    return b.p;
}

/* ------------------------------------------------------------ YAML load */

struct loadctx {
    yaml_document_t *doc;
    const char *file;
    compose_lookup_fn lookup;
    void *arg;
    const struct compose_env *env;
    size_t count;
    char *errmsg;
};

static int load_err(struct loadctx *c, int line, const char *fmt, const char *a)
{
    char msg[SWARM_ERRMSG_SIZE];
    if (strcmp(fmt, "%s") == 0) {
        snprintf(msg, sizeof msg, "%s", a);
    } else {
        snprintf(msg, sizeof msg, "mapping key \"%s\" already defined", a);
    }
    errmsg_printf(c->errmsg, SWARM_ERRMSG_SIZE, "%s:%d: %s", c->file, line, msg);
    return SWARM_EINVAL;
}

static int load_node(struct loadctx *c, yaml_node_t *n, int depth, bool interp, struct cnode **out);

/* `<<: *anchor` or `<<: [*a, *b]`: keys not set in m come from the maps. */
static int load_merge(struct loadctx *c, struct cnode *m, struct cnode *src, int line)
{
    if (src->kind == CN_MAP) {
        for (size_t i = 0; i < src->n; i++) {
            if (cnode_get(m, src->k[i]) == NULL) {
                cnode_add(m, src->k[i], cnode_copy(src->v[i]));
            }
        }
        return 0;
    }
    if (src->kind == CN_SEQ) {
        for (size_t i = 0; i < src->n; i++) {
            if (src->v[i]->kind != CN_MAP || load_merge(c, m, src->v[i], line) != 0) {
                return load_err(c, line, "%s", "a merge key (<<) takes a map or a list of maps");
            }
        }
        return 0;
    }
    return load_err(c, line, "%s", "a merge key (<<) takes a map or a list of maps");
}

static int load_node(struct loadctx *c, yaml_node_t *n, int depth, bool interp, struct cnode **out)
{
    int line = (int)n->start_mark.line + 1;
    if (depth > COMPOSE_MAX_DEPTH || ++c->count > COMPOSE_MAX_NODES) {
        return load_err(c, line, "%s", "document too deep or too large (aliases expanding?)");
    }
    if (n->type == YAML_SCALAR_NODE) {
        struct cnode *s = cnode_new(CN_SCALAR, c->file, line);
        const char *raw = (const char *)n->data.scalar.value;
        s->plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        s->null = s->plain && (raw[0] == '\0' || strcmp(raw, "~") == 0 || strcasecmp(raw, "null") == 0);
        if (interp) {
            char msg[SWARM_ERRMSG_SIZE];
            s->s = compose_interpolate(raw, c->lookup, c->arg, c->env, msg);
            if (s->s == NULL) {
                cnode_free(s);
                return load_err(c, line, "%s", msg);
            }
        } else {
            s->s = xstrdup(raw);
        }
        *out = s;
        return 0;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        struct cnode *q = cnode_new(CN_SEQ, c->file, line);
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            struct cnode *v;
            if (load_node(c, yaml_document_get_node(c->doc, *it), depth + 1, interp, &v) != 0) {
                cnode_free(q);
                return SWARM_EINVAL;
            }
            cnode_add(q, NULL, v);
        }
        *out = q;
        return 0;
    }
    struct cnode *m = cnode_new(CN_MAP, c->file, line);
    struct cnode *merge = NULL;
    int merge_line = line;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        int kline = (int)k->start_mark.line + 1;
        if (k->type != YAML_SCALAR_NODE) {
            cnode_free(m);
            cnode_free(merge);
            return load_err(c, kline, "%s", "a key must be a string");
        }
        const char *key = (const char *)k->data.scalar.value;
        struct cnode *v;
        /* x-* extension values are kept verbatim: they are not ours. */
        bool x = strncmp(key, "x-", 2) == 0;
        if (load_node(c, yaml_document_get_node(c->doc, p->value), depth + 1, interp && !x, &v) != 0) {
            cnode_free(m);
            cnode_free(merge);
            return SWARM_EINVAL;
        }
        if (strcmp(key, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            cnode_free(merge);
            merge = v;
            merge_line = kline;
            continue;
        }
        if (cnode_get(m, key) != NULL) {
            cnode_free(v);
            cnode_free(m);
            cnode_free(merge);
            return load_err(c, kline, "mapping key \"%s\" already defined", key);
        }
        cnode_add(m, key, v);
        m->v[m->n - 1]->line = m->v[m->n - 1]->kind == CN_SCALAR ? m->v[m->n - 1]->line : kline;
    }
    if (merge != NULL) {
        int rv = load_merge(c, m, merge, merge_line);
        cnode_free(merge);
        if (rv != 0) {
            cnode_free(m);
            return rv;
        }
    }
    *out = m;
    return 0;
}

static int load_yaml(const char *file, const char *text, size_t len, compose_lookup_fn lookup,
                     void *arg, const struct compose_env *env, struct cnode **out, char *errmsg)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        cli_oom();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        const yaml_mark_t *mk = parser.problem_mark.line > 0 || parser.context_mark.line == 0
                                    ? &parser.problem_mark
                                    : &parser.context_mark;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s:%d: yaml: %s%s%s", file, (int)mk->line + 1,
                      parser.problem != NULL ? parser.problem : "invalid YAML",
                      parser.context != NULL ? " " : "",
                      parser.context != NULL ? parser.context : "");
        yaml_parser_delete(&parser);
        return SWARM_EINVAL;
    }
    yaml_parser_delete(&parser);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rv = 0;
    if (root == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: empty compose file", file);
        rv = SWARM_EINVAL;
    } else if (root->type != YAML_MAPPING_NODE) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s:%d: Top-level object must be a mapping", file,
                      (int)root->start_mark.line + 1);
        rv = SWARM_EINVAL;
    } else {
        struct loadctx c = {&doc, file, lookup, arg, env, 0, errmsg};
        rv = load_node(&c, root, 0, true, out);
    }
    yaml_document_delete(&doc);
    return rv;
}

/* Later files override: maps key by key, anything else replaced. */
static void cnode_merge(struct cnode *base, struct cnode *over)
{
    for (size_t i = 0; i < over->n; i++) {
        struct cnode *b = NULL;
        size_t bi = 0;
        for (; bi < base->n; bi++) {
            if (strcmp(base->k[bi], over->k[i]) == 0) {
                b = base->v[bi];
                break;
            }
        }
        if (b == NULL) {
            cnode_add(base, over->k[i], over->v[i]);
        } else if (b->kind == CN_MAP && over->v[i]->kind == CN_MAP) {
            cnode_merge(b, over->v[i]); /* frees over->v[i] */
        } else {
            cnode_free(b);
            base->v[bi] = over->v[i];
        }
        free(over->k[i]);
    }
    free(over->k);
    free(over->v);
    over->k = NULL;
    over->v = NULL;
    over->n = 0;
    cnode_free(over);
}

/* .env / env_file lines: K=V, blank lines and # comments skipped. */
static int parse_envfile(const char *file, const char *text, char ***kv, size_t *n, char *errmsg)
{
    int line = 0;
    for (const char *p = text; *p != '\0';) {
        const char *e = strchr(p, '\n');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        line++;
        char *l = strndup(p, len);
        if (l == NULL) {
            cli_oom();
        }
        size_t ll = strlen(l);
        while (ll > 0 && (l[ll - 1] == '\r' || l[ll - 1] == ' ' || l[ll - 1] == '\t')) {
            l[--ll] = '\0';
        }
        char *s = l;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (*s != '\0' && *s != '#') {
            char *eq = strchr(s, '=');
            if (eq == s || (strchr(s, ' ') != NULL && (eq == NULL || strchr(s, ' ') < eq))) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s:%d: invalid variable line \"%s\"", file,
                              line, s);
                free(l);
                return SWARM_EINVAL;
            }
            strv_push(kv, n, s);
        }
        free(l);
        p += len;
        if (*p == '\n') {
            p++;
        }
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, char *errmsg)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct sbuf b = {0};
    sbuf_add(&b, "", 0);
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.n + r > COMPOSE_MAX_FILE) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: file too large", path);
            fclose(f);
            free(b.p);
            return NULL;
        }
        sbuf_add(&b, chunk, r);
    }
    fclose(f);
    if (len != NULL) {
        *len = b.n;
    }
    return b.p;
}

/* ------------------------------------------------------------ typed walk */

struct walk {
    struct compose_project *p;
    struct cnode *root;
    const char *dir; /* of the first file, for relative paths */
    bool from_disk;
    char *errmsg;
};

static int walk_err(struct walk *w, const struct cnode *n, const char *path, const char *msg)
{
    errmsg_printf(w->errmsg, SWARM_ERRMSG_SIZE, "%s:%d: %s %s", n->file, n->line, path, msg);
    return SWARM_EINVAL;
}

static bool is_bool(const struct cnode *n, bool *out)
{
    if (n->kind != CN_SCALAR || !n->plain) {
        return false;
    }
    static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(n->s, t[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(n->s, f[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool is_int(const struct cnode *n)
{
    if (n->kind != CN_SCALAR || !n->plain || n->s[0] == '\0') {
        return false;
    }
    const char *p = n->s + (n->s[0] == '-' || n->s[0] == '+');
    if (*p == '\0') {
        return false;
    }
    for (; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
    }
    return true;
}

static bool is_number(const struct cnode *n)
{
    if (n->kind != CN_SCALAR || !n->plain || n->s[0] == '\0') {
        return false;
    }
    char *end;
    (void)strtod(n->s, &end);
    return *end == '\0';
}

static int want_str(struct walk *w, const struct cnode *n, const char *path)
{
    if (n->kind != CN_SCALAR || n->null) {
        return walk_err(w, n, path, "must be a string");
    }
    return 0;
}

static int want_int(struct walk *w, const struct cnode *n, const char *path)
{
    return is_int(n) ? 0 : walk_err(w, n, path, "must be a integer");
}

static int want_bool(struct walk *w, const struct cnode *n, const char *path, bool *b)
{
    return is_bool(n, b) ? 0 : walk_err(w, n, path, "must be a boolean");
}

static int want_map(struct walk *w, const struct cnode *n, const char *path)
{
    return n->kind == CN_MAP ? 0 : walk_err(w, n, path, "must be a mapping");
}

/* A list of strings, or (string_ok) one string as a one-item list. */
static int want_strlist(struct walk *w, const struct cnode *n, const char *path, bool string_ok)
{
    if (n->kind == CN_SCALAR && string_ok && !n->null) {
        return 0;
    }
    if (n->kind != CN_SEQ) {
        return walk_err(w, n, path, string_ok ? "must be a string or list" : "must be a array");
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->v[i]->kind != CN_SCALAR || n->v[i]->null) {
            char p[512];
            snprintf(p, sizeof p, "%s.%zu", path, i);
            return walk_err(w, n->v[i], p, "must be a string");
        }
    }
    return 0;
}

/* Keys of map n must be in `allowed` (NULL-terminated), or x-*. */
static int check_keys(struct walk *w, const struct cnode *n, const char *path,
                      const char *const *allowed, const char *const *ignored)
{
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->k[i];
        bool ok = strncmp(k, "x-", 2) == 0;
        for (size_t j = 0; !ok && allowed[j] != NULL; j++) {
            ok = strcmp(k, allowed[j]) == 0;
        }
        for (size_t j = 0; !ok && ignored != NULL && ignored[j] != NULL; j++) {
            if (strcmp(k, ignored[j]) == 0) {
                ok = true;
                bool seen = false;
                for (size_t m = 0; m < w->p->n_ignored && !seen; m++) {
                    seen = strcmp(w->p->ignored[m], k) == 0;
                }
                if (!seen) {
                    strv_push(&w->p->ignored, &w->p->n_ignored, k);
                }
            }
        }
        if (!ok) {
            char msg[512];
            snprintf(msg, sizeof msg, "Additional property %s is not allowed", k);
            return walk_err(w, n->v[i], path, msg);
        }
    }
    return 0;
}

static void svc_word(struct compose_service *s, const char *flag, const char *value,
                     const char *path, const struct cnode *at)
{
    s->words = cli_xrealloc(s->words, (s->n_words + 1) * sizeof *s->words);
    struct compose_word *wd = &s->words[s->n_words++];
    wd->flag = xstrdup(flag);
    wd->value = xstrdup(value);
    wd->path = xstrdup(path);
    wd->file = at->file;
    wd->line = at->line;
}

/* Scalar keys that map to one flag. */
struct keyflag {
    const char *key, *flag;
    char type; /* s string, i integer, b boolean, n number */
};

static int walk_keyflags(struct walk *w, struct compose_service *s, const struct cnode *m,
                         const char *path, const struct keyflag *kf)
{
    char p[512];
    for (size_t i = 0; kf[i].key != NULL; i++) {
        const struct cnode *v = cnode_get(m, kf[i].key);
        if (v == NULL) {
            continue;
        }
        snprintf(p, sizeof p, "%s.%s", path, kf[i].key);
        bool b;
        int rv = kf[i].type == 'i'   ? want_int(w, v, p)
                 : kf[i].type == 'b' ? want_bool(w, v, p, &b)
                 : kf[i].type == 'n' ? (is_number(v) || (v->kind == CN_SCALAR && !v->null)
                                            ? 0
                                            : walk_err(w, v, p, "must be a number"))
                                     : want_str(w, v, p);
        if (rv != 0) {
            return rv;
        }
        if (kf[i].type == 'b') {
            char fl[128];
            snprintf(fl, sizeof fl, "%s=%s", kf[i].flag, b ? "true" : "false");
            svc_word(s, fl, "", p, v);
        } else {
            svc_word(s, kf[i].flag, v->s, p, v);
        }
    }
    return 0;
}

static struct compose_network *proj_network(struct compose_project *p, const char *key)
{
    for (size_t i = 0; i < p->n_networks; i++) {
        if (strcmp(p->networks[i].key, key) == 0) {
            return &p->networks[i];
        }
    }
    return NULL;
}

static struct compose_volume *proj_volume(struct compose_project *p, const char *key)
{
    for (size_t i = 0; i < p->n_volumes; i++) {
        if (strcmp(p->volumes[i].key, key) == 0) {
            return &p->volumes[i];
        }
    }
    return NULL;
}

static char *stack_name(const char *stack, const char *key)
{
    char *s = cli_xrealloc(NULL, strlen(stack) + strlen(key) + 2);
    sprintf(s, "%s_%s", stack, key);
    return s;
}

static int walk_update_config(struct walk *w, struct compose_service *s, const struct cnode *n,
                              const char *path, const char *kind)
{
    static const char *const keys[] = {"parallelism", "delay", "failure_action", "monitor",
                                       "max_failure_ratio", "order", NULL};
    if (want_map(w, n, path) != 0 || check_keys(w, n, path, keys, NULL) != 0) {
        return SWARM_EINVAL;
    }
    char f[6][48];
    snprintf(f[0], sizeof f[0], "--%s-parallelism", kind);
    snprintf(f[1], sizeof f[1], "--%s-delay", kind);
    snprintf(f[2], sizeof f[2], "--%s-failure-action", kind);
    snprintf(f[3], sizeof f[3], "--%s-monitor", kind);
    snprintf(f[4], sizeof f[4], "--%s-max-failure-ratio", kind);
    snprintf(f[5], sizeof f[5], "--%s-order", kind);
    struct keyflag kf[] = {{"parallelism", f[0], 'i'}, {"delay", f[1], 's'},
                           {"failure_action", f[2], 's'}, {"monitor", f[3], 's'},
                           {"max_failure_ratio", f[4], 'n'}, {"order", f[5], 's'}, {NULL, NULL, 0}};
    return walk_keyflags(w, s, n, path, kf);
}

static int walk_resources(struct walk *w, struct compose_service *s, const struct cnode *n,
                          const char *path)
{
    static const char *const keys[] = {"limits", "reservations", NULL};
    static const char *const inner[] = {"cpus", "memory", NULL};
    if (want_map(w, n, path) != 0 || check_keys(w, n, path, keys, NULL) != 0) {
        return SWARM_EINVAL;
    }
    char p[512];
    const struct cnode *l = cnode_get(n, "limits"), *r = cnode_get(n, "reservations");
    if (l != NULL) {
        snprintf(p, sizeof p, "%s.limits", path);
        struct keyflag kf[] = {{"cpus", "--limit-cpu", 'n'}, {"memory", "--limit-memory", 's'}, {NULL, NULL, 0}};
        if (want_map(w, l, p) != 0 || check_keys(w, l, p, inner, NULL) != 0 ||
            walk_keyflags(w, s, l, p, kf) != 0) {
            return SWARM_EINVAL;
        }
    }
    if (r != NULL) {
        snprintf(p, sizeof p, "%s.reservations", path);
        struct keyflag kf[] = {{"cpus", "--reserve-cpu", 'n'}, {"memory", "--reserve-memory", 's'}, {NULL, NULL, 0}};
        if (want_map(w, r, p) != 0 || check_keys(w, r, p, inner, NULL) != 0 ||
            walk_keyflags(w, s, r, p, kf) != 0) {
            return SWARM_EINVAL;
        }
    }
    return 0;
}

static int walk_deploy(struct walk *w, struct compose_service *s, const struct cnode *d,
                       const char *path)
{
    static const char *const keys[] = {"mode", "replicas", "endpoint_mode", "labels", "placement",
                                       "resources", "restart_policy", "update_config",
                                       "rollback_config", NULL};
    if (want_map(w, d, path) != 0 || check_keys(w, d, path, keys, NULL) != 0) {
        return SWARM_EINVAL;
    }
    struct keyflag kf[] = {{"mode", "--mode", 's'}, {"replicas", "--replicas", 'i'},
                           {"endpoint_mode", "--endpoint-mode", 's'}, {NULL, NULL, 0}};
    if (walk_keyflags(w, s, d, path, kf) != 0) {
        return SWARM_EINVAL;
    }
    char p[512];
    const struct cnode *n;
    if ((n = cnode_get(d, "labels")) != NULL) {
        snprintf(p, sizeof p, "%s.labels", path);
        if (n->kind == CN_MAP) {
            for (size_t i = 0; i < n->n; i++) {
                char kv[1024];
                snprintf(kv, sizeof kv, "%s=%s", n->k[i], n->v[i]->null ? "" : n->v[i]->s != NULL ? n->v[i]->s : "");
                if (n->v[i]->kind != CN_SCALAR) {
                    return walk_err(w, n->v[i], p, "must be a string");
                }
                svc_word(s, "--label", kv, p, n->v[i]);
            }
        } else if (want_strlist(w, n, p, false) == 0) {
            for (size_t i = 0; i < n->n; i++) {
                svc_word(s, "--label", n->v[i]->s, p, n->v[i]);
            }
        } else {
            return SWARM_EINVAL;
        }
    }
    if ((n = cnode_get(d, "placement")) != NULL) {
        static const char *const pk[] = {"constraints", "preferences", "max_replicas_per_node", NULL};
        snprintf(p, sizeof p, "%s.placement", path);
        if (want_map(w, n, p) != 0 || check_keys(w, n, p, pk, NULL) != 0) {
            return SWARM_EINVAL;
        }
        const struct cnode *c = cnode_get(n, "constraints");
        char q[600];
        if (c != NULL) {
            snprintf(q, sizeof q, "%s.constraints", p);
            if (want_strlist(w, c, q, false) != 0) {
                return SWARM_EINVAL;
            }
            for (size_t i = 0; i < c->n; i++) {
                svc_word(s, "--constraint", c->v[i]->s, q, c->v[i]);
            }
        }
        if ((c = cnode_get(n, "preferences")) != NULL) {
            snprintf(q, sizeof q, "%s.preferences", p);
            if (c->kind != CN_SEQ) {
                return walk_err(w, c, q, "must be a array");
            }
            for (size_t i = 0; i < c->n; i++) {
                const struct cnode *sp = cnode_get(c->v[i], "spread");
                if (c->v[i]->kind != CN_MAP || c->v[i]->n != 1 || sp == NULL || want_str(w, sp, q) != 0) {
                    return walk_err(w, c->v[i], q, "must be a list of {spread: LABEL}");
                }
                char v[600];
                snprintf(v, sizeof v, "spread=%s", sp->s);
                svc_word(s, "--placement-pref", v, q, sp);
            }
        }
        struct keyflag mk[] = {{"max_replicas_per_node", "--replicas-max-per-node", 'i'}, {NULL, NULL, 0}};
        if (walk_keyflags(w, s, n, p, mk) != 0) {
            return SWARM_EINVAL;
        }
    }
    if ((n = cnode_get(d, "resources")) != NULL) {
        snprintf(p, sizeof p, "%s.resources", path);
        if (walk_resources(w, s, n, p) != 0) {
            return SWARM_EINVAL;
        }
    }
    if ((n = cnode_get(d, "restart_policy")) != NULL) {
        static const char *const rk[] = {"condition", "delay", "max_attempts", "window", NULL};
        snprintf(p, sizeof p, "%s.restart_policy", path);
        struct keyflag rf[] = {{"condition", "--restart-condition", 's'}, {"delay", "--restart-delay", 's'},
                               {"max_attempts", "--restart-max-attempts", 'i'},
                               {"window", "--restart-window", 's'}, {NULL, NULL, 0}};
        if (want_map(w, n, p) != 0 || check_keys(w, n, p, rk, NULL) != 0 ||
            walk_keyflags(w, s, n, p, rf) != 0) {
            return SWARM_EINVAL;
        }
    }
    if ((n = cnode_get(d, "update_config")) != NULL) {
        snprintf(p, sizeof p, "%s.update_config", path);
        if (walk_update_config(w, s, n, p, "update") != 0) {
            return SWARM_EINVAL;
        }
    }
    if ((n = cnode_get(d, "rollback_config")) != NULL) {
        snprintf(p, sizeof p, "%s.rollback_config", path);
        if (walk_update_config(w, s, n, p, "rollback") != 0) {
            return SWARM_EINVAL;
        }
    }
    return 0;
}

/* A list of words, or a string split as a shell would. */
static int walk_words(struct walk *w, const struct cnode *n, const char *path, char ***out,
                      size_t *nout)
{
    if (want_strlist(w, n, path, true) != 0) {
        return SWARM_EINVAL;
    }
    if (n->kind == CN_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            strv_push(out, nout, n->v[i]->s);
        }
        return 0;
    }
    char msg[SWARM_ERRMSG_SIZE];
    if (cli_svc_split_words(n->s, out, nout, msg) != 0) {
        return walk_err(w, n, path, msg);
    }
    return 0;
}

/* environment / env_file into one K=V list, later keys replacing earlier. */
static void env_set(char ***env, size_t *n, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < *n; i++) {
        const char *e = strchr((*env)[i], '=');
        size_t l = e != NULL ? (size_t)(e - (*env)[i]) : strlen((*env)[i]);
        if (l == klen && strncmp((*env)[i], kv, klen) == 0) {
            free((*env)[i]);
            (*env)[i] = xstrdup(kv);
            return;
        }
    }
    strv_push(env, n, kv);
}

static char *path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || dir == NULL) {
        return xstrdup(rel);
    }
    const char *r = strncmp(rel, "./", 2) == 0 ? rel + 2 : rel;
    char *s = cli_xrealloc(NULL, strlen(dir) + strlen(r) + 2);
    sprintf(s, "%s/%s", dir, r);
    return s;
}

static int walk_env(struct walk *w, struct compose_service *s, const struct cnode *svc,
                    const char *path)
{
    char **env = NULL, p[512];
    size_t n_env = 0;
    int rv = 0;
    const struct cnode *n = cnode_get(svc, "env_file");
    if (n != NULL) {
        snprintf(p, sizeof p, "%s.env_file", path);
        if ((rv = want_strlist(w, n, p, true)) != 0) {
            goto out;
        }
        for (size_t i = 0; i < (n->kind == CN_SEQ ? n->n : 1); i++) {
            const struct cnode *f = n->kind == CN_SEQ ? n->v[i] : n;
            if (!w->from_disk) {
                rv = walk_err(w, f, p, "env_file needs a file on disk");
                goto out;
            }
            char *fp = path_join(w->dir, f->s), msg[SWARM_ERRMSG_SIZE];
            char *text = read_file(fp, NULL, msg);
            char **kv = NULL;
            size_t nkv = 0;
            if (text == NULL || parse_envfile(fp, text, &kv, &nkv, msg) != 0) {
                free(fp);
                free(text);
                strv_free(kv, nkv);
                rv = walk_err(w, f, p, msg);
                goto out;
            }
            for (size_t k = 0; k < nkv; k++) {
                env_set(&env, &n_env, kv[k]);
            }
            strv_free(kv, nkv);
            free(fp);
            free(text);
        }
    }
    if ((n = cnode_get(svc, "environment")) != NULL) {
        snprintf(p, sizeof p, "%s.environment", path);
        if (n->kind == CN_MAP) {
            for (size_t i = 0; i < n->n; i++) {
                if (n->v[i]->kind != CN_SCALAR) {
                    rv = walk_err(w, n->v[i], p, "must be a string, number, boolean or null");
                    goto out;
                }
                char *kv = cli_xrealloc(NULL, strlen(n->k[i]) + strlen(n->v[i]->s) + 2);
                if (n->v[i]->null) {
                    strcpy(kv, n->k[i]); /* from the client's environment, as Docker */
                } else {
                    sprintf(kv, "%s=%s", n->k[i], n->v[i]->s);
                }
                env_set(&env, &n_env, kv);
                free(kv);
            }
        } else if ((rv = want_strlist(w, n, p, false)) == 0) {
            for (size_t i = 0; i < n->n; i++) {
                env_set(&env, &n_env, n->v[i]->s);
            }
        } else {
            goto out;
        }
    }
    for (size_t i = 0; i < n_env; i++) {
        svc_word(s, "--env", env[i], p, n != NULL ? n : svc);
    }
out:
    strv_free(env, n_env);
    return rv;
}

static int walk_ports(struct walk *w, struct compose_service *s, const struct cnode *n,
                      const char *path)
{
    if (n->kind != CN_SEQ) {
        return walk_err(w, n, path, "must be a array");
    }
    static const char *const keys[] = {"target", "published", "protocol", "mode", NULL};
    for (size_t i = 0; i < n->n; i++) {
        const struct cnode *e = n->v[i];
        char p[512];
        snprintf(p, sizeof p, "%s.%zu", path, i);
        if (e->kind == CN_SCALAR && !e->null) {
            svc_word(s, "--publish", e->s, p, e);
            continue;
        }
        if (e->kind != CN_MAP) {
            return walk_err(w, e, p, "must be a string, number or mapping");
        }
        if (check_keys(w, e, p, keys, NULL) != 0) {
            return SWARM_EINVAL;
        }
        char v[512] = "";
        size_t len = 0;
        for (size_t k = 0; keys[k] != NULL; k++) {
            const struct cnode *x = cnode_get(e, keys[k]);
            if (x == NULL) {
                continue;
            }
            char q[600];
            snprintf(q, sizeof q, "%s.%s", p, keys[k]);
            if ((k < 2 ? want_int(w, x, q) : want_str(w, x, q)) != 0) {
                return SWARM_EINVAL;
            }
            len += (size_t)snprintf(v + len, sizeof v - len, "%s%s=%s", len > 0 ? "," : "", keys[k], x->s);
            if (len >= sizeof v) {
                return walk_err(w, e, p, "is too long");
            }
        }
        if (cnode_get(e, "target") == NULL) {
            return walk_err(w, e, p, "target is required");
        }
        svc_word(s, "--publish", v, p, e);
    }
    return 0;
}

/* A named volume's source: declared at the top level, STACK_NAME unless
 * external or named. Paths (/, ./, ~) are binds. */
static int volume_source(struct walk *w, const struct cnode *at, const char *path, const char *src,
                         char **out, const char **type)
{
    if (src[0] == '/' || src[0] == '.' || src[0] == '~') {
        *type = "bind";
        *out = path_join(w->dir, src);
        return 0;
    }
    struct compose_volume *v = proj_volume(w->p, src);
    if (v == NULL) {
        char msg[600];
        snprintf(msg, sizeof msg, "refers to undefined volume %s: invalid compose project", src);
        return walk_err(w, at, path, msg);
    }
    *type = "volume";
    *out = xstrdup(v->name);
    return 0;
}

static int walk_volumes(struct walk *w, struct compose_service *s, const struct cnode *n,
                        const char *path)
{
    if (n->kind != CN_SEQ) {
        return walk_err(w, n, path, "must be a array");
    }
    static const char *const keys[] = {"type", "source", "target", "read_only", "tmpfs", "volume",
                                       "bind", "consistency", NULL};
    for (size_t i = 0; i < n->n; i++) {
        const struct cnode *e = n->v[i];
        char p[512], v[2048];
        snprintf(p, sizeof p, "%s.%zu", path, i);
        if (e->kind == CN_SCALAR && !e->null) {
            /* [SOURCE:]TARGET[:ro|rw] */
            char *copy = xstrdup(e->s), *parts[3] = {NULL, NULL, NULL};
            size_t np = 0;
            for (char *save = NULL, *t = strtok_r(copy, ":", &save); t != NULL && np < 3;
                 t = strtok_r(NULL, ":", &save)) {
                parts[np++] = t;
            }
            bool ro = false;
            if (np == 3 || (np == 2 && parts[1][0] != '/')) {
                const char *mode = parts[np - 1];
                if (strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0) {
                    free(copy);
                    return walk_err(w, e, p, "invalid mode (ro or rw)");
                }
                ro = strcmp(mode, "ro") == 0;
                np--;
            }
            if (np == 1) {
                snprintf(v, sizeof v, "type=volume,target=%s%s", parts[0], ro ? ",readonly" : "");
            } else if (np == 2) {
                char *src;
                const char *type;
                if (volume_source(w, e, p, parts[0], &src, &type) != 0) {
                    free(copy);
                    return SWARM_EINVAL;
                }
                snprintf(v, sizeof v, "type=%s,source=%s,target=%s%s", type, src, parts[1],
                         ro ? ",readonly" : "");
                free(src);
            } else {
                free(copy);
                return walk_err(w, e, p, "invalid volume specification");
            }
            free(copy);
            svc_word(s, "--mount", v, p, e);
            continue;
        }
        if (e->kind != CN_MAP || check_keys(w, e, p, keys, NULL) != 0) {
            return e->kind != CN_MAP ? walk_err(w, e, p, "must be a string or mapping") : SWARM_EINVAL;
        }
        const struct cnode *ty = cnode_get(e, "type"), *src = cnode_get(e, "source"),
                           *tg = cnode_get(e, "target"), *ro = cnode_get(e, "read_only"),
                           *tmpfs = cnode_get(e, "tmpfs");
        char q[600];
        snprintf(q, sizeof q, "%s.target", p);
        if (tg == NULL) {
            return walk_err(w, e, p, "target is required");
        }
        if (want_str(w, tg, q) != 0 || (ty != NULL && want_str(w, ty, p) != 0) ||
            (src != NULL && want_str(w, src, p) != 0)) {
            return SWARM_EINVAL;
        }
        const char *type = ty != NULL ? ty->s : "volume";
        size_t len = (size_t)snprintf(v, sizeof v, "type=%s,target=%s", type, tg->s);
        if (src != NULL) {
            char *real = NULL;
            const char *kind;
            if (strcmp(type, "volume") == 0 && volume_source(w, src, p, src->s, &real, &kind) != 0) {
                return SWARM_EINVAL;
            }
            if (strcmp(type, "bind") == 0) {
                real = path_join(w->dir, src->s);
            }
            len += (size_t)snprintf(v + len, sizeof v - len, ",source=%s", real != NULL ? real : src->s);
            free(real);
        }
        bool b;
        snprintf(q, sizeof q, "%s.read_only", p);
        if (ro != NULL && want_bool(w, ro, q, &b) != 0) {
            return SWARM_EINVAL;
        }
        if (ro != NULL && b) {
            len += (size_t)snprintf(v + len, sizeof v - len, ",readonly");
        }
        if (tmpfs != NULL) {
            const struct cnode *sz = cnode_get(tmpfs, "size");
            snprintf(q, sizeof q, "%s.tmpfs.size", p);
            if (sz != NULL && want_str(w, sz, q) != 0) {
                return SWARM_EINVAL;
            }
            if (sz != NULL) {
                len += (size_t)snprintf(v + len, sizeof v - len, ",tmpfs-size=%s", sz->s);
            }
        }
        if (len >= sizeof v) {
            return walk_err(w, e, p, "is too long");
        }
        svc_word(s, "--mount", v, p, e);
    }
    return 0;
}

static int network_word(struct walk *w, struct compose_service *s, const struct cnode *at,
                        const char *path, const char *key, const struct cnode *aliases)
{
    struct compose_network *net = proj_network(w->p, key);
    if (net == NULL) {
        char msg[600];
        snprintf(msg, sizeof msg, "refers to undefined network %s: invalid compose project", key);
        return walk_err(w, at, path, msg);
    }
    net->used = true;
    /* Docker: the service's own name is an alias on each of its networks. */
    char v[2048];
    size_t len = (size_t)snprintf(v, sizeof v, "name=%s,alias=%s", net->name, s->name);
    for (size_t i = 0; aliases != NULL && i < aliases->n; i++) {
        len += (size_t)snprintf(v + len, sizeof v - len, ",alias=%s", aliases->v[i]->s);
    }
    if (len >= sizeof v) {
        return walk_err(w, at, path, "is too long");
    }
    svc_word(s, "--network", v, path, at);
    return 0;
}

static int walk_networks_of(struct walk *w, struct compose_service *s, const struct cnode *n,
                            const char *path)
{
    if (n == NULL) {
        return network_word(w, s, cnode_get(w->root, "services"), path, "default", NULL);
    }
    if (n->kind == CN_SEQ) {
        if (want_strlist(w, n, path, false) != 0) {
            return SWARM_EINVAL;
        }
        for (size_t i = 0; i < n->n; i++) {
            if (network_word(w, s, n->v[i], path, n->v[i]->s, NULL) != 0) {
                return SWARM_EINVAL;
            }
        }
        return 0;
    }
    if (n->kind != CN_MAP) {
        return walk_err(w, n, path, "must be a array or mapping");
    }
    static const char *const keys[] = {"aliases", "ipv4_address", "ipv6_address", NULL};
    for (size_t i = 0; i < n->n; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s.%s", path, n->k[i]);
        const struct cnode *v = n->v[i], *al = NULL;
        if (v->kind == CN_MAP) {
            if (check_keys(w, v, p, keys, NULL) != 0) {
                return SWARM_EINVAL;
            }
            al = cnode_get(v, "aliases");
            char q[700];
            snprintf(q, sizeof q, "%s.aliases", p);
            if (al != NULL && want_strlist(w, al, q, false) != 0) {
                return SWARM_EINVAL;
            }
        } else if (!(v->kind == CN_SCALAR && v->null)) {
            return walk_err(w, v, p, "must be a mapping or null");
        }
        if (network_word(w, s, v, p, n->k[i], al) != 0) {
            return SWARM_EINVAL;
        }
    }
    return 0;
}

static int walk_health(struct walk *w, struct compose_service *s, const struct cnode *n,
                       const char *path)
{
    static const char *const keys[] = {"test", "interval", "timeout", "retries", "start_period",
                                       "disable", NULL};
    if (want_map(w, n, path) != 0 || check_keys(w, n, path, keys, NULL) != 0) {
        return SWARM_EINVAL;
    }
    const struct cnode *d = cnode_get(n, "disable"), *t = cnode_get(n, "test");
    bool disable = false;
    char p[600];
    snprintf(p, sizeof p, "%s.disable", path);
    if (d != NULL && want_bool(w, d, p, &disable) != 0) {
        return SWARM_EINVAL;
    }
    if (disable) {
        svc_word(s, "--no-healthcheck", "", p, d);
        return 0;
    }
    struct keyflag kf[] = {{"interval", "--health-interval", 's'}, {"timeout", "--health-timeout", 's'},
                           {"retries", "--health-retries", 'i'},
                           {"start_period", "--health-start-period", 's'}, {NULL, NULL, 0}};
    if (walk_keyflags(w, s, n, path, kf) != 0) {
        return SWARM_EINVAL;
    }
    if (t != NULL) {
        snprintf(p, sizeof p, "%s.test", path);
        if (want_strlist(w, t, p, true) != 0) {
            return SWARM_EINVAL;
        }
        if (t->kind == CN_SCALAR) {
            strv_push(&s->health_test, &s->n_health_test, "CMD-SHELL");
            strv_push(&s->health_test, &s->n_health_test, t->s);
        } else {
            const char *first = t->n > 0 ? t->v[0]->s : "";
            if (strcmp(first, "NONE") != 0 && strcmp(first, "CMD") != 0 &&
                strcmp(first, "CMD-SHELL") != 0) {
                return walk_err(w, t, p, "must start with NONE, CMD or CMD-SHELL");
            }
            for (size_t i = 0; i < t->n; i++) {
                strv_push(&s->health_test, &s->n_health_test, t->v[i]->s);
            }
        }
        /* The test is put in by compose_service_spec; a dummy flag makes
         * the builder create the healthcheck with the other fields. */
        svc_word(s, "--health-cmd", s->health_test[s->n_health_test > 1 ? 1 : 0], p, t);
    }
    return 0;
}

static const char *const service_keys[] = {
    "image", "command", "entrypoint", "environment", "env_file", "ports", "networks", "volumes",
    "secrets", "configs", "healthcheck", "hostname", "user", "working_dir", "labels",
    "stop_grace_period", "stop_signal", "read_only", "cap_add", "cap_drop", "init", "deploy",
    NULL};

/* The keys `docker stack deploy` reports and ignores. */
static const char *const service_ignored[] = {
    "build", "cgroup_parent", "container_name", "depends_on", "devices", "dns", "dns_search",
    "domainname", "expose", "external_links", "extra_hosts", "ipc", "links", "logging",
    "mac_address", "network_mode", "pid", "privileged", "restart", "security_opt", "shm_size",
    "stdin_open", "sysctls", "tmpfs", "tty", "ulimits", "userns_mode", NULL};

static int walk_service(struct walk *w, const char *name, const struct cnode *n,
                        struct compose_service *s)
{
    char path[512], p[600];
    snprintf(path, sizeof path, "services.%s", name);
    s->name = xstrdup(name);
    s->file = n->file;
    s->line = n->line;
    if (want_map(w, n, path) != 0 || check_keys(w, n, path, service_keys, service_ignored) != 0) {
        return SWARM_EINVAL;
    }
    const struct cnode *v = cnode_get(n, "image");
    snprintf(p, sizeof p, "%s.image", path);
    if (v == NULL) {
        return walk_err(w, n, path, "has neither an image nor a build context specified: "
                                    "invalid compose project");
    }
    if (want_str(w, v, p) != 0) {
        return SWARM_EINVAL;
    }
    s->image = xstrdup(v->s);
    const struct cnode *x = cnode_get(n, "x-swarmd-runtime");
    if (x != NULL) {
        snprintf(p, sizeof p, "%s.x-swarmd-runtime", path);
        if (want_str(w, x, p) != 0) {
            return SWARM_EINVAL;
        }
        svc_word(s, "--runtime", x->s, p, x);
    }
    if ((v = cnode_get(n, "command")) != NULL) {
        snprintf(p, sizeof p, "%s.command", path);
        if (walk_words(w, v, p, &s->args, &s->n_args) != 0) {
            return SWARM_EINVAL;
        }
    }
    if ((v = cnode_get(n, "entrypoint")) != NULL) {
        snprintf(p, sizeof p, "%s.entrypoint", path);
        s->has_entrypoint = true;
        if (walk_words(w, v, p, &s->entrypoint, &s->n_entrypoint) != 0) {
            return SWARM_EINVAL;
        }
    }
    static const char *const unsupported[] = {"secrets", "configs"};
    for (size_t i = 0; i < 2; i++) {
        if ((v = cnode_get(n, unsupported[i])) != NULL) {
            snprintf(p, sizeof p, "%s.%s", path, unsupported[i]);
            return walk_err(w, v, p, "is not supported yet: swarmd has no secrets or configs");
        }
    }
    if (walk_env(w, s, n, path) != 0) {
        return SWARM_EINVAL;
    }
    if ((v = cnode_get(n, "ports")) != NULL) {
        snprintf(p, sizeof p, "%s.ports", path);
        if (walk_ports(w, s, v, p) != 0) {
            return SWARM_EINVAL;
        }
    }
    snprintf(p, sizeof p, "%s.networks", path);
    if (walk_networks_of(w, s, cnode_get(n, "networks"), p) != 0) {
        return SWARM_EINVAL;
    }
    if ((v = cnode_get(n, "volumes")) != NULL) {
        snprintf(p, sizeof p, "%s.volumes", path);
        if (walk_volumes(w, s, v, p) != 0) {
            return SWARM_EINVAL;
        }
    }
    if ((v = cnode_get(n, "healthcheck")) != NULL) {
        snprintf(p, sizeof p, "%s.healthcheck", path);
        if (walk_health(w, s, v, p) != 0) {
            return SWARM_EINVAL;
        }
    }
    struct keyflag kf[] = {{"hostname", "--hostname", 's'}, {"user", "--user", 's'},
                           {"working_dir", "--workdir", 's'},
                           {"stop_grace_period", "--stop-grace-period", 's'},
                           {"stop_signal", "--stop-signal", 's'}, {"read_only", "--read-only", 'b'},
                           {"init", "--init", 'b'}, {NULL, NULL, 0}};
    if (walk_keyflags(w, s, n, path, kf) != 0) {
        return SWARM_EINVAL;
    }
    static const char *const caps[] = {"cap_add", "cap_drop"};
    for (size_t i = 0; i < 2; i++) {
        if ((v = cnode_get(n, caps[i])) != NULL) {
            snprintf(p, sizeof p, "%s.%s", path, caps[i]);
            if (want_strlist(w, v, p, false) != 0) {
                return SWARM_EINVAL;
            }
            for (size_t k = 0; k < v->n; k++) {
                svc_word(s, i == 0 ? "--cap-add" : "--cap-drop", v->v[k]->s, p, v->v[k]);
            }
        }
    }
    if ((v = cnode_get(n, "labels")) != NULL) {
        /* Container labels: swarmd's ContainerSpec has none, so they are
         * checked and kept on the service (Docker puts them on containers). */
        snprintf(p, sizeof p, "%s.labels", path);
        if (v->kind == CN_MAP) {
            for (size_t i = 0; i < v->n; i++) {
                if (v->v[i]->kind != CN_SCALAR) {
                    return walk_err(w, v->v[i], p, "must be a string");
                }
                char kv[1024];
                snprintf(kv, sizeof kv, "%s=%s", v->k[i], v->v[i]->null ? "" : v->v[i]->s);
                svc_word(s, "--label", kv, p, v->v[i]);
            }
        } else if (want_strlist(w, v, p, false) == 0) {
            for (size_t i = 0; i < v->n; i++) {
                svc_word(s, "--label", v->v[i]->s, p, v->v[i]);
            }
        } else {
            return SWARM_EINVAL;
        }
    }
    if ((v = cnode_get(n, "deploy")) != NULL) {
        snprintf(p, sizeof p, "%s.deploy", path);
        if (walk_deploy(w, s, v, p) != 0) {
            return SWARM_EINVAL;
        }
    }
    return 0;
}

static int walk_top_networks(struct walk *w, const struct cnode *n)
{
    struct compose_project *p = w->p;
    static const char *const keys[] = {"driver", "driver_opts", "external", "name", "labels",
                                       "attachable", "internal", "ipam", NULL};
    bool has_default = n != NULL && cnode_get(n, "default") != NULL;
    if (n != NULL && want_map(w, n, "networks") != 0) {
        return SWARM_EINVAL;
    }
    size_t count = (n != NULL ? n->n : 0) + (has_default ? 0 : 1);
    p->networks = cli_xcalloc(count, sizeof *p->networks);
    if (!has_default) {
        struct compose_network *d = &p->networks[p->n_networks++];
        d->key = xstrdup("default");
        d->name = stack_name(p->stack, "default");
    }
    for (size_t i = 0; n != NULL && i < n->n; i++) {
        char path[512], q[600];
        snprintf(path, sizeof path, "networks.%s", n->k[i]);
        struct compose_network *net = &p->networks[p->n_networks++];
        net->key = xstrdup(n->k[i]);
        const struct cnode *v = n->v[i];
        if (v->kind == CN_SCALAR && v->null) {
            net->name = stack_name(p->stack, n->k[i]);
            continue;
        }
        if (want_map(w, v, path) != 0 || check_keys(w, v, path, keys, NULL) != 0) {
            return SWARM_EINVAL;
        }
        const struct cnode *ext = cnode_get(v, "external"), *nm = cnode_get(v, "name"), *x;
        snprintf(q, sizeof q, "%s.name", path);
        if (nm != NULL && want_str(w, nm, q) != 0) {
            return SWARM_EINVAL;
        }
        if (ext != NULL) {
            snprintf(q, sizeof q, "%s.external", path);
            const struct cnode *en = ext->kind == CN_MAP ? cnode_get(ext, "name") : NULL;
            if (ext->kind == CN_MAP) {
                static const char *const ek[] = {"name", NULL};
                if (check_keys(w, ext, q, ek, NULL) != 0 || (en != NULL && want_str(w, en, q) != 0)) {
                    return SWARM_EINVAL;
                }
                net->external = true;
            } else if (want_bool(w, ext, q, &net->external) != 0) {
                return SWARM_EINVAL;
            }
            if (net->external && v->n > 1 + (nm != NULL)) {
                return walk_err(w, v, path, "conflicting parameters \"external\" and another key "
                                            "specified for network");
            }
            if (net->external) {
                net->name = xstrdup(en != NULL ? en->s : nm != NULL ? nm->s : n->k[i]);
                continue;
            }
        }
        net->name = nm != NULL ? xstrdup(nm->s) : stack_name(p->stack, n->k[i]);
        if ((x = cnode_get(v, "driver")) != NULL) {
            snprintf(q, sizeof q, "%s.driver", path);
            if (want_str(w, x, q) != 0) {
                return SWARM_EINVAL;
            }
            net->driver = xstrdup(x->s);
        }
        bool b;
        if ((x = cnode_get(v, "attachable")) != NULL) {
            snprintf(q, sizeof q, "%s.attachable", path);
            if (want_bool(w, x, q, &b) != 0) {
                return SWARM_EINVAL;
            }
            net->attachable = b;
        }
        if ((x = cnode_get(v, "internal")) != NULL) {
            snprintf(q, sizeof q, "%s.internal", path);
            if (want_bool(w, x, q, &b) != 0) {
                return SWARM_EINVAL;
            }
            net->internal = b;
        }
        if ((x = cnode_get(v, "labels")) != NULL) {
            snprintf(q, sizeof q, "%s.labels", path);
            if (x->kind == CN_MAP) {
                for (size_t k = 0; k < x->n; k++) {
                    char kv[1024];
                    if (x->v[k]->kind != CN_SCALAR) {
                        return walk_err(w, x->v[k], q, "must be a string");
                    }
                    snprintf(kv, sizeof kv, "%s=%s", x->k[k], x->v[k]->null ? "" : x->v[k]->s);
                    strv_push(&net->labels, &net->n_labels, kv);
                }
            } else if (want_strlist(w, x, q, false) == 0) {
                for (size_t k = 0; k < x->n; k++) {
                    strv_push(&net->labels, &net->n_labels, x->v[k]->s);
                }
            } else {
                return SWARM_EINVAL;
            }
        }
        if ((x = cnode_get(v, "ipam")) != NULL) {
            snprintf(q, sizeof q, "%s.ipam", path);
            const struct cnode *cfg = cnode_get(x, "config");
            if (want_map(w, x, q) != 0) {
                return SWARM_EINVAL;
            }
            if (cfg != NULL && (cfg->kind != CN_SEQ || cfg->n > 1 ||
                                (cfg->n == 1 && cnode_get(cfg->v[0], "subnet") == NULL))) {
                return walk_err(w, cfg, q, "config must be a list of one {subnet: CIDR}");
            }
            if (cfg != NULL && cfg->n == 1) {
                const struct cnode *sn = cnode_get(cfg->v[0], "subnet");
                if (want_str(w, sn, q) != 0) {
                    return SWARM_EINVAL;
                }
                net->subnet = xstrdup(sn->s);
            }
        }
    }
    return 0;
}

static int walk_top_volumes(struct walk *w, const struct cnode *n)
{
    static const char *const keys[] = {"driver", "driver_opts", "external", "name", "labels", NULL};
    if (n == NULL) {
        return 0;
    }
    if (want_map(w, n, "volumes") != 0) {
        return SWARM_EINVAL;
    }
    w->p->volumes = cli_xcalloc(n->n + 1, sizeof *w->p->volumes);
    for (size_t i = 0; i < n->n; i++) {
        char path[512], q[600];
        snprintf(path, sizeof path, "volumes.%s", n->k[i]);
        struct compose_volume *v = &w->p->volumes[w->p->n_volumes++];
        v->key = xstrdup(n->k[i]);
        const struct cnode *x = n->v[i];
        if (x->kind == CN_SCALAR && x->null) {
            v->name = stack_name(w->p->stack, n->k[i]);
            continue;
        }
        if (want_map(w, x, path) != 0 || check_keys(w, x, path, keys, NULL) != 0) {
            return SWARM_EINVAL;
        }
        const struct cnode *ext = cnode_get(x, "external"), *nm = cnode_get(x, "name");
        snprintf(q, sizeof q, "%s.external", path);
        if (ext != NULL && ext->kind != CN_MAP && want_bool(w, ext, q, &v->external) != 0) {
            return SWARM_EINVAL;
        }
        if (ext != NULL && ext->kind == CN_MAP) {
            v->external = true;
            nm = cnode_get(ext, "name") != NULL ? cnode_get(ext, "name") : nm;
        }
        snprintf(q, sizeof q, "%s.name", path);
        if (nm != NULL && want_str(w, nm, q) != 0) {
            return SWARM_EINVAL;
        }
        v->name = nm != NULL ? xstrdup(nm->s) : v->external ? xstrdup(n->k[i]) : stack_name(w->p->stack, n->k[i]);
    }
    return 0;
}

static int walk_project(struct walk *w)
{
    static const char *const top[] = {"version", "services", "networks", "volumes", "secrets",
                                       "configs", NULL};
    const struct cnode *r = w->root, *n;
    if (check_keys(w, r, "(root)", top, NULL) != 0) {
        return SWARM_EINVAL;
    }
    if ((n = cnode_get(r, "version")) != NULL && want_str(w, n, "version") != 0) {
        return SWARM_EINVAL;
    }
    static const char *const unsupported[] = {"secrets", "configs"};
    for (size_t i = 0; i < 2; i++) {
        if ((n = cnode_get(r, unsupported[i])) != NULL) {
            return walk_err(w, n, unsupported[i],
                            "is not supported yet: swarmd has no secrets or configs");
        }
    }
    if (walk_top_networks(w, cnode_get(r, "networks")) != 0 ||
        walk_top_volumes(w, cnode_get(r, "volumes")) != 0) {
        return SWARM_EINVAL;
    }
    n = cnode_get(r, "services");
    if (n == NULL || n->kind != CN_MAP || n->n == 0) {
        return n == NULL || n->kind == CN_MAP
                   ? walk_err(w, n != NULL ? n : r, "services", "is required: no service to deploy")
                   : walk_err(w, n, "services", "must be a mapping");
    }
    w->p->services = cli_xcalloc(n->n, sizeof *w->p->services);
    for (size_t i = 0; i < n->n; i++) {
        if (strncmp(n->k[i], "x-", 2) == 0) {
            continue;
        }
        struct compose_service *s = &w->p->services[w->p->n_services++];
        if (walk_service(w, n->k[i], n->v[i], s) != 0) {
            return SWARM_EINVAL;
        }
    }
    /* Check each word alone with `service create`'s parser: a bad value is
     * reported with its key and line. */
    for (size_t i = 0; i < w->p->n_services; i++) {
        const struct compose_service *s = &w->p->services[i];
        for (size_t k = 0; k < s->n_words; k++) {
            struct cli_svc_opts o = {0};
            struct cli_flag flags[CLI_SVC_MAX_FLAGS];
            cli_svc_flags(&o, false, flags);
            struct cli_spec spec = {"swarmctl stack deploy", "", "", NULL, CLI_ARGS_ANY, 0, 0, flags, false};
            char *argv[2] = {s->words[k].flag, s->words[k].value}, **pos = NULL, msg[SWARM_ERRMSG_SIZE];
            int npos = 0;
            int argc = s->words[k].value[0] != '\0' || strchr(s->words[k].flag, '=') == NULL ? 2 : 1;
            if (strcmp(s->words[k].flag, "--no-healthcheck") == 0) {
                argc = 1;
            }
            enum cli_parse_result pr = cli_args_parse(&spec, argc, argv, &pos, &npos, msg);
            free(pos);
            cli_svc_opts_free(&o);
            if (pr != CLI_PARSE_OK) {
                char *nl = strchr(msg, '\n');
                if (nl != NULL) {
                    *nl = '\0';
                }
                errmsg_printf(w->errmsg, SWARM_ERRMSG_SIZE, "%s:%d: %s: %s", s->words[k].file,
                              s->words[k].line, s->words[k].path, msg);
                return SWARM_EINVAL;
            }
        }
    }
    /* And each whole spec (what needs several keys, e.g. replicas with a
     * global mode). */
    for (size_t i = 0; i < w->p->n_services; i++) {
        Swarm__ServiceSpec *spec = compose_service_spec(w->p, i, w->errmsg);
        if (spec == NULL) {
            return SWARM_EINVAL;
        }
        protobuf_c_message_free_unpacked(&spec->base, NULL);
    }
    for (size_t i = 0; i < w->p->n_ignored; i++) {
        for (size_t k = i + 1; k < w->p->n_ignored; k++) {
            if (strcmp(w->p->ignored[k], w->p->ignored[i]) < 0) {
                char *t = w->p->ignored[i];
                w->p->ignored[i] = w->p->ignored[k];
                w->p->ignored[k] = t;
            }
        }
    }
    return 0;
}

static char *dir_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (slash == NULL) {
        return xstrdup(".");
    }
    return strndup(file, slash == file ? 1 : (size_t)(slash - file));
}

static int compose_build(char *const *names, char *const *texts, size_t n, const char *dotenv,
                         bool from_disk, const char *stack, compose_lookup_fn lookup, void *arg,
                         struct compose_project **out, char *errmsg)
{
    struct compose_env env = {0};
    struct compose_project *p = cli_xcalloc(1, sizeof *p);
    struct cnode *root = NULL;
    char *dir = n > 0 ? dir_of(names[0]) : NULL;
    int rv = 0;
    p->stack = xstrdup(stack);
    for (size_t i = 0; i < n; i++) {
        strv_push(&p->files, &p->n_files, names[i]);
    }
    if (n == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Please specify a Compose file (with --compose-file)");
        rv = SWARM_EINVAL;
        goto out;
    }
    if (dotenv != NULL) {
        char envname[4096];
        snprintf(envname, sizeof envname, "%s/.env", dir);
        if ((rv = parse_envfile(envname, dotenv, &env.kv, &env.n, errmsg)) != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct cnode *t = NULL;
        if ((rv = load_yaml(p->files[i], texts[i], strlen(texts[i]), lookup, arg, &env, &t, errmsg)) != 0) {
            goto out;
        }
        if (root == NULL) {
            root = t;
        } else {
            cnode_merge(root, t);
        }
    }
    struct walk w = {p, root, dir, from_disk, errmsg};
    rv = walk_project(&w);
out:
    cnode_free(root);
    strv_free(env.kv, env.n);
    free(dir);
    if (rv != 0) {
        compose_free(p);
        p = NULL;
    }
    *out = p;
    return rv;
}

int compose_load_texts(char *const *names, char *const *texts, size_t n, const char *dotenv,
                       const char *stack, compose_lookup_fn lookup, void *lookup_arg,
                       struct compose_project **out, char *errmsg)
{
    return compose_build(names, texts, n, dotenv, false, stack, lookup, lookup_arg, out, errmsg);
}

int compose_load(char *const *files, size_t n_files, const char *stack, compose_lookup_fn lookup,
                 void *lookup_arg, struct compose_project **out, char *errmsg)
{
    char **texts = cli_xcalloc(n_files + 1, sizeof *texts), *dotenv = NULL;
    int rv = 0;
    *out = NULL;
    for (size_t i = 0; i < n_files; i++) {
        if ((texts[i] = read_file(files[i], NULL, errmsg)) == NULL) {
            rv = SWARM_EINVAL;
            goto out;
        }
    }
    if (n_files > 0) {
        char *dir = dir_of(files[0]), path[4096];
        snprintf(path, sizeof path, "%s/.env", dir);
        free(dir);
        FILE *f = fopen(path, "rb");
        if (f != NULL) {
            fclose(f);
            if ((dotenv = read_file(path, NULL, errmsg)) == NULL) {
                rv = SWARM_EINVAL;
                goto out;
            }
        }
    }
    rv = compose_build(files, texts, n_files, dotenv, true, stack, lookup, lookup_arg, out, errmsg);
out:
    for (size_t i = 0; i < n_files; i++) {
        free(texts[i]);
    }
    free(texts);
    free(dotenv);
    return rv;
}

void compose_free(struct compose_project *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n_services; i++) {
        struct compose_service *s = &p->services[i];
        free(s->name);
        free(s->image);
        strv_free(s->args, s->n_args);
        strv_free(s->entrypoint, s->n_entrypoint);
        strv_free(s->health_test, s->n_health_test);
        for (size_t k = 0; k < s->n_words; k++) {
            free(s->words[k].flag);
            free(s->words[k].value);
            free(s->words[k].path);
        }
        free(s->words);
    }
    free(p->services);
    for (size_t i = 0; i < p->n_networks; i++) {
        free(p->networks[i].key);
        free(p->networks[i].name);
        free(p->networks[i].driver);
        free(p->networks[i].subnet);
        strv_free(p->networks[i].labels, p->networks[i].n_labels);
    }
    free(p->networks);
    for (size_t i = 0; i < p->n_volumes; i++) {
        free(p->volumes[i].key);
        free(p->volumes[i].name);
    }
    free(p->volumes);
    strv_free(p->ignored, p->n_ignored);
    strv_free(p->files, p->n_files);
    free(p->stack);
    free(p);
}

void compose_ignored_message(const struct compose_project *p, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->n_ignored && len < size; i++) {
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i == 0 ? "Ignoring unsupported options: " : ", ", p->ignored[i]);
    }
}

/* ------------------------------------------------------------ the spec */

Swarm__ServiceSpec *compose_service_spec(const struct compose_project *p, size_t i, char *errmsg)
{
    const struct compose_service *s = &p->services[i];
    size_t max = 2 * s->n_words + 8 + s->n_args;
    char **argv = cli_xcalloc(max, sizeof *argv), *name = stack_name(p->stack, s->name);
    char label[512];
    int argc = 0;
    snprintf(label, sizeof label, "%s=%s", COMPOSE_NAMESPACE_LABEL, p->stack);
    argv[argc++] = (char *)"--name";
    argv[argc++] = name;
    argv[argc++] = (char *)"--label";
    argv[argc++] = label;
    for (size_t k = 0; k < s->n_words; k++) {
        argv[argc++] = s->words[k].flag;
        if (s->words[k].value[0] != '\0' || strchr(s->words[k].flag, '=') == NULL) {
            if (strcmp(s->words[k].flag, "--no-healthcheck") != 0) {
                argv[argc++] = s->words[k].value;
            }
        }
    }
    argv[argc++] = (char *)"--";
    argv[argc++] = s->image;
    for (size_t k = 0; k < s->n_args; k++) {
        argv[argc++] = s->args[k];
    }
    struct cli_svc_opts o = {0};
    struct cli_flag flags[CLI_SVC_MAX_FLAGS];
    cli_svc_flags(&o, false, flags);
    struct cli_spec spec = {"swarmctl stack deploy", "", "", NULL, CLI_ARGS_MIN, 1, 0, flags, true};
    char **pos = NULL, msg[SWARM_ERRMSG_SIZE];
    int npos = 0;
    Swarm__ServiceSpec *out = NULL;
    if (cli_args_parse(&spec, argc, argv, &pos, &npos, msg) != CLI_PARSE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s:%d: services.%s: %s", s->file, s->line, s->name, msg);
        goto out;
    }
    out = cli_svc_spec_new(flags, &o, pos[0], pos + 1, (size_t)npos - 1, msg);
    if (out == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s:%d: services.%s: %s", s->file, s->line, s->name, msg);
        goto out;
    }
    Swarm__ContainerSpec *c = out->task->container;
    if (s->has_entrypoint) {
        strv_free(c->command, c->n_command);
        c->command = NULL;
        c->n_command = 0;
        for (size_t k = 0; k < s->n_entrypoint; k++) {
            strv_push(&c->command, &c->n_command, s->entrypoint[k]);
        }
    }
    if (s->n_health_test > 0 && c->healthcheck != NULL) {
        strv_free(c->healthcheck->test, c->healthcheck->n_test);
        c->healthcheck->test = NULL;
        c->healthcheck->n_test = 0;
        for (size_t k = 0; k < s->n_health_test; k++) {
            strv_push(&c->healthcheck->test, &c->healthcheck->n_test, s->health_test[k]);
        }
    }
out:
    free(pos);
    cli_svc_opts_free(&o);
    free(name);
    free(argv);
    return out;
}
