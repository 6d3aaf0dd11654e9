/* Printing strings that someone else chose (a user's label, a node's
 * hostname) without letting them drive the terminal: every byte that is not
 * printable ASCII is written as an escape, as Go's %q does inside its
 * quotes: \n \r \t, \xHH for any other byte below 0x20,
 * 0x7f, and bytes that are not part of a graphic UTF-8 character (so ESC
 * is \x1b, a C1 control or a bidi override is escaped, "café" stays). A
 * backslash stays as it is (unlike %q): the output is for reading, not for
 * parsing back, and tables draw history rows with " \_ ". Pure. */
#ifndef SWARM_COMMON_ESCAPE_H
#define SWARM_COMMON_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* True when every byte of s is printable ASCII (0x20-0x7e), so printing it
 * needs no escape. NULL is safe (true). */
bool esc_is_printable(const char *s);

/* Write s escaped into out (NUL-terminated, at most size bytes including the
 * NUL; an escape is never cut in half: the output ends before it). Returns
 * out, so it can be used as a printf argument. NULL s writes "". */
char *esc_str(const char *s, char *out, size_t size);

/* Bytes esc_str needs for s, its NUL included. */
size_t esc_len(const char *s);

#endif
