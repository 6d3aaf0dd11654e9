#!/usr/bin/env python3
"""Embed a file in C: embed.py INPUT OUTPUT NAME writes OUTPUT defining
`const char NAME[]` (the bytes, NUL-terminated) and `const size_t NAME_len`."""
import sys

src, out, name = sys.argv[1:4]
data = open(src, "rb").read()
with open(out, "w") as f:
    f.write(f"/* Generated from {src.split('/')[-1]} by embed.py: do not edit. */\n")
    f.write("#include <stddef.h>\n")
    f.write(f"const char {name}[] = {{\n")
    for i in range(0, len(data), 16):
        f.write("    " + ", ".join(str(b) for b in data[i:i + 16]) + ",\n")
    f.write("    0};\n")
    f.write(f"const size_t {name}_len = {len(data)};\n")
