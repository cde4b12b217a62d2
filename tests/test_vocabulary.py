"""One vocabulary: the README's tables of categories, kinds and cleaners are the enums' meanings.

model.py holds each member's one-line meaning; the README shows it. These tests fail on any
drift: a member missing from its table or a row no member has, a changed sentence, another
order. The failure message holds the table as it should read, to paste into the README.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from dockerdu.model import (
    CLEANED_BY,
    MEANINGS,
    Category,
    CleanCase,
    Cleaner,
    ImageFormat,
    OrphanKind,
    OrphansFormat,
    OutputFormat,
    PlanFormat,
    ProblemKind,
)

README = (Path(__file__).parent.parent / "README.md").read_text()


def _section(title: str) -> str:
    """The README's `## title` section, up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else len(README)]


def _tables(text: str) -> list[list[str]]:
    """Every Markdown table in `text`, each as its lines (header, rule and rows)."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _table(text: str, header: str) -> list[str]:
    """The table of `text` whose header line is `header`; the nth such when several: see callers."""
    found = [t for t in _tables(text) if t[0] == header]
    assert found, f"no table headed {header!r}"
    return found[0]


def _expected(header: str, members: Iterable[Category | OrphanKind | ProblemKind | Cleaner]) -> list[str]:
    rule = "|" + "---|" * header.count(" | ") + "---|"
    return [header, rule, *(f"| `{m}` | {m.meaning.replace('|', chr(92) + '|')} |" for m in members)]


def _check(found: list[str], expected: list[str]) -> None:
    assert found == expected, "the README's table should read:\n" + "\n".join(expected)


def test_categories_table_is_the_category_enum() -> None:
    found = _table(_section("Categories (`totals`)"), "| category | what |")
    _check(found, _expected("| category | what |", Category))


def test_orphan_and_problem_tables_are_the_kind_enums() -> None:
    kinds = [t for t in _tables(_section("Orphans and problems")) if t[0] == "| kind | what |"]
    assert len(kinds) == 2, "the section has the orphans' table, then the problems'"
    _check(kinds[0], _expected("| kind | what |", OrphanKind))
    _check(kinds[1], _expected("| kind | what |", ProblemKind))


def test_cleaned_by_table_is_the_cleaner_enum_and_agrees_with_cleaned_by() -> None:
    """Each cleaner's row is its meaning, and names exactly the kinds CLEANED_BY gives it."""
    found = _table(_section("Orphans and problems"), "| cleaned_by | kinds |")
    _check(found, _expected("| cleaned_by | kinds |", Cleaner))
    for cleaner in Cleaner:
        named = {k for k in re.findall(r"`([a-z_]+)`", cleaner.meaning) if k in set(OrphanKind)}
        keys = [key for key, who in CLEANED_BY.items() if who is cleaner]
        given = {key.kind if isinstance(key, CleanCase) else key for key in keys}
        assert named == given, f"{cleaner}: the README names {sorted(named)}, CLEANED_BY {sorted(given)}"


def test_every_member_has_its_own_meaning() -> None:
    subsets = (OrphansFormat, ImageFormat, PlanFormat)
    for enum, meanings in MEANINGS.items():
        assert set(meanings) >= set(enum) if enum in subsets else set(meanings) == set(enum), enum
        for member in enum:
            text = member.meaning
            assert text and "\n" not in text and text == text.strip(), member
    for sub in subsets:
        for f in sub:
            assert OutputFormat(f.value).meaning == f.meaning, f


def test_cleaned_by_covers_every_kind_and_case() -> None:
    assert set(CLEANED_BY) == set(OrphanKind) | set(CleanCase)
    for case in CleanCase:
        assert case.value == f"{case.kind.value}:{case.value.split(':', 1)[1]}"


def test_command_formats_are_output_formats() -> None:
    """Each command's --format choices are formats the renderers know, in the same order."""
    for sub in (OrphansFormat, ImageFormat, PlanFormat):
        assert [f.value for f in sub] == [f.value for f in OutputFormat if f.value in {s.value for s in sub}]


@pytest.mark.parametrize("member", [Category.build_cache, OrphanKind.lease_stale, Cleaner.dockerd_at_stop])
def test_a_member_prints_as_its_value_everywhere(member: Category | OrphanKind | Cleaner) -> None:
    """JSON, CSV, Prometheus labels, tables and the history file see the plain string."""
    value = member.value
    assert str(member) == f"{member}" == "%s" % member == f"{member:>30}".strip() == value  # noqa: UP031
    assert f"{member:<30}|" == f"{value:<30}|"
    assert json.dumps({member: [member]}) == json.dumps({value: [value]})
    assert json.dumps({member: member}, indent=2) == json.dumps({value: value}, indent=2)
    out = io.StringIO()
    csv.writer(out).writerow([member, f"x {member}"])
    assert out.getvalue() == f"{value},x {value}\r\n"
    assert {value: 1}[member] == 1 and {member: 1}[value] == 1
    assert type(member)(value) is member
