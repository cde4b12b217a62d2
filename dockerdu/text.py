"""Make names found under the root safe to print: they were written by anyone."""

from __future__ import annotations

import unicodedata


def clean(s: str) -> str:
    """Valid Unicode for machine formats: undecodable bytes become `\\xNN` text."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
