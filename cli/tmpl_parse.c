/* The parser of the template subset (tmpl.h), shaped after Go's
 * text/template/parse/parse.go so that the same template fails with the
 * same words. Every allocation of a parse goes into the template's arena:
 * a failed parse frees everything at once. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "tmpl_tree.h"

struct tmpl_full {
    struct tmpl pub;
    struct tmpl_arena arena;
};

/* ----------------------------------------------------------------- parser */

struct parser {
    struct tmpl_full *t;
    struct tmpl_arena *arena;
    const struct tmpl_tok *toks;
    size_t n, i;
    const struct tmpl_tok *last;
    bool failed;
    char *errmsg; /* SWARM_ERRMSG_SIZE bytes */
    char **vars; /* in scope, for "undefined variable" */
    size_t n_vars;
    int range_depth;
};

void tmpl_position(const char *text, size_t pos, char *buf, size_t size)
{
    size_t line = 1, col = 0;
    for (size_t i = 0; i < pos && text[i] != '\0'; i++) {
        if (text[i] == '\n') {
            line++;
            col = 0;
        } else {
            col++;
        }
    }
    snprintf(buf, size, "template: :%zu:%zu: ", line, col);
}

static void parse_errorf(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parse_errorf(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed) {
        return;
    }
    p->failed = true;
    char where[64];
    tmpl_position(p->t->pub.text, pos, where, sizeof where);
    size_t o = (size_t)snprintf(p->errmsg, SWARM_ERRMSG_SIZE, "%s", where);
    if (o < SWARM_ERRMSG_SIZE) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errmsg + o, SWARM_ERRMSG_SIZE - o, fmt, ap);
        va_end(ap);
    }
}

static const struct tmpl_tok *next(struct parser *p)
{
    const struct tmpl_tok *t = &p->toks[p->i < p->n - 1 ? p->i++ : p->i];
    p->last = t;
    if (t->type == TMPL_T_ERROR) {
        parse_errorf(p, t->pos, "%s", t->val);
    }
    return t;
}

static const struct tmpl_tok *peek(struct parser *p)
{
    return &p->toks[p->i];
}

static void backup(struct parser *p)
{
    p->i--;
}

static const struct tmpl_tok *next_non_space(struct parser *p)
{
    const struct tmpl_tok *t;
    do {
        t = next(p);
    } while (t->type == TMPL_T_SPACE);
    return t;
}

static const struct tmpl_tok *peek_non_space(struct parser *p)
{
    const struct tmpl_tok *t = next_non_space(p);
    backup(p);
    return t;
}

/* Go's item.String(). */
static void tok_string(const struct tmpl_tok *t, char *buf, size_t size)
{
    if (t->type == TMPL_T_EOF) {
        snprintf(buf, size, "EOF");
    } else if (t->type == TMPL_T_ERROR) {
        snprintf(buf, size, "%s", t->val);
    } else if (t->type > TMPL_T_KEYWORD) {
        snprintf(buf, size, "<%s>", t->val);
    } else if (t->len > 10) {
        snprintf(buf, size, "\"%.10s\"...", t->val);
    } else {
        snprintf(buf, size, "\"%s\"", t->val);
    }
}

static void unexpected(struct parser *p, const struct tmpl_tok *t, const char *context)
{
    char s[64];
    tok_string(t, s, sizeof s);
    parse_errorf(p, t->pos, "unexpected %s in %s", s, context);
}

static struct tmpl_node *new_node(struct parser *p, enum tmpl_node_type type, size_t pos)
{
    struct tmpl_node *n = tmpl_alloc(p->arena, sizeof *n);
    n->type = type;
    n->pos = pos;
    return n;
}

static void list_append(struct parser *p, struct tmpl_list *l, struct tmpl_node *n)
{
    l->nodes = tmpl_push(p->arena, l->nodes, l->n, sizeof *l->nodes);
    l->nodes[l->n++] = n;
}

static void add_ident(struct parser *p, struct tmpl_node *n, const char *s, size_t len)
{
    n->idents = tmpl_push(p->arena, n->idents, n->n_idents, sizeof *n->idents);
    n->idents[n->n_idents++] = tmpl_strndup(p->arena, s, len);
}

static bool function_known(const char *name)
{
    static const char *const names[] = {
        "and", "eq",    "ge",    "gt",   "index", "join",  "json",  "le",       "len", "lower",
        "lt",  "ne",    "not",   "or",   "pad",   "print", "printf", "println", "split",  "title",
        "truncate", "upper",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void use_var(struct parser *p, size_t pos, const char *name)
{
    size_t len = strcspn(name, ".");
    for (size_t i = 0; i < p->n_vars; i++) {
        if (strlen(p->vars[i]) == len && strncmp(p->vars[i], name, len) == 0) {
            return;
        }
    }
    parse_errorf(p, pos, "undefined variable \"%.*s\"", (int)len, name);
}

static void push_var(struct parser *p, char *name)
{
    p->vars = tmpl_push(p->arena, p->vars, p->n_vars, sizeof *p->vars);
    p->vars[p->n_vars++] = name;
}

/* Go's strconv.Unquote for "..." and `...`. */
static bool unquote(struct parser *p, const struct tmpl_tok *t, struct tmpl_node *n)
{
    const char *s = t->val;
    char *out = tmpl_alloc(p->arena, t->len + 1);
    size_t o = 0;
    if (s[0] == '`') {
        for (size_t i = 1; i + 1 < t->len; i++) {
            if (s[i] != '\r') {
                out[o++] = s[i];
            }
        }
        n->text = out;
        n->text_len = o;
        return true;
    }
    for (size_t i = 1; i + 1 < t->len; i++) {
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        const char *simple = strchr("abfnrtv\\'\"", c);
        if (simple != NULL && c != '\0') {
            static const char map[] = "\a\b\f\n\r\t\v\\'\"";
            out[o++] = map[simple - "abfnrtv\\'\""];
        } else if (c == 'x' && i + 2 < t->len - 1 && isxdigit((unsigned char)s[i + 1]) &&
                   isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else if ((c == 'u' || c == 'U')) {
            size_t digits = c == 'u' ? 4 : 8;
            char hex[9] = {0};
            if (i + digits >= t->len - 1 + 1) {
                return false;
            }
            for (size_t k = 0; k < digits; k++) {
                if (!isxdigit((unsigned char)s[i + 1 + k])) {
                    return false;
                }
                hex[k] = s[i + 1 + k];
            }
            unsigned long cp = strtoul(hex, NULL, 16);
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                return false;
            }
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xC0 | cp >> 6), out[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[o++] = (char)(0xE0 | cp >> 12), out[o++] = (char)(0x80 | (cp >> 6 & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                out[o++] = (char)(0xF0 | cp >> 18), out[o++] = (char)(0x80 | (cp >> 12 & 0x3F));
                out[o++] = (char)(0x80 | (cp >> 6 & 0x3F)), out[o++] = (char)(0x80 | (cp & 0x3F));
            }
            i += digits;
        } else {
            return false;
        }
    }
    if (memchr(out, '\0', o) != NULL) {
        return false; /* our strings are C strings */
    }
    n->text = out;
    n->text_len = o;
    return true;
}

static bool parse_number(const struct tmpl_tok *t, struct tmpl_node *n)
{
    char *end;
    errno = 0;
    long long v = strtoll(t->val, &end, 0);
    if (*end == '\0' && errno == 0 && isdigit((unsigned char)t->val[t->val[0] == '-' || t->val[0] == '+'])) {
        n->i = v;
        n->f = (double)v;
        return true;
    }
    errno = 0;
    double f = strtod(t->val, &end);
    if (*end != '\0' || errno != 0 || strpbrk(t->val, "xXnN") != NULL) {
        return false;
    }
    n->is_float = true;
    n->f = f;
    n->i = (int64_t)f;
    return true;
}

static struct tmpl_pipe *pipeline(struct parser *p, const char *context, enum tmpl_tok_type end);

static struct tmpl_node *term(struct parser *p)
{
    const struct tmpl_tok *t = next_non_space(p);
    struct tmpl_node *n;
    switch (t->type) {
        case TMPL_T_IDENT:
            if (!function_known(t->val)) {
                parse_errorf(p, t->pos, "function \"%s\" not defined", t->val);
                return NULL;
            }
            n = new_node(p, TMPL_N_IDENT, t->pos);
            n->text = t->val;
            return n;
        case TMPL_T_DOT:
            return new_node(p, TMPL_N_DOT, t->pos);
        case TMPL_T_NIL:
            return new_node(p, TMPL_N_NIL, t->pos);
        case TMPL_T_VARIABLE:
            use_var(p, t->pos, t->val);
            n = new_node(p, TMPL_N_VARIABLE, t->pos);
            add_ident(p, n, t->val, t->len);
            return n;
        case TMPL_T_FIELD:
            n = new_node(p, TMPL_N_FIELD, t->pos);
            add_ident(p, n, t->val + 1, t->len - 1);
            return n;
        case TMPL_T_BOOL:
            n = new_node(p, TMPL_N_BOOL, t->pos);
            n->i = strcmp(t->val, "true") == 0;
            n->text = t->val;
            return n;
        case TMPL_T_NUMBER:
            n = new_node(p, TMPL_N_NUMBER, t->pos);
            n->text = t->val;
            if (!parse_number(t, n)) {
                parse_errorf(p, t->pos, "bad number syntax: \"%s\"", t->val);
                return NULL;
            }
            return n;
        case TMPL_T_LPAREN:
            n = new_node(p, TMPL_N_PIPE, t->pos);
            n->pipe = pipeline(p, "parenthesized pipeline", TMPL_T_RPAREN);
            return p->failed ? NULL : n;
        case TMPL_T_STRING:
            n = new_node(p, TMPL_N_STRING, t->pos);
            if (!unquote(p, t, n)) {
                parse_errorf(p, t->pos, "invalid syntax");
                return NULL;
            }
            return n;
        default:
            backup(p);
            return NULL;
    }
}

static struct tmpl_node *operand(struct parser *p)
{
    struct tmpl_node *n = term(p);
    if (n == NULL || p->failed || peek(p)->type != TMPL_T_FIELD) {
        return n;
    }
    switch (n->type) {
        case TMPL_N_FIELD:
        case TMPL_N_VARIABLE:
            break;
        case TMPL_N_PIPE: {
            struct tmpl_node *chain = new_node(p, TMPL_N_CHAIN, peek(p)->pos);
            chain->sub = n;
            n = chain;
            break;
        }
        default:
            parse_errorf(p, peek(p)->pos, "unexpected . after term \"%s\"",
                         p->toks[p->i - 1].val);
            return NULL;
    }
    while (peek(p)->type == TMPL_T_FIELD) {
        const struct tmpl_tok *f = next(p);
        add_ident(p, n, f->val + 1, f->len - 1);
    }
    return n;
}

static struct tmpl_cmd *command(struct parser *p)
{
    struct tmpl_cmd *cmd = tmpl_alloc(p->arena, sizeof *cmd);
    cmd->pos = peek_non_space(p)->pos;
    for (;;) {
        peek_non_space(p);
        struct tmpl_node *op = operand(p);
        if (p->failed) {
            return NULL;
        }
        if (op != NULL) {
            cmd->args = tmpl_push(p->arena, cmd->args, cmd->n, sizeof *cmd->args);
            cmd->args[cmd->n++] = op;
        }
        const struct tmpl_tok *t = next(p);
        if (t->type == TMPL_T_SPACE) {
            continue;
        }
        if (t->type == TMPL_T_RIGHT_DELIM || t->type == TMPL_T_RPAREN) {
            backup(p);
        } else if (t->type != TMPL_T_PIPE) {
            unexpected(p, t, "operand");
            return NULL;
        }
        break;
    }
    if (cmd->n == 0) {
        parse_errorf(p, cmd->pos, "empty command");
        return NULL;
    }
    return cmd;
}

static void check_pipeline(struct parser *p, struct tmpl_pipe *pipe, const char *context,
                           size_t pos)
{
    if (pipe->n == 0) {
        parse_errorf(p, pos, "missing value for %s", context);
        return;
    }
    for (size_t i = 1; i < pipe->n; i++) {
        switch (pipe->cmds[i]->args[0]->type) {
            case TMPL_N_BOOL:
            case TMPL_N_DOT:
            case TMPL_N_NIL:
            case TMPL_N_NUMBER:
            case TMPL_N_STRING:
                parse_errorf(p, pipe->cmds[i]->pos, "non executable command in pipeline stage %zu",
                             i + 1);
                return;
            default:
                break;
        }
    }
}

/* Declarations: "$x :=", "$x =", and range's "$i, $v :=". */
static void pipeline_decls(struct parser *p, struct tmpl_pipe *pipe, const char *context)
{
    for (;;) {
        size_t save = p->i;
        const struct tmpl_tok *v = next_non_space(p);
        if (v->type != TMPL_T_VARIABLE) {
            p->i = save;
            return;
        }
        const struct tmpl_tok *after = next_non_space(p);
        if (after->type == TMPL_T_DECLARE || after->type == TMPL_T_ASSIGN) {
            pipe->decl = after->type == TMPL_T_DECLARE;
            if (after->type == TMPL_T_ASSIGN) {
                use_var(p, v->pos, v->val);
            }
            pipe->vars[pipe->n_vars++] = v->val;
            return;
        }
        if (after->type == TMPL_T_CHAR && strcmp(after->val, ",") == 0) {
            pipe->vars[pipe->n_vars++] = v->val;
            if (strcmp(context, "range") != 0 || pipe->n_vars >= 2) {
                parse_errorf(p, after->pos, "too many declarations in %s", context);
                return;
            }
            if (peek_non_space(p)->type != TMPL_T_VARIABLE) {
                parse_errorf(p, after->pos, "range can only initialize variables");
                return;
            }
            continue;
        }
        p->i = save;
        pipe->n_vars = 0;
        return;
    }
}

static struct tmpl_pipe *pipeline(struct parser *p, const char *context, enum tmpl_tok_type end)
{
    struct tmpl_pipe *pipe = tmpl_alloc(p->arena, sizeof *pipe);
    pipe->pos = peek_non_space(p)->pos;
    pipeline_decls(p, pipe, context);
    for (;;) {
        if (p->failed) {
            return NULL;
        }
        const struct tmpl_tok *t = next_non_space(p);
        if (p->failed) {
            return NULL;
        }
        if (t->type == end) {
            check_pipeline(p, pipe, context, t->pos);
            if (pipe->decl) {
                for (size_t i = 0; i < pipe->n_vars; i++) {
                    push_var(p, pipe->vars[i]);
                }
            }
            return p->failed ? NULL : pipe;
        }
        switch (t->type) {
            case TMPL_T_BOOL:
            case TMPL_T_DOT:
            case TMPL_T_FIELD:
            case TMPL_T_IDENT:
            case TMPL_T_NUMBER:
            case TMPL_T_NIL:
            case TMPL_T_STRING:
            case TMPL_T_VARIABLE:
            case TMPL_T_LPAREN:
                backup(p);
                pipe->cmds = tmpl_push(p->arena, pipe->cmds, pipe->n, sizeof *pipe->cmds);
                pipe->cmds[pipe->n] = command(p);
                if (p->failed) {
                    return NULL;
                }
                pipe->n++;
                break;
            default:
                unexpected(p, t, context);
                return NULL;
        }
    }
}

/* A list up to {{end}} or {{else}}; *stop gets which (TMPL_T_END / TMPL_T_ELSE). */
static void item_list(struct parser *p, struct tmpl_list *l, enum tmpl_tok_type *stop,
                      const struct tmpl_tok **stop_tok);

static void expect_right_delim(struct parser *p, const char *context)
{
    const struct tmpl_tok *t = next_non_space(p);
    if (!p->failed && t->type != TMPL_T_RIGHT_DELIM) {
        unexpected(p, t, context);
    }
}

static struct tmpl_node *control(struct parser *p, enum tmpl_node_type type, const char *context,
                                 size_t pos)
{
    size_t vars_before = p->n_vars;
    struct tmpl_node *n = new_node(p, type, pos);
    n->pipe = pipeline(p, context, TMPL_T_RIGHT_DELIM);
    if (p->failed) {
        return NULL;
    }
    enum tmpl_tok_type stop;
    const struct tmpl_tok *stop_tok;
    p->range_depth += type == TMPL_N_RANGE;
    item_list(p, &n->list, &stop, &stop_tok);
    p->range_depth -= type == TMPL_N_RANGE;
    if (!p->failed && stop == TMPL_T_ELSE) {
        /* "{{else if ...}}" is {{else}}{{if ...}}...{{end}} with one end. */
        if (type == TMPL_N_IF && peek_non_space(p)->type == TMPL_T_IF) {
            const struct tmpl_tok *t = next_non_space(p);
            list_append(p, &n->else_list, control(p, TMPL_N_IF, "if", t->pos));
        } else {
            expect_right_delim(p, "else");
            if (!p->failed) {
                item_list(p, &n->else_list, &stop, &stop_tok);
            }
            if (!p->failed && stop != TMPL_T_END) {
                parse_errorf(p, stop_tok->pos, "expected end; found {{else}}");
            }
        }
    }
    p->n_vars = vars_before;
    return p->failed ? NULL : n;
}

/* {{...}} after its left delimiter: a control, or an action. */
static struct tmpl_node *action(struct parser *p, enum tmpl_tok_type *stop)
{
    const struct tmpl_tok *t = next_non_space(p);
    if (p->failed) {
        return NULL;
    }
    switch (t->type) {
        case TMPL_T_IF:
            return control(p, TMPL_N_IF, "if", t->pos);
        case TMPL_T_RANGE:
            return control(p, TMPL_N_RANGE, "range", t->pos);
        case TMPL_T_WITH:
            return control(p, TMPL_N_WITH, "with", t->pos);
        case TMPL_T_END:
            expect_right_delim(p, "end");
            *stop = TMPL_T_END;
            return NULL;
        case TMPL_T_ELSE:
            /* control() reads the rest: "if ...}}" or "}}". */
            *stop = TMPL_T_ELSE;
            return NULL;
        case TMPL_T_BREAK:
        case TMPL_T_CONTINUE:
            if (p->range_depth == 0) {
                parse_errorf(p, t->pos, "{{%s}} outside {{range}}", t->val);
                return NULL;
            }
            expect_right_delim(p, t->type == TMPL_T_BREAK ? "{{break}}" : "{{continue}}");
            return new_node(p, t->type == TMPL_T_BREAK ? TMPL_N_BREAK : TMPL_N_CONTINUE, t->pos);
        case TMPL_T_BLOCK:
        case TMPL_T_DEFINE:
        case TMPL_T_TEMPLATE:
            parse_errorf(p, t->pos, "{{%s}} is not supported", t->val);
            return NULL;
        default: {
            backup(p);
            struct tmpl_node *n = new_node(p, TMPL_N_ACTION, t->pos);
            n->pipe = pipeline(p, "command", TMPL_T_RIGHT_DELIM);
            return p->failed ? NULL : n;
        }
    }
}

static void item_list(struct parser *p, struct tmpl_list *l, enum tmpl_tok_type *stop,
                      const struct tmpl_tok **stop_tok)
{
    while (!p->failed) {
        const struct tmpl_tok *t = next(p);
        if (p->failed) {
            return;
        }
        if (t->type == TMPL_T_EOF) {
            parse_errorf(p, t->pos, "unexpected EOF");
            return;
        }
        if (t->type == TMPL_T_TEXT) {
            struct tmpl_node *n = new_node(p, TMPL_N_TEXT, t->pos);
            n->text = t->val;
            n->text_len = t->len;
            list_append(p, l, n);
            continue;
        }
        /* TMPL_T_LEFT_DELIM */
        enum tmpl_tok_type s = TMPL_T_EOF;
        struct tmpl_node *n = action(p, &s);
        if (s != TMPL_T_EOF) {
            *stop = s;
            *stop_tok = t;
            return;
        }
        if (n != NULL) {
            list_append(p, l, n);
        }
    }
}

static void parse_root(struct parser *p)
{
    struct tmpl_list *l = &p->t->pub.root;
    while (!p->failed) {
        const struct tmpl_tok *t = next(p);
        if (p->failed || t->type == TMPL_T_EOF) {
            return;
        }
        if (t->type == TMPL_T_TEXT) {
            struct tmpl_node *n = new_node(p, TMPL_N_TEXT, t->pos);
            n->text = t->val;
            n->text_len = t->len;
            list_append(p, l, n);
            continue;
        }
        enum tmpl_tok_type s = TMPL_T_EOF;
        struct tmpl_node *n = action(p, &s);
        if (s != TMPL_T_EOF && !p->failed) {
            parse_errorf(p, t->pos, "unexpected {{%s}}", s == TMPL_T_END ? "end" : "else");
            return;
        }
        if (n != NULL) {
            list_append(p, l, n);
        }
    }
}

struct tmpl *tmpl_parse(const char *text, char *errmsg)
{
    struct tmpl_full *t = cli_xcalloc(1, sizeof *t);
    t->pub.text = tmpl_strndup(&t->arena, text, strlen(text));
    struct tmpl_tok *toks;
    size_t n;
    tmpl_lex(&t->arena, t->pub.text, &toks, &n);
    struct parser p = {.t = t, .arena = &t->arena, .toks = toks, .n = n,
                       .errmsg = errmsg};
    push_var(&p, "$");
    parse_root(&p);
    free(toks);
    if (p.failed) {
        tmpl_free(&t->pub);
        return NULL;
    }
    return &t->pub;
}

void tmpl_free(struct tmpl *pub)
{
    if (pub == NULL) {
        return;
    }
    struct tmpl_full *t = (struct tmpl_full *)pub;
    for (size_t i = 0; i < t->arena.n; i++) {
        free(t->arena.ptrs[i]);
    }
    free(t->arena.ptrs);
    free(t);
}

/* ------------------------------------------------------------- node text */

static void sb_add(char *buf, size_t size, size_t *o, const char *s)
{
    int n = snprintf(buf + *o, *o < size ? size - *o : 0, "%s", s);
    *o += n > 0 ? (size_t)n : 0;
    if (*o >= size) {
        *o = size - 1;
    }
}

static void node_string(const struct tmpl_node *n, char *buf, size_t size, size_t *o);

static void pipe_string(const struct tmpl_pipe *pp, char *buf, size_t size, size_t *o)
{
    for (size_t v = 0; v < pp->n_vars; v++) {
        sb_add(buf, size, o, v > 0 ? ", " : "");
        sb_add(buf, size, o, pp->vars[v]);
    }
    if (pp->n_vars > 0) {
        sb_add(buf, size, o, pp->decl ? " := " : " = ");
    }
    for (size_t c = 0; c < pp->n; c++) {
        sb_add(buf, size, o, c > 0 ? " | " : "");
        for (size_t a = 0; a < pp->cmds[c]->n; a++) {
            sb_add(buf, size, o, a > 0 ? " " : "");
            node_string(pp->cmds[c]->args[a], buf, size, o);
        }
    }
}

static void node_string(const struct tmpl_node *n, char *buf, size_t size, size_t *o)
{
    switch (n->type) {
        case TMPL_N_DOT:
            sb_add(buf, size, o, ".");
            return;
        case TMPL_N_NIL:
            sb_add(buf, size, o, "nil");
            return;
        case TMPL_N_STRING:
            sb_add(buf, size, o, "\"");
            sb_add(buf, size, o, n->text);
            sb_add(buf, size, o, "\"");
            return;
        case TMPL_N_PIPE:
        case TMPL_N_CHAIN: {
            const struct tmpl_node *pn = n->type == TMPL_N_CHAIN ? n->sub : n;
            sb_add(buf, size, o, "(");
            pipe_string(pn->pipe, buf, size, o);
            sb_add(buf, size, o, ")");
            break;
        }
        case TMPL_N_ACTION:
            pipe_string(n->pipe, buf, size, o);
            return;
        case TMPL_N_FIELD:
        case TMPL_N_VARIABLE:
            break;
        default:
            sb_add(buf, size, o, n->text != NULL ? n->text : "");
            return;
    }
    for (size_t i = 0; i < n->n_idents; i++) {
        if (n->type != TMPL_N_VARIABLE || i > 0) {
            sb_add(buf, size, o, ".");
        }
        sb_add(buf, size, o, n->idents[i]);
    }
}

void tmpl_node_string(const struct tmpl_node *n, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    node_string(n, buf, size, &o);
}

void tmpl_pipe_string(const struct tmpl_pipe *pp, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    pipe_string(pp, buf, size, &o);
}
