/* Placement constraints: parse Docker's `KEY==VALUE` / `KEY!=VALUE` and match
 * them against nodes. Follows moby/swarmkit's manager/constraint: keys of
 * node.* are case-insensitive, label names are not, values compare without
 * regard to case, and a missing label reads as the empty string (so
 * `node.labels.k!=v` matches a node without k). */
#include "constraint.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"

#define LABEL_PREFIX "node.labels."

static const struct {
    const char *name;
    enum constraint_key key;
} constraint_keys[] = {
    {"node.id", CONSTRAINT_NODE_ID},
    {"node.hostname", CONSTRAINT_NODE_HOSTNAME},
    {"node.role", CONSTRAINT_NODE_ROLE},
    {"node.platform.os", CONSTRAINT_NODE_OS},
    {"node.platform.arch", CONSTRAINT_NODE_ARCH},
};

/* [start, end) without surrounding whitespace, copied into buf. */
static size_t copy_trimmed(const char *start, const char *end, char *buf, size_t size)
{
    size_t len;
    while (start < end && isspace((unsigned char)*start)) {
        start++;
    }
    while (end > start && isspace((unsigned char)end[-1])) {
        end--;
    }
    len = (size_t)(end - start);
    if (len >= size) {
        return len;  /* the caller reports "too long" */
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    return len;
}

/* swarmkit's key pattern: a letter or '_' first, then [a-z0-9-_.]. */
static bool key_chars_ok(const char *k)
{
    if (!(isalpha((unsigned char)k[0]) || k[0] == '_')) {
        return false;
    }
    for (const char *p = k + 1; *p != '\0'; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.')) {
            return false;
        }
    }
    return true;
}

/* Values may not hold the operators' characters, so that `a==b==c` is an
 * error rather than a constraint on "b==c". */
static bool value_chars_ok(const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '=' || *p == '!' || iscntrl((unsigned char)*p)) {
            return false;
        }
    }
    return true;
}

static int parse_key(const char *expr, const char *key, struct constraint *out, char *errmsg)
{
    size_t prefix = strlen(LABEL_PREFIX);
    if (!key_chars_ok(key)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": invalid key %s",
                      expr, key);
        return SWARM_EINVAL;
    }
    for (size_t i = 0; i < sizeof constraint_keys / sizeof constraint_keys[0]; i++) {
        if (strcasecmp(key, constraint_keys[i].name) == 0) {
            out->key = constraint_keys[i].key;
            return 0;
        }
    }
    if (strncasecmp(key, LABEL_PREFIX, prefix) == 0) {
        const char *label = key + prefix;
        if (label[0] == '\0') {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "invalid constraint \"%s\": missing label name after node.labels.",
                          expr);
            return SWARM_EINVAL;
        }
        if (strlen(label) >= sizeof out->label) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": label name too long",
                          expr);
            return SWARM_EINVAL;
        }
        out->key = CONSTRAINT_NODE_LABEL;
        strcpy(out->label, label);
        return 0;
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": unknown key %s", expr, key);
    return SWARM_EINVAL;
}

int constraint_parse(const char *expr, struct constraint *out, char *errmsg)
{
    const char *eq, *ne, *op;
    char key[512];
    memset(out, 0, sizeof *out);
    if (expr == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"\": expected == or !=");
        return SWARM_EINVAL;
    }
    eq = strstr(expr, "==");
    ne = strstr(expr, "!=");
    /* The first operator splits, as in swarmkit; a second one lands in the
     * value and is rejected there. */
    op = eq == NULL ? ne : (ne == NULL || eq < ne ? eq : ne);
    if (op == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": expected == or !=",
                      expr);
        return SWARM_EINVAL;
    }
    out->equal = op == eq;
    if (copy_trimmed(expr, op, key, sizeof key) >= sizeof key) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": key too long", expr);
        return SWARM_EINVAL;
    }
    if (key[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": missing key", expr);
        return SWARM_EINVAL;
    }
    int rv = parse_key(expr, key, out, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (copy_trimmed(op + 2, op + strlen(op), out->value, sizeof out->value) >=
        sizeof out->value) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": value too long", expr);
        return SWARM_EINVAL;
    }
    if (out->value[0] == '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": missing value", expr);
        return SWARM_EINVAL;
    }
    if (!value_chars_ok(out->value)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid constraint \"%s\": invalid value \"%s\"",
                      expr, out->value);
        return SWARM_EINVAL;
    }
    /* Docker accepts any role and never matches it; naming the mistake
     * serves the user better. */
    if (out->key == CONSTRAINT_NODE_ROLE && strcasecmp(out->value, "manager") != 0 &&
        strcasecmp(out->value, "worker") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid constraint \"%s\": node.role must be manager or worker", expr);
        return SWARM_EINVAL;
    }
    return 0;
}

int constraint_parse_all(char *const *exprs, size_t n, struct constraint **out, char *errmsg)
{
    struct constraint *cs = calloc(n > 0 ? n : 1, sizeof *cs);
    if (cs == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rv = constraint_parse(exprs[i], &cs[i], errmsg);
        if (rv != 0) {
            free(cs);
            *out = NULL;
            return rv;
        }
    }
    *out = cs;
    return 0;
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static const char *node_label(const Swarm__Node *node, const char *key)
{
    const Swarm__Annotations *a =
        node->spec != NULL ? node->spec->annotations : NULL;
    if (a == NULL) {
        return "";
    }
    for (size_t i = 0; i < a->n_labels; i++) {
        if (a->labels[i]->key != NULL && strcmp(a->labels[i]->key, key) == 0) {
            return str_or_empty(a->labels[i]->value);
        }
    }
    return "";
}

static const char *node_field(const struct constraint *c, const Swarm__Node *node)
{
    const Swarm__NodeDescription *d = node->description;
    const Swarm__Platform *p = d != NULL ? d->platform : NULL;
    switch (c->key) {
        case CONSTRAINT_NODE_ID:
            return str_or_empty(node->id);
        case CONSTRAINT_NODE_HOSTNAME:
            return d != NULL ? str_or_empty(d->hostname) : "";
        case CONSTRAINT_NODE_ROLE:
            return node->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker";
        case CONSTRAINT_NODE_OS:
            return p != NULL ? str_or_empty(p->os) : "";
        case CONSTRAINT_NODE_ARCH:
            return p != NULL ? str_or_empty(p->architecture) : "";
        case CONSTRAINT_NODE_LABEL:
            return node_label(node, c->label);
    }
    return "";
}

bool constraint_match(const struct constraint *c, const Swarm__Node *node)
{
    bool same = strcasecmp(node_field(c, node), c->value) == 0;
    return c->equal ? same : !same;
}

bool constraint_match_all(const struct constraint *cs, size_t n, const Swarm__Node *node)
{
    for (size_t i = 0; i < n; i++) {
        if (!constraint_match(&cs[i], node)) {
            return false;
        }
    }
    return true;
}
