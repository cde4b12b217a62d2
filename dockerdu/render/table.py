"""The report as tables for a person: one section per kind, largest first, fitted to a width.

A `Layout` says how wide the lines may be (None: no limit, `--no-trunc`) and how sizes
are written. To fit, IDs inside paths and reasons become their first 12 characters and
an ellipsis, then the widest shrinkable columns (names, paths, reasons) lose characters
in the middle; prose lines wrap. A figure computed from partial data is marked `*`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model import Category
from ..report import ContainerReport, ImageReport, Report
from ..text import display
from ..units import size_text

CATEGORIES = tuple(Category)
"""The `totals` categories in the order the summary line names them."""

ELLIPSIS = "…"
ID64 = re.compile(r"[0-9a-f]{64}")
GAP = "  "
NOT_MEASURED = "not measured (--quick)"


@dataclass(frozen=True)
class Layout:
    """How to print: the width lines must fit (None: any), the units of sizes, --quick."""

    width: int | None = 80
    units: str = "docker"
    quick: bool = False

    def size(self, n: int | None) -> str:
        """A size as this layout prints it."""
        return size_text(n, self.units)

    def measured(self, n: int | None) -> str:
        """A disk figure that --quick leaves unmeasured says so."""
        return NOT_MEASURED if n is None and self.quick else self.size(n)


def short_ids(text: str) -> str:
    """Every 64-hex ID in `text` as its first 12 characters and an ellipsis, as `docker ps` shows IDs."""
    return ID64.sub(lambda m: m.group(0)[:12] + ELLIPSIS, text)


def middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, the middle replaced by an ellipsis."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def start(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at the start: a path keeps its last names."""
    return text if len(text) <= width else ELLIPSIS + text[len(text) - width + 1 :]


def end(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at the end."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


Shrink = Callable[[str, int], str]


@dataclass(frozen=True)
class Column:
    """A column: its header, right-aligned or not, and how it shrinks (None: it keeps its width)."""

    header: str
    right: bool = False
    shrink: Shrink | None = None
    least: int = 8
    """The narrowest it shrinks to (or its header's width, if wider)."""


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None) -> list[str]:
    """Rows under their headers, two spaces apart, the shrinkable columns cut to fit `width`."""
    cells = [[display(c) for c in row] for row in rows]
    widths = [max([len(col.header)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    if width is not None:
        over = sum(widths) + len(GAP) * (len(widths) - 1) - width
        while over > 0:
            shrinkable = [
                i for i, c in enumerate(columns) if c.shrink and widths[i] > max(c.least, len(c.header))
            ]
            if not shrinkable:
                break
            i = max(shrinkable, key=lambda j: widths[j])
            floor = max(columns[i].least, len(columns[i].header))
            others = sorted((widths[j] for j in shrinkable if j != i), reverse=True)
            # Down to the next-widest shrinkable column at most, so the cuts share out.
            step = min(over, widths[i] - floor, max(widths[i] - (others[0] if others else floor), 1))
            widths[i] -= step
            over -= step
        for row in cells:
            for i, col in enumerate(columns):
                if col.shrink and len(row[i]) > widths[i]:
                    row[i] = col.shrink(row[i], widths[i])

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if c.right else v.ljust(w) for v, w, c in zip(values, widths, columns, strict=True)
        ]
        return GAP.join(parts).rstrip()

    return [line([c.header for c in columns]), *(line(r) for r in cells)]


def _section(title: str, body: list[str]) -> list[str]:
    return ["", title, *(body or ["none found"])]


def _prose(text: str, layout: Layout, indent: str = "  ") -> list[str]:
    """A line of text, wrapped to the width (continuations indented)."""
    text = display(text)
    if layout.width is None or len(text) <= layout.width:
        return [text]
    return textwrap.wrap(
        text, layout.width, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False
    )


def _fit(line: str, layout: Layout) -> str:
    return line if layout.width is None else end(line, layout.width)


def _ids(text: str, layout: Layout) -> str:
    return text if layout.width is None else short_ids(text)


def _star(text: str, flagged: bool) -> str:
    return text + "*" if flagged else text


def _flagged(report: Report, *names: str) -> bool:
    return any(n in report.incomplete for n in names)


def render_header(report: Report, layout: Layout | None = None) -> list[str]:
    """Where the figures come from."""
    layout = layout or Layout()
    where = f"  ({display(report.root_source)}; store {report.store})"
    root = display(report.root)
    if layout.width is not None:
        root = middle(root, max(layout.width - len("Docker root  ") - len(where), 20))
    lines = [f"Docker root  {root}{where}"]
    ctrd = report.containerd_root
    if report.store == "containerd" and ctrd is None:
        lines.append("containerd   root not found (pass --containerd-root): image figures unknown")
    elif report.store == "containerd" and ctrd is not None:
        disks = {r.path: r.disk for r in report.roots if r.role == "containerd"}
        disk = f"; {layout.size(disks[ctrd])}" if ctrd in disks else ""
        source = display(report.containerd_root_source or "")
        where = f"  (root; {source}{disk})"
        path = display(ctrd)
        if layout.width is not None:
            path = middle(path, max(layout.width - len("containerd   ") - len(where), 20))
        lines.append(f"containerd   {path}{where}")
    d = report.docker
    state = f"running (pid {d.daemon_pid})" if d.daemon_running else "not running"
    lines.append(f"dockerd      {state}; SharedSize counted over {d.shared_size_rule}")
    fs = report.filesystem
    if fs is not None:
        lines.append(
            f"file system  {layout.size(fs.used)} used of {layout.size(fs.total)} ({fs.percent:.1f}%), "
            f"{layout.size(fs.free)} free"
        )
    if report.incomplete:
        lines.append("incomplete   figures marked * come from partial data (see Incomplete figures)")
    return [x for line in lines for x in _prose(line, layout, " " * 13)]


def _image_name(image: ImageReport, layout: Layout) -> str:
    if not image.tags:
        return "<none>"
    if layout.width is None:
        return ", ".join(image.tags)
    more = len(image.tags) - 1
    return image.tags[0] + (f" (+{more})" if more else "")


def _keep_suffix(text: str, width: int) -> str:
    """Shorten a name in the middle, keeping a ` (+N)` count at its end whole."""
    name, sep, count = text.rpartition(" (+")
    if not sep:
        return middle(text, width)
    suffix = sep + count
    return middle(name, max(width - len(suffix), 1)) + suffix


def render_images(report: Report, layout: Layout | None = None) -> list[str]:
    """Images as `docker images` lists them: one row per image, its first tag and how many more."""
    layout = layout or Layout()
    full = layout.width is None
    rows = [
        [
            _image_name(i, layout),
            i.id if full else i.id[7:19],
            layout.size(i.size),
            layout.size(i.shared_size),
            layout.size(i.unique_size),
            _star(layout.size(i.disk), any(f"images:{x.cache_id}" in report.incomplete for x in i.layers)),
            str(i.containers),
        ]
        for i in report.images
    ]
    columns = [
        Column("IMAGE", shrink=_keep_suffix, least=12),
        Column("ID"),
        Column("SIZE", True),
        Column("SHARED", True),
        Column("UNIQUE", True),
        Column("DISK", True),
        Column("CONTAINERS", True),
    ]
    title = f"Images ({len(rows)})" + ("*" if _flagged(report, "images") else "")
    if layout.quick:
        title += f"; DISK {NOT_MEASURED}"
    return _section(title, table(columns, rows, layout.width) if rows else [])


def container_image(c: ContainerReport, full: bool = False) -> str:
    """What `docker ps` shows in IMAGE: the reference, or the image ID once the reference moved."""
    shown = c.image or c.image_id or ""
    return shown[7:19] if shown.startswith("sha256:") and not full else shown


def render_containers(report: Report, layout: Layout | None = None) -> list[str]:
    """Containers with their writable layers and logs, the costliest first."""
    layout = layout or Layout()
    full = layout.width is None
    ordered = sorted(report.containers, key=lambda c: (-(c.rw_disk + c.log_disk), c.name))
    rows = [
        [
            c.name,
            c.id if full else c.id[:12],
            container_image(c, full),
            c.state,
            layout.size(c.rw_size),
            _star(layout.size(c.rw_disk), _flagged(report, f"containers:{c.id}")),
            layout.size(c.log_disk),
        ]
        for c in ordered
    ]
    columns = [
        Column("CONTAINER", shrink=middle, least=10),
        Column("ID"),
        Column("IMAGE", shrink=middle, least=12),
        Column("STATE"),
        Column("RW SIZE", True),
        Column("RW DISK", True),
        Column("LOGS", True),
    ]
    title = f"Containers ({len(rows)})" + ("*" if _flagged(report, "containers") else "")
    return _section(title, table(columns, rows, layout.width) if rows else [])


def render_volumes(report: Report, layout: Layout | None = None) -> list[str]:
    """Volumes and who mounts them."""
    layout = layout or Layout()
    rows = [
        [
            v.name[:12] + ELLIPSIS if v.anonymous and layout.width is not None else v.name,
            layout.size(v.size),
            layout.size(v.disk),
            ", ".join(v.containers) or "-",
        ]
        for v in report.volumes
    ]
    columns = [
        Column("VOLUME", shrink=middle, least=13),
        Column("SIZE", True),
        Column("DISK", True),
        Column("CONTAINERS", shrink=end, least=10),
    ]
    title = f"Volumes ({len(rows)})" + ("*" if _flagged(report, "volumes") else "")
    return _section(title, table(columns, rows, layout.width) if rows else [])


def render_build_cache(report: Report, layout: Layout | None = None) -> list[str]:
    """BuildKit's cache in one line."""
    layout = layout or Layout()
    bc = report.build_cache
    n = len(bc.records)
    line = (
        f"Build cache: {n} record{'s' if n != 1 else ''}, size {layout.size(bc.size)}, "
        f"disk {layout.size(bc.disk)}"
    )
    return ["", *_prose(line, layout)]


def render_orphans(report: Report, layout: Layout | None = None) -> list[str]:
    """Orphans and problems."""
    layout = layout or Layout()
    lines: list[str] = []
    rows = [
        [o.kind, _ids(o.path, layout), _star(layout.size(o.disk), _flagged(report, f"orphans:{o.path}")),
         o.cleaned_by, _ids(o.reason, layout)]
        for o in report.orphans
    ]  # fmt: skip
    columns = [Column("KIND"), Column("PATH", shrink=start, least=20), Column("DISK", True),
               Column("CLEANED BY", shrink=end, least=5), Column("REASON", shrink=end, least=16)]  # fmt: skip
    total = sum(o.disk for o in report.orphans)
    lines += _section(
        f"Orphans ({len(rows)}, {layout.size(total)})" + ("*" if _flagged(report, "orphans") else ""),
        table(columns, rows, layout.width) if rows else [],
    )
    prow = [[p.kind, _ids(p.path, layout), _ids(p.reason, layout)] for p in report.problems]
    pcols = [Column("KIND"), Column("PATH", shrink=start, least=20), Column("REASON", shrink=end, least=16)]
    lines += _section(f"Problems ({len(prow)})", table(pcols, prow, layout.width) if prow else [])
    return lines


def _incomplete(report: Report, layout: Layout) -> list[str]:
    names = list(report.incomplete)
    if layout.width is not None:
        whole = [n for n in names if ":" not in n]
        each = len(names) - len(whole)
        if each:
            whole.append(
                f"and {each} object{'s' if each != 1 else ''} (--no-trunc, or JSON incomplete[], names them)"
            )
        names = whole
    return _section("Incomplete figures", _prose(", ".join(names), layout))


def render_totals(report: Report, layout: Layout | None = None) -> list[str]:
    """Per-category allocated bytes, reclaimable, and the summary line."""
    layout = layout or Layout()
    t = report.totals
    cats = [
        ("images", t.images), *([("image content", t.image_content)] if t.image_content else []),
        ("containers", t.containers), ("logs", t.logs), ("volumes", t.volumes),
        ("build cache", t.build_cache), ("orphans", t.orphans), ("metadata", t.metadata), ("other", t.other),
    ]  # fmt: skip
    rows = [[name, _star(layout.measured(v), _flagged(report, name.replace(" ", "_")))] for name, v in cats]
    rows += [[f"  {o.name}", layout.size(o.disk)] for o in report.other]
    rows.append(["total (du -sx)", layout.measured(t.root_disk)])
    columns = [Column("CATEGORY", shrink=middle, least=16), Column("DISK", True)]
    lines = _section("Disk by category", table(columns, rows, layout.width))
    rrows = [
        [
            k.replace("_", " "),
            _star(layout.size(r.size), _flagged(report, f"reclaimable.{k}")),
            _star(layout.measured(r.disk), _flagged(report, f"reclaimable.{k}")),
        ]
        for k, r in report.reclaimable.items()
    ]
    rcols = [Column("WHAT"), Column("DOCKER SIZE", True), Column("DISK", True)]
    lines += _section("Reclaimable", table(rcols, rrows, layout.width))
    if report.incomplete:
        lines += _incomplete(report, layout)
    for note in report.notes:
        lines += _prose(f"note: {note}", layout)
    lines.append("")

    def fig(name: str, n: int | None) -> str:
        text = "not measured" if n is None and layout.quick else layout.size(n)
        return f"{name.replace('_', ' ')} {_star(text, _flagged(report, name))}"

    parts = [fig(name, getattr(t, name)) for name in CATEGORIES if name != "image_content" or t.image_content]
    reclaimed = "not measured" if t.reclaimable is None and layout.quick else layout.size(t.reclaimable)
    reclaim = _star(reclaimed, any(n.startswith("reclaimable.") for n in report.incomplete))
    summary = f"Total {layout.measured(t.root_disk)}: {', '.join(parts)}; reclaimable {reclaim}"
    lines += _prose(summary, layout)
    return lines


def render_table(report: Report, layout: Layout | None = None) -> str:
    """The full report."""
    layout = layout or Layout()
    lines = [
        *render_header(report, layout),
        *render_images(report, layout),
        *render_containers(report, layout),
        *render_volumes(report, layout),
        *render_build_cache(report, layout),
        *render_orphans(report, layout),
        *render_totals(report, layout),
    ]
    return "\n".join(_fit(line, layout) for line in lines) + "\n"


def render_orphans_table(report: Report, layout: Layout | None = None) -> str:
    """Orphans and problems only."""
    layout = layout or Layout()
    lines = [*render_header(report, layout), *render_orphans(report, layout)]
    return "\n".join(_fit(line, layout) for line in lines) + "\n"
