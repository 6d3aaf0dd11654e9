/* See escape.h. */
#include "escape.h"

#include <stdio.h>
#include <string.h>

bool esc_is_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            return false;
        }
    }
    return true;
}

/* The escape for one byte into e (at least 5 bytes); returns its length. */
static size_t esc_byte(unsigned char c, char *e)
{
    switch (c) {
        case '\n':
            memcpy(e, "\\n", 3);
            return 2;
        case '\r':
            memcpy(e, "\\r", 3);
            return 2;
        case '\t':
            memcpy(e, "\\t", 3);
            return 2;
        default:
            break;
    }
    if (c < 0x20 || c > 0x7e) {
        snprintf(e, 5, "\\x%02x", c);
        return 4;
    }
    e[0] = (char)c;
    e[1] = '\0';
    return 1;
}

/* Length of a well-formed UTF-8 sequence at p for a graphic code point
 * (U+00A0 and above, not a surrogate, a line/paragraph separator or a bidi
 * control, which could reorder what a terminal shows), else 0. */
static size_t esc_utf8_graphic(const unsigned char *p)
{
    size_t len;
    unsigned cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2, cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3, cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4, cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < 0xa0 || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp == 0x2028 || cp == 0x2029 || cp == 0x200e ||
        cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
        cp == 0xfeff) {
        return 0;
    }
    return len;
}

/* One step: the escape (or the bytes as they are) of what starts at p into
 * e (at least 5 bytes); *used says how many input bytes it covers. */
static size_t esc_step(const unsigned char *p, char *e, size_t *used)
{
    size_t u = esc_utf8_graphic(p);
    if (u > 0) {
        memcpy(e, p, u);
        *used = u;
        return u;
    }
    *used = 1;
    return esc_byte(*p, e);
}

char *esc_str(const char *s, char *out, size_t size)
{
    size_t n = 0, used;
    char e[5];
    if (size == 0) {
        return out;
    }
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p += used) {
        size_t len = esc_step(p, e, &used);
        if (n + len + 1 > size) {
            break;
        }
        memcpy(out + n, e, len);
        n += len;
    }
    out[n] = '\0';
    return out;
}

size_t esc_len(const char *s)
{
    size_t n = 1, used;
    char e[5];
    for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p += used) {
        n += esc_step(p, e, &used);
    }
    return n;
}
