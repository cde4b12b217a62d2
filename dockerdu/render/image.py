"""`dockerdu image`: one table per image, or one JSON document (schema dockerdu.image/1)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from ..imageinfo import ImageDoc, ImageInfo, LayerInfo
from ..text import clean, display
from ..units import human

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


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _pct(x: float | None) -> str:
    """A share, rounded down: 99.9996% shows as 99.9%, never as 100.0%."""
    return "-" if x is None else f"{math.floor(1000 * x) / 10:.1f}%"


def _holders(layer: LayerInfo, most: int | None) -> str:
    parts = list(layer.shared_with)
    if most is not None and len(parts) > most:
        parts[most:] = [f"+{len(parts) - most} images"]
    if layer.containers:
        n = len(layer.containers)
        parts.append(f"{n} container{'s' if n != 1 else ''}")
    if layer.build_cache:
        parts.append("build cache")
    return ", ".join(parts) or "-"


def _image(info: ImageInfo, no_trunc: bool) -> list[str]:
    width = None if no_trunc else INSTRUCTION_WIDTH
    name = ", ".join(info.tags) or "<none>"
    lines = [f"{display(name)}  {info.id if no_trunc else info.id[7:19]}  created {info.created or '-'}"]
    n = info.containers
    lines.append(
        f"  size {human(info.size)} (shared {human(info.shared_size)}, unique {human(info.unique_size)}), "
        f"disk {human(info.disk)}; {n} container{'s' if n != 1 else ''}"
    )
    freed = [layer.index + 1 for layer in info.layers if layer.freed]
    parents = len(info.removed_with)
    also = f"; also removes {parents} untagged parent image{'s' if parents != 1 else ''}" if parents else ""
    which = f" (layers {', '.join(map(str, freed))})" if freed else ""
    lines.append(
        f"  removing it alone frees {human(info.free_size)}, disk {human(info.free_disk)}{which}{also}"
    )
    rows = [
        [
            str(layer.index + 1),
            human(layer.size),
            human(layer.disk),
            "-" if layer.files is None else str(layer.files),
            "yes" if layer.freed else "",
            display(_holders(layer, None if no_trunc else SHARED_NAMES)),
            _short(instruction(layer), width),
        ]
        for layer in info.layers
    ]
    lines.append("")
    headers = ["#", "SIZE", "DISK", "FILES", "FREED", "SHARED WITH", "CREATED BY"]
    lines += ["  " + x for x in _table(headers, rows, {0, 1, 2, 3})]
    w = info.wasted
    lines.append("")
    if w.size is None:
        lines.append("  wasted: unknown (some layer could not be read in full)")
    else:
        lines.append(
            f"  wasted {human(w.size)} in {w.files} file{'s' if w.files != 1 else ''} "
            f"(disk {human(w.disk)}) hidden by later layers; efficiency {_pct(w.efficiency)}"
        )
    if w.offenders:
        orows = [
            [
                display(o.path + ("/" if o.kind == "dir" else "")),
                human(o.size),
                human(o.disk),
                str(o.files),
                str(o.written_by + 1),
                str(o.hidden_by + 1),
                o.how,
            ]
            for o in w.offenders
        ]
        lines += [
            "    " + x
            for x in _table(
                ["PATH", "SIZE", "DISK", "FILES", "WRITTEN BY", "HIDDEN BY", "HOW"], orows, {1, 2, 3, 4, 5}
            )
        ]
    for layer in info.layers:
        if not layer.top:
            continue
        lines.append("")
        lines.append(f"  largest paths in layer {layer.index + 1}:")
        trows = [
            [human(t.size), human(t.disk), display(t.path + ("/" if t.kind == "dir" else ""))]
            for t in layer.top
        ]
        lines += ["    " + x for x in _table(["SIZE", "DISK", "PATH"], trows, {0, 1})]
    for p in info.problems:
        lines.append(f"  problem {p.kind}: {display(p.path)}: {display(p.reason)}")
    return lines


def render_image_table(doc: ImageDoc, no_trunc: bool = False) -> str:
    """Every image in turn, separated by a blank line."""
    lines: list[str] = []
    for info in doc.images:
        if lines:
            lines.append("")
        lines += _image(info, no_trunc)
    for note in doc.notes:
        lines.append(f"note: {display(note)}")
    return "\n".join(lines) + "\n"
