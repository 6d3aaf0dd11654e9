/* The template function printf: Go's fmt.Sprintf over template values,
 * for the verbs scripts use (%s %v %d %q %t %f %e %g %x %X %c %%) with
 * flags (- + # 0 space), width and precision; anything else prints Go's
 * in-band errors (%!d(string=web), %!s(MISSING), %!(EXTRA int=1)). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "tmpl_tree.h"

struct tmpl_verb {
    char flags[8];
    int width, prec; /* -1: not given */
    char verb;
};

/* Go's strconv.Quote, for printable UTF-8 text. */
static void printf_quote(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        static const char esc[] = "\a\b\f\n\r\t\v";
        const char *e = *p != '\0' ? strchr(esc, *p) : NULL;
        if (e != NULL) {
            fprintf(out, "\\%c", "abfnrtv"[e - esc]);
        } else if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7F) {
            fprintf(out, "\\x%02x", *p);
        } else {
            fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* Pad `s` (already formatted) to the verb's width, in characters. */
static void printf_pad(FILE *out, const struct tmpl_verb *v, const char *s)
{
    size_t chars = 0;
    for (const char *p = s; *p != '\0'; p++) {
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    }
    size_t pad = v->width > 0 && (size_t)v->width > chars ? (size_t)v->width - chars : 0;
    bool left = strchr(v->flags, '-') != NULL;
    if (!left) {
        fprintf(out, "%*s", (int)pad, "");
    }
    fputs(s, out);
    if (left) {
        fprintf(out, "%*s", (int)pad, "");
    }
}

/* %!v(type=value): a verb that does not fit its operand. */
static void printf_bad(FILE *out, char verb, const struct tmpl_value *a)
{
    fprintf(out, "%%!%c(", verb);
    if (a->kind == TMPL_NIL || a->kind == TMPL_NOVALUE) {
        fputs("<nil>", out);
    } else {
        fprintf(out, "%s=", tmpl_value_type(a));
        tmpl_value_print(out, a);
    }
    fputc(')', out);
}

/* A number with the verb's flags, width and precision, as Go's fmt lays
 * it out: sign or '+'/' ', '#' prefix, zeros after the sign for '0'. */
static void printf_c(FILE *out, const struct tmpl_verb *v, char conv, const struct tmpl_value *a)
{
    char digits[600], body[5000];
    bool neg;
    if (a->kind == TMPL_FLOAT) {
        double m = fabs(a->f);
        int prec = v->prec >= 0 ? v->prec : 6;
        neg = signbit(a->f) != 0;
        if (isnan(a->f) || isinf(a->f)) {
            snprintf(digits, sizeof digits, "%s", isnan(a->f) ? "NaN" : "Inf");
            neg = neg && !isnan(a->f);
        } else if (conv == 'e' || conv == 'E') {
            snprintf(digits, sizeof digits, conv == 'e' ? "%.*e" : "%.*E", prec, m);
        } else if (conv == 'g' || conv == 'G') {
            snprintf(digits, sizeof digits, conv == 'g' ? "%.*g" : "%.*G", prec, m);
        } else {
            snprintf(digits, sizeof digits, "%.*f", prec, m);
        }
    } else {
        unsigned long long u = (unsigned long long)a->i;
        neg = !a->is_unsigned && a->i < 0;
        if (neg) {
            u = (unsigned long long)-(a->i + 1) + 1;
        }
        snprintf(digits, sizeof digits,
                 conv == 'x' ? "%llx" : conv == 'X' ? "%llX" : conv == 'o' ? "%llo" : "%llu", u);
        size_t nd = strlen(digits);
        if (v->prec >= 0 && (size_t)v->prec > nd) { /* minimum digits */
            memmove(digits + (size_t)v->prec - nd, digits, nd + 1);
            memset(digits, '0', (size_t)v->prec - nd);
        }
    }
    const char *sign = neg ? "-" : strchr(v->flags, '+') ? "+" : strchr(v->flags, ' ') ? " " : "";
    const char *prefix = !strchr(v->flags, '#') ? ""
                         : conv == 'x'           ? "0x"
                         : conv == 'X'           ? "0X"
                         : conv == 'o'           ? "0"
                                                 : "";
    size_t head = strlen(sign) + strlen(prefix), nd = strlen(digits);
    size_t zeros = 0;
    if (strchr(v->flags, '0') && !strchr(v->flags, '-') && v->width > 0 &&
        (size_t)v->width > head + nd && (a->kind == TMPL_FLOAT || v->prec < 0)) {
        zeros = (size_t)v->width - head - nd;
    }
    snprintf(body, sizeof body, "%s%s%0*d%s", sign, prefix, (int)zeros, 0, digits);
    if (zeros == 0) {
        snprintf(body, sizeof body, "%s%s%s", sign, prefix, digits);
    }
    printf_pad(out, v, body);
}

static void printf_string(FILE *out, const struct tmpl_verb *v, const struct tmpl_value *a)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (mem == NULL) {
        cli_oom();
    }
    if (v->verb == 'q') {
        printf_quote(mem, a->s);
    } else if (v->verb == 'x' || v->verb == 'X') {
        for (const unsigned char *p = (const unsigned char *)a->s; *p != '\0'; p++) {
            fprintf(mem, v->verb == 'x' ? "%02x" : "%02X", *p);
        }
    } else {
        /* precision counts characters, not bytes */
        size_t n = 0, chars = 0;
        for (; a->s[n] != '\0'; n++) {
            if (((unsigned char)a->s[n] & 0xC0) != 0x80 && v->prec >= 0 &&
                chars++ == (size_t)v->prec) {
                break;
            }
        }
        fwrite(a->s, 1, n, mem);
    }
    fclose(mem);
    printf_pad(out, v, buf);
    free(buf);
}

static void printf_value(FILE *out, const struct tmpl_verb *v, const struct tmpl_value *a)
{
    char verb = v->verb;
    if (a->kind == TMPL_INT && a->is_duration && strchr("vsq", verb) != NULL) {
        /* a Stringer: %v, %s and %q print String() */
        char buf[64];
        tmpl_format_duration(a->i, buf, sizeof buf);
        struct tmpl_value str = {.kind = TMPL_STRING, .s = buf};
        printf_string(out, v, &str);
        return;
    }
    if (verb == 'v' && a->kind != TMPL_STRING && a->kind != TMPL_INT && a->kind != TMPL_FLOAT) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (mem == NULL) {
            cli_oom();
        }
        tmpl_value_print(mem, a);
        fclose(mem);
        printf_pad(out, v, buf);
        free(buf);
        return;
    }
    switch (a->kind) {
        case TMPL_STRING:
            if (strchr("svqxX", verb) != NULL) {
                printf_string(out, v, a);
                return;
            }
            break;
        case TMPL_INT:
            if (strchr("vd", verb) != NULL) {
                printf_c(out, v, 'd', a);
                return;
            }
            if (strchr("xXo", verb) != NULL) {
                printf_c(out, v, verb, a);
                return;
            }
            if ((verb == 'c' || verb == 'q') && a->i >= 0x20 && a->i < 0x7F) {
                char q[4] = {'\'', (char)a->i, '\'', 0}, c[2] = {(char)a->i, 0};
                printf_pad(out, v, verb == 'q' ? q : c);
                return;
            }
            break;
        case TMPL_FLOAT:
            if (strchr("eEfFgG", verb) != NULL && !(strchr("gG", verb) && v->prec < 0)) {
                printf_c(out, v, verb, a);
                return;
            }
            if (strchr("vgG", verb) != NULL) { /* shortest, as Go's %v and %g */
                char buf[64];
                tmpl_format_float(a->f, -4, verb == 'v' ? 21 : 6, false, buf, sizeof buf);
                printf_pad(out, v, buf);
                return;
            }
            break;
        case TMPL_BOOL:
            if (verb == 't') {
                printf_pad(out, v, a->b ? "true" : "false");
                return;
            }
            break;
        default:
            if (verb == 's') { /* Go applies %s to lists' and maps' elements */
                struct tmpl_verb as_v = *v;
                as_v.verb = 'v';
                printf_value(out, &as_v, a);
                return;
            }
            break;
    }
    printf_bad(out, verb, a);
}

/* Flags, width, precision and verb at *p (just after '%'). */
static void printf_parse_verb(const char **p, struct tmpl_verb *v)
{
    const char *s = *p;
    size_t nf = 0;
    *v = (struct tmpl_verb){.width = -1, .prec = -1};
    while (*s != '\0' && strchr("-+# 0", *s) != NULL) {
        if (nf + 1 < sizeof v->flags && strchr(v->flags, *s) == NULL) {
            v->flags[nf++] = *s;
        }
        s++;
    }
    if (isdigit((unsigned char)*s)) {
        v->width = (int)strtol(s, (char **)&s, 10);
        v->width = v->width > 4096 ? 4096 : v->width;
    }
    if (*s == '.') {
        s++;
        v->prec = isdigit((unsigned char)*s) ? (int)strtol(s, (char **)&s, 10) : 0;
        v->prec = v->prec > 4096 ? 4096 : v->prec;
    }
    v->verb = *s;
    *p = *s != '\0' ? s + 1 : s;
}

void tmpl_printf(FILE *out, const char *format, const struct tmpl_value *const *args, size_t n)
{
    size_t used = 0;
    for (const char *p = format; *p != '\0';) {
        if (*p != '%') {
            fputc(*p++, out);
            continue;
        }
        p++;
        struct tmpl_verb v;
        printf_parse_verb(&p, &v);
        if (v.verb == '\0') {
            fputs("%!(NOVERB)", out);
        } else if (v.verb == '%') {
            fputc('%', out);
        } else if (used >= n) {
            fprintf(out, "%%!%c(MISSING)", v.verb);
        } else {
            printf_value(out, &v, args[used++]);
        }
    }
    if (used < n) {
        fputs("%!(EXTRA ", out);
        for (size_t i = used; i < n; i++) {
            fprintf(out, "%s%s=", i > used ? ", " : "", tmpl_value_type(args[i]));
            tmpl_value_print(out, args[i]);
        }
        fputc(')', out);
    }
}
