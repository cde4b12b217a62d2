"""A report in the format asked for, written where asked; the renderers load on demand.

Each run renders one format, so only that format's renderer is imported: the start-up
of a short run is a large part of its time.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HistoryError, UsageError
from .model import OutputFormat, assert_never

if TYPE_CHECKING:
    from .growth import Growth
    from .history import Snapshot
    from .render.table import Layout
    from .report import Report


def render(
    report: Report,
    fmt: OutputFormat,
    growth: Growth | None = None,
    *,
    orphans_only: bool = False,
    layout: Layout | None = None,
    history: Path | None = None,
) -> str:
    """`report` in format `fmt` (table, json, prometheus, csv, html), with `growth` where one is given.

    Table: the whole report, or only its orphans and problems; then a growth section.
    JSON: a `growth` object; Prometheus: the `dockerdu_growth_*` gauges; CSV (one row
    per object) has no place for growth. HTML: the growth, and a chart of the audits of
    the root recorded in `history` (the history file), this report last. `orphans_only`
    keeps, in every format, the orphans and problems and what says where they come from.
    `layout`: the table's width and units.
    """
    if fmt is OutputFormat.html:
        from .render.html import render_html

        return render_html(report, growth, _audits(history, report) if history is not None else ())
    if fmt is OutputFormat.json:
        import json

        from .render.json_ import to_dict

        doc = to_dict(report)
        if orphans_only:
            doc = {k: v for k, v in doc.items() if k in ORPHANS_JSON}
            doc["schema"] = ORPHANS_SCHEMA
        if growth is not None:
            from .growth import growth_dict

            doc["growth"] = growth_dict(growth)
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.prometheus:
        from .render.prometheus import render_growth_prometheus, render_prometheus

        text = render_prometheus(report)
        if orphans_only:
            text = _families(text, ORPHANS_METRICS)
        return text + (render_growth_prometheus(growth) if growth else "")
    if fmt is OutputFormat.csv:
        from .render.csv_ import render_csv

        return render_csv(report, CSV_KINDS if orphans_only else None)
    if fmt is OutputFormat.table:
        from .render.table import render_orphans_table, render_table

        text = render_orphans_table(report, layout) if orphans_only else render_table(report, layout)
        if growth is None:
            return text
        from .growth import render_growth_table

        extra = render_growth_table(growth)
        if layout is not None and layout.width is not None:
            from .render.table import end

            extra = "".join(end(line, layout.width) + "\n" for line in extra.splitlines())
        return text + extra
    assert_never(fmt)


ORPHANS_SCHEMA = "dockerdu.orphans/1"
ORPHANS_JSON = ("schema", "tool", "version", "generated_at", "root", "root_source", "store", "driver",
                "orphans", "problems", "incomplete", "notes")  # fmt: skip
"""The fields of `dockerdu orphans -f json`: the report's, orphans and problems only."""
ORPHANS_METRICS = ("dockerdu_info", "dockerdu_report_timestamp_seconds", "dockerdu_daemon_running",
                   "dockerdu_orphans", "dockerdu_orphans_disk_bytes", "dockerdu_problems")  # fmt: skip
CSV_KINDS = frozenset({"orphan", "problem"})


def _families(text: str, names: tuple[str, ...]) -> str:
    """The Prometheus families named `names`, each with its HELP and TYPE lines."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        name = line.split()[2] if line.startswith("# ") else line.split("{", 1)[0].split(" ", 1)[0]
        if name in names:
            out.append(line)
    return "".join(out)


def _audits(path: Path, report: Report) -> list[Snapshot]:
    """The audits of `report`'s root in the history at `path`, then `report` if not recorded yet."""
    from .history import Snapshot, entries
    from .text import clean

    now = Snapshot.of(report)
    found = [s for s in entries(path) if s.root == clean(report.root)]
    # An audit has recorded this report already: its line is the last one.
    return found if found and found[-1] == now else [*found, now]


def write_output(text: str, output: Path | None) -> None:
    """To stdout, or to `output`: a file atomically (temp file in the same dir, then rename),
    anything else (a device, a FIFO) by writing into it."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .history import replace_file

    if not output.parent.is_dir():
        # A typo in the path should not make a tree of dirs: the file is made, never its dir.
        raise UsageError(
            f"--output: cannot write {output}: {output.parent} is not a directory (dockerdu makes no dirs)"
        )
    data = text.encode("utf-8")
    try:
        special = not stat.S_ISREG(os.stat(output).st_mode)
    except OSError:
        special = False  # not there yet: made by the rename
    if special:
        # /dev/null, /dev/stdout, a FIFO: written into, never replaced by a regular file.
        try:
            with open(output, "wb") as f:
                f.write(data)
        except OSError as e:
            raise UsageError(f"--output: cannot write {output}: {e.strerror}") from None
        return
    try:
        replace_file(output, data)
    except HistoryError as e:
        raise UsageError(str(e)) from None


def message_stream(fmt: OutputFormat | None, output: Path | None) -> Any:
    """Where the audit's lines go: stdout, unless the report itself is written there."""
    return sys.stderr if fmt is not None and output is None else sys.stdout


def echo_lines(lines: list[str], stream: Any) -> None:
    """Print `lines`, each name already made printable by the check that wrote it."""
    for line in lines:
        stream.write(line + "\n")
    stream.flush()
