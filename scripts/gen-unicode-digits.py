#!/usr/bin/env python3
"""Write every Unicode decimal digit (general category Nd) with its value,
and the unassigned code points, from the Unicode Character Database that Python ships (unicodedata).

The table is the oracle of crates/tower-totp/tests/unicode_digits.rs; the
library itself reads the category from the unicode-properties crate, so the
two sources are independent. Regenerate with

    python3 scripts/gen-unicode-digits.py > crates/tower-totp/tests/data/unicode_nd_digits.txt
"""
import sys
import unicodedata

print(f"# Unicode {unicodedata.unidata_version}: code point (hex), decimal value; every Nd character")
for cp in range(sys.maxunicode + 1):
    c = chr(cp)
    if unicodedata.category(c) == "Nd":
        print(f"{cp:04X} {unicodedata.decimal(c)}")

# The code points this version leaves unassigned (Cn), as ranges: a digit
# the library knows from a newer Unicode may only be one of them.
print("# unassigned: first last (hex)")
start = None
for cp in range(sys.maxunicode + 2):
    unassigned = cp <= sys.maxunicode and unicodedata.category(chr(cp)) == "Cn"
    if unassigned and start is None:
        start = cp
    elif not unassigned and start is not None:
        print(f"unassigned {start:04X} {cp - 1:04X}")
        start = None
