"""The report as CSV: a header, then one row per object, raw integer bytes.

Columns (`COLUMNS`), empty where a figure does not apply to that kind of row or is null
in the JSON report:

- `image`: id, name = tags (space-separated), size, disk, shared_size, unique_size,
  unique_disk, containers;
- `container`: id, name, type = log driver, size = SizeRw, disk = writable and init
  dirs, log_size, log_disk, state, image;
- `volume`: id = name = the volume's name, size, disk, containers (how many), detail =
  `anonymous` for an anonymous volume;
- `build_cache`: id, name = description, type = record type, size;
- `orphan`: id = name = path, type = orphan kind, disk, detail = reason;
- `problem`: id = name = path, type = problem kind, detail = reason;
- `other`: id = name, disk;
- `total`: id = name = a `totals` figure (images … other, root_disk, reclaimable), disk;
- `reclaimable`: id = name = category, size, disk;
- `root`: id = name = the root's path, type = its role (`docker`, `containerd`), disk.

Text is valid UTF-8 (undecodable bytes of a name as `\\xNN`); the csv module quotes what
needs it, so names with commas, quotes or newlines read back whole.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator

from ..report import Report
from ..text import clean as valid_text

COLUMNS = (
    "kind", "id", "name", "type", "size", "disk", "shared_size", "unique_size", "unique_disk",
    "log_size", "log_disk", "state", "image", "containers", "detail",
)  # fmt: skip

Row = dict[str, str | int | None]


def _rows(report: Report) -> Iterator[Row]:
    for i in report.images:
        yield {
            "kind": "image", "id": i.id, "name": " ".join(i.tags), "size": i.size, "disk": i.disk,
            "shared_size": i.shared_size, "unique_size": i.unique_size, "unique_disk": i.unique_disk,
            "containers": i.containers,
        }  # fmt: skip
    for c in report.containers:
        yield {
            "kind": "container", "id": c.id, "name": c.name, "type": c.log_driver, "size": c.rw_size,
            "disk": c.rw_disk, "log_size": c.log_size, "log_disk": c.log_disk, "state": c.state,
            "image": c.image or c.image_id,
        }  # fmt: skip
    for v in report.volumes:
        yield {
            "kind": "volume", "id": v.name, "name": v.name, "size": v.size, "disk": v.disk,
            "containers": len(v.containers), "detail": "anonymous" if v.anonymous else None,
        }  # fmt: skip
    for b in report.build_cache.records:
        yield {
            "kind": "build_cache",
            "id": b.id,
            "name": b.description,
            "type": b.record_type,
            "size": b.size,
        }
    for o in report.orphans:
        yield {
            "kind": "orphan",
            "id": o.path,
            "name": o.path,
            "type": o.kind,
            "disk": o.disk,
            "detail": o.reason,
        }
    for p in report.problems:
        yield {"kind": "problem", "id": p.path, "name": p.path, "type": p.kind, "detail": p.reason}
    for x in report.other:
        yield {"kind": "other", "id": x.name, "name": x.name, "disk": x.disk}
    for name, value in dataclasses.asdict(report.totals).items():
        yield {"kind": "total", "id": name, "name": name, "disk": value}
    for name, r in report.reclaimable.items():
        yield {"kind": "reclaimable", "id": name, "name": name, "size": r.size, "disk": r.disk}
    for root in report.roots:
        yield {"kind": "root", "id": root.path, "name": root.path, "type": root.role, "disk": root.disk}


def _cell(value: str | int | None) -> str | int:
    if value is None:
        return ""
    return valid_text(value) if isinstance(value, str) else value


def render_csv(report: Report, kinds: frozenset[str] | None = None) -> str:
    """The report as CSV text (header first, `\\n` line ends); only the rows of `kinds` if given."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in _rows(report):
        if kinds is not None and row["kind"] not in kinds:
            continue
        writer.writerow([_cell(row.get(col)) for col in COLUMNS])
    return buf.getvalue()
