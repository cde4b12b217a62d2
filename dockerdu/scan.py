"""locate -> read -> index -> measure -> account: one Report for one root."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import __version__
from .account import account
from .index import Index, Scans, build_index
from .locate import Location, graph_drivers
from .measure import Progress, measure
from .model import Problem
from .readers.buildkit import read_build_cache
from .readers.containers import read_containers
from .readers.imagedb import read_imagedb, read_references
from .readers.layerdb import read_layerdb
from .readers.overlay2 import read_overlay2
from .readers.volumes import read_volumes
from .report import FileSystem, Report


@dataclass(frozen=True)
class Options:
    """How to scan."""

    driver: str = "overlay2"
    progress: Progress | None = None


def read_root(root: Path, driver: str = "overlay2") -> Scans:
    """Run every reader over `root`."""
    store = root / "image" / driver
    rel = f"image/{driver}"
    references, ref_problems = read_references(store, rel)
    try:
        top = tuple(sorted(os.listdir(root)))
    except OSError:
        top = ()
    return Scans(
        driver=driver,
        references=references,
        imagedb=read_imagedb(store, rel),
        layerdb=read_layerdb(store, rel),
        overlay2=read_overlay2(root / driver, driver),
        containers=read_containers(root / "containers"),
        volumes=read_volumes(root / "volumes"),
        buildkit=read_build_cache(root / "buildkit"),
        engine_id=os.path.lexists(root / "engine-id"),
        top_entries=top,
        image_drivers=tuple(graph_drivers(root)),
        problems=tuple(ref_problems),
    )


def all_problems(scans: Scans) -> list[Problem]:
    """The readers' problems, in one list."""
    return [
        *scans.problems,
        *scans.imagedb.problems,
        *scans.layerdb.problems,
        *scans.overlay2.problems,
        *scans.containers.problems,
        *scans.volumes.problems,
        *scans.buildkit.problems,
    ]


def index_root(location: Location, options: Options, now: float) -> Index:
    """Read and join a root's records."""
    scans = read_root(location.root, options.driver)
    index = build_index(scans, now=now, daemon_running=location.daemon is not None)
    index.problems[:0] = all_problems(scans)
    if location.daemon is not None:
        index.notes.append(
            f"dockerd (pid {location.daemon.pid}) was running during the scan: "
            "anything changed in the last hour and referenced by nothing is reported as in flight"
        )
    return index


def filesystem_of(root: Path) -> FileSystem | None:
    """Size and fullness of the file system holding `root`."""
    try:
        u = psutil.disk_usage(str(root))
    except OSError:
        return None
    return FileSystem(total=u.total, used=u.used, free=u.free, percent=u.percent)


def build_report(location: Location, options: Options | None = None) -> Report:
    """Scan `location.root` and account for every byte under it."""
    options = options or Options()
    now = time.time()
    index = index_root(location, options, now)
    m = measure(str(location.root), index.marks, index.parents(), options.progress)
    return account(
        index,
        m,
        root=str(location.root),
        root_source=location.source,
        generated_at=dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        daemon_pid=location.daemon.pid if location.daemon else None,
        engine_id=os.path.lexists(location.root / "engine-id"),
        filesystem=filesystem_of(location.root),
    )
