"""Make names found under the root safe to print: they were written by anyone."""

from __future__ import annotations

import unicodedata


def clean(s: str) -> str:
    """Valid Unicode for machine formats.

    Undecodable bytes of a file name (lone surrogates U+DC80..U+DCFF) become `\\xNN`
    text; any other lone surrogate (e.g. `\\ud800` escaped in a JSON file) `\\uNNNN`.
    """
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return "".join(_char(ch) for ch in s)


def _char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch


def display(s: str) -> str:
    """One printable line for a terminal: control and format characters escaped."""
    s = clean(s)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Zl", "Zp"):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)
