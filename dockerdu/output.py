"""A report in the format asked for, written where asked; the renderers load on demand.

Each run renders one format, so only that format's renderer is imported: the start-up
of a short run is a large part of its time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HistoryError, UsageError

if TYPE_CHECKING:
    from .growth import Growth
    from .history import Snapshot
    from .report import Report


def render(
    report: Report,
    fmt: str,
    growth: Growth | None = None,
    *,
    orphans_only: bool = False,
    history: Path | None = None,
) -> str:
    """`report` in format `fmt` (table, json, prometheus, csv, html), with `growth` where one is given.

    Table: the whole report, or only its orphans and problems; then a growth section.
    JSON: a `growth` object; Prometheus: the `dockerdu_growth_*` gauges; CSV (one row
    per object) has no place for growth. HTML: the growth, and a chart of the audits of
    the root recorded in `history` (the history file), this report last.
    """
    if fmt == "html":
        from .render.html import render_html

        if orphans_only:
            raise UsageError("dockerdu orphans has no html form; dockerdu report -f html shows them")

        return render_html(report, growth, _audits(history, report) if history is not None else ())
    if fmt == "json":
        import json

        from .render.json_ import to_dict

        doc = to_dict(report)
        if growth is not None:
            from .growth import growth_dict

            doc["growth"] = growth_dict(growth)
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "prometheus":
        from .render.prometheus import render_growth_prometheus, render_prometheus

        return render_prometheus(report) + (render_growth_prometheus(growth) if growth else "")
    if fmt == "csv":
        from .render.csv_ import render_csv

        return render_csv(report)
    from .render.table import render_orphans_table, render_table

    text = render_orphans_table(report) if orphans_only else render_table(report)
    if growth is None:
        return text
    from .growth import render_growth_table

    return text + render_growth_table(growth)


def _audits(path: Path, report: Report) -> list[Snapshot]:
    """The audits of `report`'s root in the history at `path`, then `report` if not recorded yet."""
    from .history import Snapshot, entries
    from .text import clean

    now = Snapshot.of(report)
    found = [s for s in entries(path) if s.root == clean(report.root)]
    # An audit has recorded this report already: its line is the last one.
    return found if found and found[-1] == now else [*found, now]


def write_output(text: str, output: Path | None) -> None:
    """To stdout, or to `output` atomically (temp file in the same directory, then rename)."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .history import replace_file

    try:
        replace_file(output, text.encode("utf-8"))
    except HistoryError as e:
        raise UsageError(str(e)) from None


def message_stream(fmt: str | None, output: Path | None) -> Any:
    """Where the audit's lines go: stdout, unless the report itself is written there."""
    return sys.stderr if fmt is not None and output is None else sys.stdout


def echo_lines(lines: list[str], stream: Any) -> None:
    """Print `lines`, each name already made printable by the check that wrote it."""
    for line in lines:
        stream.write(line + "\n")
    stream.flush()
