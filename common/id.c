#include "id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int base36_encode(const uint8_t *bytes, size_t len, size_t width, char *out)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t num[64];
    size_t pos = width;

    if (len > sizeof num) {
        return -1;
    }
    memcpy(num, bytes, len);
    out[width] = '\0';
    for (;;) {
        /* Divide the big-endian number by 36 in place; the remainder is the
         * next digit from the right. */
        unsigned rem = 0;
        int nonzero = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned cur = (rem << 8) | num[i];
            num[i] = (uint8_t)(cur / 36);
            rem = cur % 36;
            nonzero |= num[i];
        }
        if (pos == 0) {
            return -1;
        }
        out[--pos] = digits[rem];
        if (!nonzero) {
            break;
        }
    }
    while (pos > 0) {
        out[--pos] = '0';
    }
    return 0;
}

int random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int id_generate(char out[ID_LEN + 1])
{
    uint8_t raw[16];
    if (random_bytes(raw, sizeof raw) != 0) {
        return -1;
    }
    return base36_encode(raw, sizeof raw, ID_LEN, out);
}

int id_is_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) {
            return 0;
        }
    }
    return n == ID_LEN;
}

int id_is_path_safe(const char *s)
{
    size_t n = 0;
    if (s == NULL) {
        return 0;
    }
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-' || c == '.') ||
            n >= ID_PATH_MAX) {
            return 0;
        }
    }
    return n > 0 && strcmp(s, ".") != 0 && strstr(s, "..") == NULL;
}
