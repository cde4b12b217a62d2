"""Go's `strconv.ParseInt(s, 10, 64)`, which Docker and BuildKit parse their numbers with."""

from __future__ import annotations

import re

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# ParseInt takes one optional sign and ASCII digits, nothing around them (no space,
# newline, "_" or non-ASCII digit, all of which Python's int() would take).
_DECIMAL = re.compile(r"[+-]?[0-9]+", re.ASCII)


def parse_int64(text: str) -> int | None:
    """The value Go's ParseInt gives `text`, or None where it returns an error."""
    if not _DECIMAL.fullmatch(text):
        return None
    sign, digits = ("-", text[1:]) if text[0] == "-" else ("", text.lstrip("+"))
    digits = digits.lstrip("0") or "0"
    if len(digits) > 19:  # out of range (and int() refuses very long input)
        return None
    value = int(sign + digits)
    return value if INT64_MIN <= value <= INT64_MAX else None


def in_int64(value: int) -> bool:
    """Whether a JSON integer fits the int64 Go decodes it into."""
    return INT64_MIN <= value <= INT64_MAX
