"""Read `volumes/`: one dir per volume of the local driver, holding `_data` (and `opts.json`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..fsread import ReadError, list_dir
from ..model import Problem

METADATA_DB = "metadata.db"
# Written by the local driver for xfs project quotas; not a volume.
DRIVER_FILES = ("backingFsBlockDev", METADATA_DB)


@dataclass(frozen=True)
class VolumeRecord:
    """volumes/<name>/ as the local driver sees it."""

    name: str
    has_options: bool
    """Created with driver options (nfs, tmpfs, bind): Docker leaves its size out of df."""
    has_data: bool


@dataclass(frozen=True)
class VolumesScan:
    """Every volume dir, and the names of Docker's own files beside them."""

    volumes: dict[str, VolumeRecord]
    problems: tuple[Problem, ...]
    readable: bool


def read_volumes(base: Path, rel: str = "volumes") -> VolumesScan:
    """List the volumes under `base`, as Docker's local driver does: every dir is one."""
    try:
        entries = list_dir(base)
    except ReadError as e:
        return VolumesScan({}, (Problem("metadata_unreadable", rel, str(e)),), False)
    volumes: dict[str, VolumeRecord] = {}
    for entry in entries:
        if entry.name in DRIVER_FILES or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        volumes[entry.name] = VolumeRecord(
            name=entry.name,
            has_options=os.path.lexists(path / "opts.json"),
            has_data=os.path.isdir(path / "_data") and not os.path.islink(path / "_data"),
        )
    return VolumesScan(volumes, (), True)
