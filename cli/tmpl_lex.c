/* The lexer of the template subset (tmpl.h), after Go's
 * text/template/parse/lex.go: the same tokens, so the parser fails on the
 * same input with the same words; and the arena every parse allocates
 * from. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "tmpl_tree.h"

void *tmpl_alloc(struct tmpl_arena *a, size_t size)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->ptrs = cli_xrealloc(a->ptrs, a->cap * sizeof *a->ptrs);
    }
    void *p = cli_xcalloc(1, size);
    a->ptrs[a->n++] = p;
    return p;
}

char *tmpl_strndup(struct tmpl_arena *a, const char *s, size_t len)
{
    char *d = tmpl_alloc(a, len + 1);
    memcpy(d, s, len);
    return d;
}

/* Grow an arena-owned array by one slot. */
void *tmpl_push(struct tmpl_arena *a, void *arr, size_t n, size_t elem)
{
    void *grown = tmpl_alloc(a, (n + 1) * elem);
    if (n > 0) {
        memcpy(grown, arr, n * elem);
    }
    return grown;
}

struct lexer {
    struct tmpl_arena *arena;
    const char *in;
    size_t len, pos;
    int paren;
    struct tmpl_tok *toks;
    size_t n, cap;
    bool done;
};

static void lex_emit(struct lexer *l, enum tmpl_tok_type type, size_t start, size_t end)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->toks = cli_xrealloc(l->toks, l->cap * sizeof *l->toks);
    }
    l->toks[l->n++] = (struct tmpl_tok){type, start, tmpl_strndup(l->arena, l->in + start, end - start),
                                   end - start};
}

static void lex_error(struct lexer *l, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lex_error(struct lexer *l, size_t pos, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lex_emit(l, TMPL_T_ERROR, pos, pos);
    l->toks[l->n - 1].val = tmpl_strndup(l->arena, msg, strlen(msg));
    l->done = true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum(char c)
{
    return c == '_' || isalnum((unsigned char)c) || ((unsigned char)c & 0x80);
}

/* " -}}" or "}}" at pos: returns its length, 0 if neither; *trim set for
 * the trim form. */
static size_t lex_at_right_delim(const struct lexer *l, size_t pos, bool *trim)
{
    const char *s = l->in + pos;
    size_t left = l->len - pos;
    if (left >= 4 && is_space(s[0]) && s[1] == '-' && s[2] == '}' && s[3] == '}') {
        *trim = true;
        return 4;
    }
    *trim = false;
    return left >= 2 && s[0] == '}' && s[1] == '}' ? 2 : 0;
}

static void lex_text(struct lexer *l);

static void lex_comment(struct lexer *l, size_t start)
{
    const char *end = strstr(l->in + l->pos, "*/");
    if (end == NULL) {
        lex_error(l, start, "unclosed comment");
        return;
    }
    l->pos = (size_t)(end - l->in) + 2;
    bool trim;
    size_t n = lex_at_right_delim(l, l->pos, &trim);
    if (n == 0) {
        lex_error(l, start, "comment ends before closing delimiter");
        return;
    }
    l->pos += n;
    if (trim) {
        while (l->pos < l->len && is_space(l->in[l->pos])) {
            l->pos++;
        }
    }
}

static void lex_quote(struct lexer *l)
{
    size_t start = l->pos++;
    while (l->pos < l->len && l->in[l->pos] != '"') {
        if (l->in[l->pos] == '\n') {
            break;
        }
        if (l->in[l->pos] == '\\' && l->pos + 1 < l->len && l->in[l->pos + 1] != '\n') {
            l->pos++;
        }
        l->pos++;
    }
    if (l->pos >= l->len || l->in[l->pos] != '"') {
        lex_error(l, start, "unterminated quoted string");
        return;
    }
    l->pos++;
    lex_emit(l, TMPL_T_STRING, start, l->pos);
}

static void lex_raw_quote(struct lexer *l)
{
    size_t start = l->pos;
    const char *end = memchr(l->in + start + 1, '`', l->len - start - 1);
    if (end == NULL) {
        lex_error(l, start, "unterminated raw quoted string");
        return;
    }
    l->pos = (size_t)(end - l->in) + 1;
    lex_emit(l, TMPL_T_STRING, start, l->pos);
}

static bool lex_at_terminator(const struct lexer *l)
{
    if (l->pos >= l->len) {
        return true;
    }
    char c = l->in[l->pos];
    bool trim;
    return is_space(c) || strchr(".,|:()=", c) != NULL || lex_at_right_delim(l, l->pos, &trim);
}

static void lex_number(struct lexer *l)
{
    size_t start = l->pos;
    if (l->in[l->pos] == '+' || l->in[l->pos] == '-') {
        l->pos++;
    }
    while (l->pos < l->len) {
        char c = l->in[l->pos];
        char prev = l->pos > start ? l->in[l->pos - 1] : 0;
        if (isalnum((unsigned char)c) || c == '.' || c == '_' ||
            ((c == '+' || c == '-') && (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P'))) {
            l->pos++;
        } else {
            break;
        }
    }
    lex_emit(l, TMPL_T_NUMBER, start, l->pos);
}

static const struct {
    const char *word;
    enum tmpl_tok_type type;
} lex_keywords[] = {
    {"block", TMPL_T_BLOCK}, {"break", TMPL_T_BREAK}, {"continue", TMPL_T_CONTINUE}, {"define", TMPL_T_DEFINE},
    {"else", TMPL_T_ELSE},   {"end", TMPL_T_END},     {"if", TMPL_T_IF},             {"nil", TMPL_T_NIL},
    {"range", TMPL_T_RANGE}, {"template", TMPL_T_TEMPLATE}, {"with", TMPL_T_WITH},
};

static void lex_word(struct lexer *l, enum tmpl_tok_type type)
{
    size_t start = l->pos++;
    while (l->pos < l->len && is_alnum(l->in[l->pos])) {
        l->pos++;
    }
    if (!lex_at_terminator(l)) {
        unsigned char c = (unsigned char)l->in[l->pos];
        lex_error(l, l->pos, "bad character U+%04X '%c'", c, c);
        return;
    }
    size_t len = l->pos - start;
    if (type == TMPL_T_IDENT) {
        for (size_t i = 0; i < sizeof lex_keywords / sizeof *lex_keywords; i++) {
            if (strlen(lex_keywords[i].word) == len &&
                memcmp(lex_keywords[i].word, l->in + start, len) == 0) {
                type = lex_keywords[i].type;
            }
        }
        if ((len == 4 && memcmp(l->in + start, "true", 4) == 0) ||
            (len == 5 && memcmp(l->in + start, "false", 5) == 0)) {
            type = TMPL_T_BOOL;
        }
    }
    lex_emit(l, type, start, l->pos);
}

static void lex_space(struct lexer *l)
{
    size_t start = l->pos;
    while (l->pos < l->len && is_space(l->in[l->pos])) {
        bool trim;
        if (lex_at_right_delim(l, l->pos, &trim) && trim) {
            break; /* the last space belongs to " -}}" */
        }
        l->pos++;
    }
    if (l->pos > start) {
        lex_emit(l, TMPL_T_SPACE, start, l->pos);
    }
}

/* One token inside an action. */
static void lex_inside(struct lexer *l)
{
    bool trim;
    size_t n = lex_at_right_delim(l, l->pos, &trim);
    if (n > 0) {
        if (l->paren > 0) {
            lex_error(l, l->pos, "unclosed left paren");
            return;
        }
        lex_emit(l, TMPL_T_RIGHT_DELIM, l->pos + (trim ? 1 : 0), l->pos + n);
        l->pos += n;
        if (trim) {
            while (l->pos < l->len && is_space(l->in[l->pos])) {
                l->pos++;
            }
        }
        lex_text(l);
        return;
    }
    if (l->pos >= l->len) {
        lex_error(l, l->pos, "unclosed action");
        return;
    }
    char c = l->in[l->pos];
    char next = l->pos + 1 < l->len ? l->in[l->pos + 1] : 0;
    if (is_space(c)) {
        lex_space(l);
    } else if (c == '=') {
        lex_emit(l, TMPL_T_ASSIGN, l->pos, l->pos + 1), l->pos++;
    } else if (c == ':') {
        if (next != '=') {
            lex_error(l, l->pos, "expected :=");
            return;
        }
        lex_emit(l, TMPL_T_DECLARE, l->pos, l->pos + 2), l->pos += 2;
    } else if (c == '|') {
        lex_emit(l, TMPL_T_PIPE, l->pos, l->pos + 1), l->pos++;
    } else if (c == '"') {
        lex_quote(l);
    } else if (c == '`') {
        lex_raw_quote(l);
    } else if (c == '$') {
        lex_word(l, TMPL_T_VARIABLE);
    } else if (c == '\'') {
        lex_error(l, l->pos, "character constants are not supported");
    } else if (c == '.' && isdigit((unsigned char)next)) {
        lex_number(l);
    } else if (c == '.' && is_alnum(next)) {
        lex_word(l, TMPL_T_FIELD);
    } else if (c == '.') {
        lex_emit(l, TMPL_T_DOT, l->pos, l->pos + 1), l->pos++;
    } else if (((c == '+' || c == '-') && isdigit((unsigned char)next)) ||
               isdigit((unsigned char)c)) {
        lex_number(l);
    } else if (is_alnum(c)) {
        lex_word(l, TMPL_T_IDENT);
    } else if (c == '(') {
        l->paren++;
        lex_emit(l, TMPL_T_LPAREN, l->pos, l->pos + 1), l->pos++;
    } else if (c == ')') {
        if (--l->paren < 0) {
            lex_error(l, l->pos, "unexpected right paren");
            return;
        }
        lex_emit(l, TMPL_T_RPAREN, l->pos, l->pos + 1), l->pos++;
    } else if (c > 0x20 && c < 0x7F) {
        lex_emit(l, TMPL_T_CHAR, l->pos, l->pos + 1), l->pos++;
    } else {
        lex_error(l, l->pos, "unrecognized character in action: U+%04X", (unsigned char)c);
    }
}

/* Text up to the next "{{", then the left delimiter (and a comment). */
static void lex_text(struct lexer *l)
{
    const char *d = strstr(l->in + l->pos, "{{");
    if (d == NULL) {
        if (l->pos < l->len) {
            lex_emit(l, TMPL_T_TEXT, l->pos, l->len);
        }
        lex_emit(l, TMPL_T_EOF, l->len, l->len);
        l->done = true;
        return;
    }
    size_t at = (size_t)(d - l->in), end = at;
    bool trim = at + 3 < l->len && d[2] == '-' && is_space(d[3]);
    if (trim) {
        while (end > l->pos && is_space(l->in[end - 1])) {
            end--;
        }
    }
    if (end > l->pos) {
        lex_emit(l, TMPL_T_TEXT, l->pos, end);
    }
    l->pos = at + 2 + (trim ? 2 : 0);
    if (l->pos + 1 < l->len && l->in[l->pos] == '/' && l->in[l->pos + 1] == '*') {
        lex_comment(l, at);
        if (!l->done) {
            lex_text(l);
        }
        return;
    }
    lex_emit(l, TMPL_T_LEFT_DELIM, at, at + 2);
    l->paren = 0;
}

void tmpl_lex(struct tmpl_arena *arena, const char *text, struct tmpl_tok **toks, size_t *n)
{
    struct lexer l = {.arena = arena, .in = text, .len = strlen(text)};
    lex_text(&l);
    while (!l.done) {
        lex_inside(&l);
    }
    *toks = l.toks;
    *n = l.n;
}
