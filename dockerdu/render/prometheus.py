"""The report in Prometheus' text exposition format, for node_exporter's textfile collector.

Every metric is a gauge named `dockerdu_…`, byte figures end in `_bytes` and equal the
JSON report's to the byte. Figures that are null in the JSON report have no sample. No
sample carries a timestamp (the textfile collector refuses them). Label values are valid
UTF-8 with backslash, double quote and line feed escaped, so any image, container or
volume name gives a valid file; two objects whose names would read the same keep only
the first sample, so the file never holds a duplicate series.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..growth import Growth
from ..model import Category
from ..report import ImageReport, Report
from ..text import clean as valid_text

SCHEMA = "dockerdu.metrics/1"
"""The metric names and labels (README, Prometheus): any rename or change of meaning bumps it."""

Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, float | int | None]


def escape_label(value: str) -> str:
    """A label value as the exposition format writes it between double quotes."""
    return valid_text(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return str(value) if isinstance(value, int) else repr(float(value))


@dataclass
class _Exposition:
    lines: list[str] = field(default_factory=list)

    def gauge(self, name: str, help_text: str, samples: Iterable[Sample]) -> None:
        body: list[str] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for labels, value in samples:
            if value is None:
                continue
            escaped = tuple((k, escape_label(v)) for k, v in labels)
            if escaped in seen:
                continue
            seen.add(escaped)
            text = ",".join(f'{k}="{v}"' for k, v in escaped)
            body.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")
        if body:
            self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *body]

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def _timestamp(rfc3339: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(rfc3339).timestamp()
    except ValueError:
        return None


def _one(value: float | int | None) -> list[Sample]:
    return [((), value)]


def _image(i: ImageReport) -> Labels:
    return (("image", i.tags[0] if i.tags else "<none>"), ("image_id", i.id))


def render_prometheus(report: Report) -> str:
    """The report as gauges: totals, reclaimable, file system, and one series per object."""
    out = _Exposition()
    t = report.totals
    d = report.docker
    out.gauge(
        "dockerdu_info",
        "The Docker root dockerdu scanned, always 1.",
        [((("root", report.root), ("root_source", report.root_source), ("store", report.store),
           ("shared_size_rule", d.shared_size_rule), ("version", report.version),
           ("driver", report.driver), ("schema", SCHEMA)), 1)],
    )  # fmt: skip
    out.gauge(
        "dockerdu_report_timestamp_seconds",
        "When the report was made (Unix time).",
        _one(_timestamp(report.generated_at)),
    )
    out.gauge(
        "dockerdu_daemon_running", "1 if a dockerd was running on the root.", _one(int(d.daemon_running))
    )
    out.gauge("dockerdu_root_disk_bytes", "Allocated bytes under the root, as du -sx -B1.", _one(t.root_disk))
    out.gauge(
        "dockerdu_root_path_disk_bytes",
        "Allocated bytes under each root walked (Docker's, and a system containerd's), as du -sx -B1 of it.",
        [((("path", r.path), ("role", r.role)), r.disk) for r in report.roots if r.disk is not None],
    )
    out.gauge(
        "dockerdu_disk_bytes",
        "Allocated bytes per category; the categories add up to dockerdu_root_disk_bytes.",
        [((("category", c),), getattr(t, c)) for c in Category],
    )
    out.gauge(
        "dockerdu_reclaimable_bytes", "Allocated bytes that could go, all categories.", _one(t.reclaimable)
    )
    out.gauge(
        "dockerdu_reclaimable_disk_bytes",
        "Allocated bytes that could go, per category.",
        [((("category", k),), r.disk) for k, r in report.reclaimable.items()],
    )
    out.gauge(
        "dockerdu_reclaimable_size_bytes",
        "What could go as Docker figures it, per category.",
        [((("category", k),), r.size) for k, r in report.reclaimable.items()],
    )
    out.gauge("dockerdu_layers_size_bytes", "Docker's LayersSize (docker system df).", _one(d.layers_size))
    fs = report.filesystem
    if fs is not None:
        out.gauge(
            "dockerdu_filesystem_size_bytes", "Size of the file system holding the root.", _one(fs.total)
        )
        out.gauge("dockerdu_filesystem_used_bytes", "Used bytes of that file system.", _one(fs.used))
        out.gauge("dockerdu_filesystem_free_bytes", "Free bytes of that file system.", _one(fs.free))
        out.gauge(
            "dockerdu_filesystem_used_ratio", "Used fraction of that file system.", _one(fs.percent / 100)
        )

    imgs = report.images
    out.gauge("dockerdu_image_size_bytes", "Docker's image Size.", [(_image(i), i.size) for i in imgs])
    out.gauge(
        "dockerdu_image_shared_size_bytes", "Docker's SharedSize.", [(_image(i), i.shared_size) for i in imgs]
    )
    out.gauge(
        "dockerdu_image_unique_size_bytes",
        "Size less SharedSize.",
        [(_image(i), i.unique_size) for i in imgs],
    )
    out.gauge(
        "dockerdu_image_disk_bytes",
        "Allocated bytes of the image's layers.",
        [(_image(i), i.disk) for i in imgs],
    )
    out.gauge(
        "dockerdu_image_unique_disk_bytes",
        "Allocated bytes of the layers no other image or container uses.",
        [(_image(i), i.unique_disk) for i in imgs],
    )
    out.gauge(
        "dockerdu_image_containers", "Containers of the image.", [(_image(i), i.containers) for i in imgs]
    )
    cons = [((("container", c.name), ("container_id", c.id), ("image", c.image or c.image_id or "")), c)
            for c in report.containers]  # fmt: skip
    out.gauge("dockerdu_container_rw_size_bytes", "Docker's SizeRw.", [(k, c.rw_size) for k, c in cons])
    out.gauge(
        "dockerdu_container_rw_disk_bytes",
        "Allocated bytes of the writable and init layers.",
        [(k, c.rw_disk) for k, c in cons],
    )
    out.gauge(
        "dockerdu_container_log_size_bytes", "Apparent size of the logs.", [(k, c.log_size) for k, c in cons]
    )
    out.gauge(
        "dockerdu_container_log_disk_bytes",
        "Allocated bytes of the logs.",
        [(k, c.log_disk) for k, c in cons],
    )
    vols = [((("volume", v.name),), v) for v in report.volumes]
    out.gauge("dockerdu_volume_size_bytes", "Docker's volume Size.", [(k, v.size) for k, v in vols])
    out.gauge("dockerdu_volume_disk_bytes", "Allocated bytes of the volume.", [(k, v.disk) for k, v in vols])
    bc = report.build_cache
    out.gauge("dockerdu_build_cache_disk_bytes", "Allocated bytes of BuildKit's cache.", _one(bc.disk))
    out.gauge("dockerdu_build_cache_size_bytes", "Sum of the build cache records' sizes.", _one(bc.size))
    out.gauge("dockerdu_build_cache_records", "BuildKit cache records.", _one(len(bc.records)))
    orphan_disk: dict[str, int] = {}
    orphan_count: dict[str, int] = {}
    for o in report.orphans:
        orphan_disk[o.kind] = orphan_disk.get(o.kind, 0) + o.disk
        orphan_count[o.kind] = orphan_count.get(o.kind, 0) + 1
    kinds = sorted(orphan_disk)
    out.gauge("dockerdu_orphans", "Orphans per kind.", [((("kind", k),), orphan_count[k]) for k in kinds])
    out.gauge(
        "dockerdu_orphans_disk_bytes",
        "Allocated bytes of the orphans, per kind.",
        [((("kind", k),), orphan_disk[k]) for k in kinds],
    )
    problems: dict[str, int] = {}
    for p in report.problems:
        problems[p.kind] = problems.get(p.kind, 0) + 1
    out.gauge(
        "dockerdu_problems", "Problems per kind.", [((("kind", k),), n) for k, n in sorted(problems.items())]
    )
    out.gauge(
        "dockerdu_other_disk_bytes",
        "Allocated bytes in the `other` category, per entry.",
        [((("name", o.name),), o.disk) for o in report.other],
    )
    out.gauge(
        "dockerdu_incomplete_figures", "Figures computed from partial data.", _one(len(report.incomplete))
    )
    return out.text()


def render_growth_prometheus(growth: Growth) -> str:
    """The growth since the previous audit as gauges, to follow `render_prometheus`."""
    out = _Exposition()
    out.gauge(
        "dockerdu_growth_bytes",
        "Change of each totals figure since the previous audit.",
        [((("category", name),), after - before) for name, before, after in growth.categories],
    )
    out.gauge("dockerdu_growth_interval_seconds", "Time since the previous audit.", _one(growth.seconds))
    return out.text()
