/* Value parsers of the service flags, each Docker's own rule and message:
 * NanoCPUs (opts.NanoCPUs), go-units RAMInBytes, PortOpt (long and short
 * --publish syntax), swarmkit's constraint.Parse, and shell words for
 * --args. Declared in cmd_service_opts.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

#include "cmd_service_opts.h"
#include "err.h"
#include "vec.h"

int cli_svc_parse_cpus(const char *s, int64_t *nano, char *errmsg)
{
    const char *p = s;
    int64_t whole = 0, frac = 0;
    int ndigits = 0, nfrac = 0;
    if (*p == '-') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "value cannot be negative");
        return SWARM_EINVAL;
    }
    if (*p == '+') {
        p++;
    }
    for (; isdigit((unsigned char)*p); p++, ndigits++) {
        if (whole > INT64_MAX / 10 / 1000000000) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "value is too large");
            return SWARM_EINVAL;
        }
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, nfrac++) {
            if (nfrac >= 9) {
                if (*p != '0') {
                    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "value is too precise");
                    return SWARM_EINVAL;
                }
                continue;
            }
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p != '\0' || ndigits + nfrac == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "failed to parse %s as a rational number", s);
        return SWARM_EINVAL;
    }
    for (int i = nfrac < 9 ? nfrac : 9; i < 9; i++) {
        frac *= 10;
    }
    *nano = whole * 1000000000 + frac;
    return 0;
}

/* `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, every unit 1024-based. */
int cli_svc_parse_memory(const char *s, int64_t *bytes, char *errmsg)
{
    static const char units[] = "kmgtp";
    const char *p = s;
    char *end;
    if (!isdigit((unsigned char)*p)) {
        goto invalid;
    }
    errno = 0;
    double v = strtod(p, &end);
    if (errno == ERANGE || end == p || end[-1] == '.') {
        goto invalid;
    }
    for (const char *q = p; q < end; q++) { /* no exponent, sign, hex */
        if (!isdigit((unsigned char)*q) && *q != '.') {
            goto invalid;
        }
    }
    p = end;
    if (*p == ' ') {
        p++;
    }
    const char *u = *p != '\0' ? strchr(units, tolower((unsigned char)*p)) : NULL;
    if (u != NULL) {
        for (long i = 0; i <= u - units; i++) {
            v *= 1024.0;
        }
        p++;
    }
    if (*p == 'i' || *p == 'I') {
        p++;
    }
    if (*p == 'b' || *p == 'B') {
        p++;
    }
    if (*p != '\0' || v >= 9.2e18) {
        goto invalid;
    }
    *bytes = (int64_t)v;
    return 0;
invalid:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid size: '%s'", s);
    return SWARM_EINVAL;
}

static Swarm__PortConfig *cli_svc_port_new(void)
{
    Swarm__PortConfig *pc = malloc(sizeof *pc);
    if (pc != NULL) {
        swarm__port_config__init(pc);
    }
    return pc;
}

static void cli_svc_port_set(char **field, const char *v)
{
    if (*field != NULL && *field != (char *)protobuf_c_empty_string) {
        free(*field);
    }
    *field = strdup(v);
    if (*field == NULL) {
        fputs("swarmctl: out of memory\n", stderr);
        exit(1);
    }
}

/* strconv.ParseUint(v, 10, 16) */
static int cli_svc_parse_port_number(const char *v, uint32_t *out, char *errmsg)
{
    uint64_t n;
    if (cli_parse_uint(v, &n, errmsg) != 0 || (v[0] == '0' && v[1] == 'x')) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseUint: parsing \"%s\": invalid syntax", v);
        return SWARM_EINVAL;
    }
    if (n > 65535) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseUint: parsing \"%s\": value out of range", v);
        return SWARM_EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

static int cli_svc_port_field(Swarm__PortConfig *pc, const char *field, char *errmsg)
{
    char key[32], value[64];
    const char *eq = strchr(field, '=');
    if (eq == NULL || (size_t)(eq - field) >= sizeof key || strlen(eq + 1) >= sizeof value) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid field %s", field);
        return SWARM_EINVAL;
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - field), field);
    snprintf(value, sizeof value, "%s", eq + 1);
    for (char *c = key; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    for (char *c = value; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    if (strcmp(key, "protocol") == 0) {
        if (strcmp(value, "tcp") != 0 && strcmp(value, "udp") != 0 && strcmp(value, "sctp") != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid protocol value %s", value);
            return SWARM_EINVAL;
        }
        cli_svc_port_set(&pc->protocol, value);
    } else if (strcmp(key, "mode") == 0) {
        if (strcmp(value, "ingress") != 0 && strcmp(value, "host") != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid publish mode value %s", value);
            return SWARM_EINVAL;
        }
        cli_svc_port_set(&pc->publish_mode, value);
    } else if (strcmp(key, "target") == 0) {
        return cli_svc_parse_port_number(value, &pc->target_port, errmsg);
    } else if (strcmp(key, "published") == 0) {
        return cli_svc_parse_port_number(value, &pc->published_port, errmsg);
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid field key %s", key);
        return SWARM_EINVAL;
    }
    return 0;
}

/* "mode=host,published=8080,target=80,protocol=udp" */
static int cli_svc_parse_port_long(const char *s, Swarm__PortConfig *pc, char *errmsg)
{
    char *copy = strdup(s), *save = NULL;
    int rv = copy != NULL ? 0 : -1;
    for (char *f = strtok_r(copy, ",", &save); f != NULL && rv == 0;
         f = strtok_r(NULL, ",", &save)) {
        rv = cli_svc_port_field(pc, f, errmsg);
    }
    free(copy);
    if (rv == 0 && pc->target_port == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "missing mandatory field \"target\"");
        rv = SWARM_EINVAL;
    }
    return rv;
}

/* nat.ParsePortSpec, without IPs and ranges: "8080:80", "80", "53:53/udp". */
static int cli_svc_parse_port_short(const char *s, Swarm__PortConfig *pc, char *errmsg)
{
    char buf[64], msg[SWARM_ERRMSG_SIZE];
    snprintf(buf, sizeof buf, "%s", s);
    char *proto = strchr(buf, '/');
    if (proto != NULL) {
        *proto++ = '\0';
        if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 && strcmp(proto, "sctp") != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Invalid proto: %s", proto);
            return SWARM_EINVAL;
        }
        cli_svc_port_set(&pc->protocol, proto);
    }
    char *target = strrchr(buf, ':');
    if (target != NULL) {
        *target++ = '\0';
        if (strchr(buf, ':') != NULL ||
            cli_svc_parse_port_number(buf, &pc->published_port, msg) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Invalid hostPort: %s", buf);
            return SWARM_EINVAL;
        }
    } else {
        target = buf;
    }
    if (cli_svc_parse_port_number(target, &pc->target_port, msg) != 0 ||
        pc->target_port == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "Invalid containerPort: %s", target);
        return SWARM_EINVAL;
    }
    return 0;
}

int cli_svc_parse_port(const char *s, Swarm__PortConfig **port, char *errmsg)
{
    Swarm__PortConfig *pc = cli_svc_port_new();
    if (pc == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    int rv = strchr(s, '=') != NULL ? cli_svc_parse_port_long(s, pc, errmsg)
                                    : cli_svc_parse_port_short(s, pc, errmsg);
    if (rv == 0 && *pc->protocol == '\0') {
        cli_svc_port_set(&pc->protocol, "tcp");
    }
    if (rv == 0 && *pc->publish_mode == '\0') {
        cli_svc_port_set(&pc->publish_mode, "ingress");
    }
    if (rv != 0) {
        protobuf_c_message_free_unpacked(&pc->base, NULL);
        return rv;
    }
    *port = pc;
    return 0;
}

/* ---------------------------------------------------------- constraints */

static bool cli_svc_is_key(const char *s, size_t len)
{
    if (len < 2 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && strchr("-_.", s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static bool cli_svc_is_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && !isspace((unsigned char)s[i]) &&
            strchr(":-_.*()?+[]\\^$|/", s[i]) == NULL) {
            return false;
        }
    }
    return len > 0;
}

/* Trim spaces: [*s, *s + *len). */
static void cli_svc_trim(const char **s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)**s)) {
        (*s)++, (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*s)[*len - 1])) {
        (*len)--;
    }
}

int cli_svc_check_user(const char *s, char *errmsg)
{
    const char *colon = strchr(s, ':');
    size_t n = strlen(s);
    bool ok = n > 0 && n <= 256 && s[0] != ':' && s[n - 1] != ':' &&
              (colon == NULL || strchr(colon + 1, ':') == NULL);
    for (size_t i = 0; ok && i < n; i++) {
        ok = (unsigned char)s[i] > ' ' && s[i] != 0x7f;
    }
    if (!ok) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "invalid user \"%s\": want <name|uid>[:<group|gid>]", s);
        return SWARM_EINVAL;
    }
    return 0;
}

int cli_svc_check_constraint(const char *s, char *errmsg)
{
    static const char *const ops[] = {"==", "!="};
    for (size_t i = 0; i < 2; i++) {
        const char *op = strstr(s, ops[i]);
        if (op == NULL) {
            continue;
        }
        const char *k = s, *v = op + 2;
        size_t klen = (size_t)(op - s), vlen = strlen(v);
        cli_svc_trim(&k, &klen);
        cli_svc_trim(&v, &vlen);
        if (!cli_svc_is_key(k, klen)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "key '%.*s' is invalid", (int)klen, k);
            return SWARM_EINVAL;
        }
        if (!cli_svc_is_value(v, vlen)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "value '%.*s' is invalid", (int)vlen, v);
            return SWARM_EINVAL;
        }
        return 0;
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "constraint expected one operator from ==, !=");
    return SWARM_EINVAL;
}

/* ------------------------------------------------------------ shell words */

static int cli_svc_word_push(char ***words, size_t *n, size_t *cap, const char *w, size_t len)
{
    if (vec_grow(*words, *cap, *n + 1) != 0 || ((*words)[*n] = strndup(w, len)) == NULL) {
        return -1;
    }
    (*n)++;
    return 0;
}

int cli_svc_split_words(const char *s, char ***words, size_t *n, char *errmsg)
{
    size_t cap = strlen(s) + 1, len = 0, words_cap = 0;
    char *w = malloc(cap);
    bool in_word = false;
    char quote = 0;
    *words = NULL;
    *n = 0;
    int rv = SWARM_ENOMEM;
    if (w == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return rv;
    }
    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '\0' || (quote == 0 && isspace((unsigned char)c))) {
            if (quote != 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid command line string");
                rv = SWARM_EINVAL;
                goto fail;
            }
            if (in_word && cli_svc_word_push(words, n, &words_cap, w, len) != 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
                goto fail;
            }
            in_word = false;
            len = 0;
            if (c == '\0') {
                break;
            }
            continue;
        }
        in_word = true;
        if (quote == 0 && (c == '\'' || c == '"')) {
            quote = c;
        } else if (quote != 0 && c == quote) {
            quote = 0;
        } else if (c == '\\' && quote != '\'' && p[1] != '\0') {
            w[len++] = *++p;
        } else {
            w[len++] = c;
        }
    }
    free(w);
    return 0;
fail:
    free(w);
    for (size_t i = 0; i < *n; i++) {
        free((*words)[i]);
    }
    free(*words);
    *words = NULL;
    *n = 0;
    return rv;
}
