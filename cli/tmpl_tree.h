/* The parse tree of a template, shared by the parser (tmpl_parse.c) and the
 * executor (tmpl.c). Internal to the tmpl module. */
#ifndef SWARM_CLI_TMPL_TREE_H
#define SWARM_CLI_TMPL_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tmpl.h"

enum tmpl_node_type {
    TMPL_N_TEXT,
    TMPL_N_ACTION, /* {{pipeline}} */
    TMPL_N_IF,
    TMPL_N_RANGE,
    TMPL_N_WITH,
    TMPL_N_BREAK,
    TMPL_N_CONTINUE,
    /* arguments */
    TMPL_N_DOT,
    TMPL_N_FIELD,    /* .A.B: idents */
    TMPL_N_VARIABLE, /* $x.A: idents[0] = "$x" */
    TMPL_N_CHAIN,    /* (pipe).A: sub + idents */
    TMPL_N_IDENT,    /* a function name */
    TMPL_N_STRING,
    TMPL_N_NUMBER,
    TMPL_N_BOOL,
    TMPL_N_NIL,
    TMPL_N_PIPE, /* (pipeline) */
};

struct tmpl_node;

struct tmpl_list {
    struct tmpl_node **nodes;
    size_t n;
};

struct tmpl_cmd {
    size_t pos;
    struct tmpl_node **args;
    size_t n;
};

struct tmpl_pipe {
    size_t pos;
    bool decl;     /* := (else =, an assignment) */
    char *vars[2]; /* declared variables, "$x" */
    size_t n_vars;
    struct tmpl_cmd **cmds;
    size_t n;
};

struct tmpl_node {
    enum tmpl_node_type type;
    size_t pos;           /* byte offset in the template */
    char *text;           /* TEXT, IDENT, STRING (unquoted), NUMBER (as written) */
    size_t text_len;      /* TEXT */
    char **idents;        /* FIELD, VARIABLE, CHAIN */
    size_t n_idents;
    bool is_float;        /* NUMBER */
    int64_t i;            /* NUMBER, BOOL */
    double f;             /* NUMBER */
    struct tmpl_node *sub; /* CHAIN */
    struct tmpl_pipe *pipe; /* ACTION, IF, RANGE, WITH, PIPE */
    struct tmpl_list list, else_list; /* IF, RANGE, WITH */
};

struct tmpl {
    char *text; /* the source, for line:col */
    struct tmpl_list root;
};

/* The arena a template's parse allocates from (tmpl_lex.c); freed whole
 * by tmpl_free. Allocation failure exits (cli_oom). */
struct tmpl_arena {
    void **ptrs;
    size_t n, cap;
};

void *tmpl_alloc(struct tmpl_arena *a, size_t size);
char *tmpl_strndup(struct tmpl_arena *a, const char *s, size_t len);
/* A copy of arr (n elements) with room for one more. */
void *tmpl_push(struct tmpl_arena *a, void *arr, size_t n, size_t elem);

/* Tokens, as Go's lexer items. */
enum tmpl_tok_type {
    TMPL_T_ERROR,
    TMPL_T_EOF,
    TMPL_T_TEXT,
    TMPL_T_LEFT_DELIM,
    TMPL_T_RIGHT_DELIM,
    TMPL_T_SPACE,
    TMPL_T_FIELD,
    TMPL_T_DOT,
    TMPL_T_VARIABLE,
    TMPL_T_IDENT,
    TMPL_T_STRING,
    TMPL_T_NUMBER,
    TMPL_T_BOOL,
    TMPL_T_PIPE,
    TMPL_T_LPAREN,
    TMPL_T_RPAREN,
    TMPL_T_DECLARE,
    TMPL_T_ASSIGN,
    TMPL_T_CHAR,
    /* keywords */
    TMPL_T_KEYWORD,
    TMPL_T_BLOCK,
    TMPL_T_BREAK,
    TMPL_T_CONTINUE,
    TMPL_T_DEFINE,
    TMPL_T_ELSE,
    TMPL_T_END,
    TMPL_T_IF,
    TMPL_T_NIL,
    TMPL_T_RANGE,
    TMPL_T_TEMPLATE,
    TMPL_T_WITH,
};

struct tmpl_tok {
    enum tmpl_tok_type type;
    size_t pos;
    char *val; /* as written; TMPL_T_STRING: unquoted; TMPL_T_ERROR: the message */
    size_t len;
};

/* Tokenize `text` whole: *toks (malloc'd; the caller frees the array, the
 * values live in the arena) ends with TMPL_T_EOF or TMPL_T_ERROR (val: the message). */
void tmpl_lex(struct tmpl_arena *arena, const char *text, struct tmpl_tok **toks, size_t *n);

/* "template: :L:C: " for byte offset pos of text, into buf. */
void tmpl_position(const char *text, size_t pos, char *buf, size_t size);

/* Go's String() of a node, as "at <...>" shows it. */
void tmpl_node_string(const struct tmpl_node *n, char *buf, size_t size);
void tmpl_pipe_string(const struct tmpl_pipe *p, char *buf, size_t size);

/* tmpl_value.c: map iteration order (insertion, or sorted for Go maps;
 * caller frees), Go's type name of a value, and Go's %v. */
size_t *tmpl_map_order(const struct tmpl_value *map);
const char *tmpl_value_type(const struct tmpl_value *v);
void tmpl_value_print(FILE *out, const struct tmpl_value *v);
/* Go's shortest float text, in %e form when the decimal exponent is
 * < exp_lo or >= exp_hi (%v: -4, 21; %g: -4, 6; JSON: -6, 21). */
void tmpl_format_float(double f, int exp_lo, int exp_hi, bool json, char *buf, size_t size);
/* Go's time.Duration.String(): "0s", "1.5µs", "250ms", "1h2m3.5s". */
void tmpl_format_duration(int64_t ns, char *buf, size_t size);

/* tmpl_printf.c: Go's fmt.Sprintf over template values. */
void tmpl_printf(FILE *out, const char *format, const struct tmpl_value *const *args, size_t n);

#endif
