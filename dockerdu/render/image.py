"""`dockerdu image`: one table per image, or one JSON document (schema dockerdu.image/1)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from ..imageinfo import ImageDoc, ImageInfo, LayerInfo
from ..text import clean, display
from .table import Column, Layout, end, middle, short_ids, start
from .table import table as fitted_table

INSTRUCTION_WIDTH = 72
SHARED_NAMES = 3
"""Images named per layer in the table (all with --no-trunc)."""
MISSING = "<missing>"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return clean(value)
    return value


def render_image_json(doc: ImageDoc) -> str:
    """The document as JSON: `schema` and `tool` first, raw integer bytes."""
    body = _plain(doc)
    out = {"schema": body.pop("schema"), "tool": "dockerdu", **body}
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


def instruction(layer: LayerInfo) -> str:
    """The step that made a layer, shortened for a person: the shell and builder markers dropped."""
    text = layer.created_by
    if text is None:
        return MISSING
    text = text.strip()
    if not text:
        return f"({layer.comment})" if layer.comment else "-"
    text = text.removesuffix("# buildkit").rstrip()
    for shell in ("/bin/sh -c #(nop) ", "/bin/sh -c #(nop)"):
        if text.startswith(shell):
            return text[len(shell) :].strip()
    for shell in ("/bin/sh -c ", "RUN /bin/sh -c "):
        if text.startswith(shell):
            return "RUN " + text[len(shell) :]
    return text


def _short(text: str, width: int | None) -> str:
    text = display(text)
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _indented(
    indent: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], layout: Layout
) -> list[str]:
    width = None if layout.width is None else max(layout.width - len(indent), 20)
    return [indent + line for line in fitted_table(columns, rows, width)]


def _wrap(text: str, layout: Layout, indent: str = "  ") -> list[str]:
    """A line of prose at `indent`, wrapped to the width."""
    import textwrap

    text = display(text)
    if layout.width is None or len(indent) + len(text) <= layout.width:
        return [indent + text]
    return textwrap.wrap(text, layout.width, initial_indent=indent, subsequent_indent=indent + "  ")


def _pct(x: float | None) -> str:
    """A share, rounded down: 99.9996% shows as 99.9%, never as 100.0%."""
    return "-" if x is None else f"{math.floor(1000 * x) / 10:.1f}%"


def _holders(layer: LayerInfo, most: int | None) -> str:
    parts = list(layer.shared_with)
    if most is not None and len(parts) > most:
        parts[most:] = [f"+{len(parts) - most} more"]
    if layer.containers:
        n = len(layer.containers)
        parts.append(f"{n} container{'s' if n != 1 else ''}")
    if layer.build_cache:
        parts.append("build cache")
    return ", ".join(parts) or "-"


def _image(info: ImageInfo, layout: Layout) -> list[str]:
    no_trunc = layout.width is None
    size = layout.size
    width = None if no_trunc else INSTRUCTION_WIDTH
    if no_trunc or not info.tags:
        name = ", ".join(info.tags) or "<none>"
    else:
        name = info.tags[0] + (f" (+{len(info.tags) - 1})" if len(info.tags) > 1 else "")
    rest = f"  {info.id if no_trunc else info.id[7:19]}  created {info.created or '-'}"
    name = display(name)
    if layout.width is not None:
        name = middle(name, max(layout.width - len(rest), 12))
    lines = [name + rest]
    n = info.containers
    lines += _wrap(
        f"size {size(info.size)} (shared {size(info.shared_size)}, unique {size(info.unique_size)}), "
        f"disk {size(info.disk)}; {n} container{'s' if n != 1 else ''}",
        layout,
    )
    freed = [f"#{layer.index + 1}" for layer in info.layers if layer.freed]
    parents = len(info.removed_with)
    also = f"; also removes {parents} untagged parent image{'s' if parents != 1 else ''}" if parents else ""
    which = f" (layer{'s' if len(freed) != 1 else ''} {', '.join(freed)})" if freed else ""
    lines += _wrap(
        f"removing it alone frees {size(info.free_size)}, disk {size(info.free_disk)}{which}{also}", layout
    )
    rows = [
        [
            str(layer.index + 1),
            size(layer.size),
            size(layer.disk),
            "-" if layer.files is None else str(layer.files),
            "yes" if layer.freed else "",
            display(_holders(layer, None if no_trunc else SHARED_NAMES)),
            _short(instruction(layer), width),
        ]
        for layer in info.layers
    ]
    lines.append("")
    columns = [
        Column("#", True), Column("SIZE", True), Column("DISK", True), Column("FILES", True), Column("FREED"),
        Column("SHARED WITH", shrink=end, least=12), Column("CREATED BY", shrink=end, least=16),
    ]  # fmt: skip
    lines += _indented("  ", columns, rows, layout)
    w = info.wasted
    lines.append("")
    if w.size is None:
        lines.append("  wasted: unknown (some layer could not be read in full)")
    else:
        lines += _wrap(
            f"wasted {size(w.size)} in {w.files} file{'s' if w.files != 1 else ''} "
            f"(disk {size(w.disk)}) hidden by later layers; efficiency {_pct(w.efficiency)}",
            layout,
        )
    if w.offenders:
        orows = [
            [
                display(o.path + ("/" if o.kind == "dir" else "")),
                size(o.size),
                size(o.disk),
                str(o.files),
                str(o.written_by + 1),
                str(o.hidden_by + 1),
                o.how,
            ]
            for o in w.offenders
        ]
        ocols = [
            Column("PATH", shrink=start, least=16), Column("SIZE", True), Column("DISK", True),
            Column("FILES", True), Column("WRITTEN BY", True), Column("HIDDEN BY", True), Column("HOW"),
        ]  # fmt: skip
        lines += _indented("    ", ocols, orows, layout)
    for layer in info.layers:
        if not layer.top:
            continue
        lines.append("")
        lines.append(f"  largest paths in layer {layer.index + 1}:")
        trows = [
            [size(t.size), size(t.disk), display(t.path + ("/" if t.kind == "dir" else ""))]
            for t in layer.top
        ]
        tcols = [Column("SIZE", True), Column("DISK", True), Column("PATH", shrink=start, least=16)]
        lines += _indented("    ", tcols, trows, layout)
    for p in info.problems:
        problem = f"problem {p.kind}: {p.path}: {p.reason}"
        lines += _wrap(problem if no_trunc else short_ids(problem), layout)
    return lines


def render_image_table(doc: ImageDoc, no_trunc: bool = False, layout: Layout | None = None) -> str:
    """Every image in turn, separated by a blank line; `layout` (or `no_trunc`) sets the width."""
    layout = layout or Layout(None if no_trunc else 80, "binary")
    lines: list[str] = []
    for info in doc.images:
        if lines:
            lines.append("")
        lines += _image(info, layout)
    for note in doc.notes:
        lines += _wrap(f"note: {note}", layout, "")
    if layout.width is not None:
        lines = [end(line, layout.width) for line in lines]
    return "\n".join(lines) + "\n"
