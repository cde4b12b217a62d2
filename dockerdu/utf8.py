"""Names found under the root as valid UTF-8 text, whatever they hold."""

from __future__ import annotations

from .text import clean


def valid_text(s: str) -> str:
    """`clean(s)`, also for lone surrogates that no file name can hold (e.g. `\\ud800` from JSON).

    Undecodable bytes of a file name become `\\xNN` text, as in the JSON report; any other
    lone surrogate becomes `\\uNNNN` text.
    """
    try:
        return clean(s)
    except UnicodeEncodeError:
        return "".join(_char(ch) for ch in s)


def _char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch
