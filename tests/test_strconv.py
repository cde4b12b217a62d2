"""Go's strconv.ParseInt(s, 10, 64), as Docker reads a layerdb `size`: what it takes and what it refuses."""

from __future__ import annotations

import pytest

from dockerdu.strconv import INT64_MAX, INT64_MIN, in_int64, parse_int64


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0), ("300", 300), ("+5", 5), ("-5", -5), ("007", 7), ("0" * 5000 + "7", 7),
        (str(INT64_MAX), INT64_MAX), (str(INT64_MIN), INT64_MIN),
    ],
)  # fmt: skip
def test_what_go_parses(text: str, value: int) -> None:
    assert parse_int64(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "", "+", "-", "+-5", "5\n", " 5", "5 ", "1_2", "１２", "٣", "0x10", "1e3", "5.0",
        str(INT64_MAX + 1), str(INT64_MIN - 1), "9" * 5000, "-" + "9" * 30,
    ],
)  # fmt: skip
def test_what_go_refuses(text: str) -> None:
    assert parse_int64(text) is None


def test_json_integers_outside_int64() -> None:
    assert in_int64(INT64_MAX) and in_int64(INT64_MIN)
    assert not in_int64(INT64_MAX + 1) and not in_int64(INT64_MIN - 1)
