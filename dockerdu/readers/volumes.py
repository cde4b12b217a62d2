"""Read `volumes/`: one dir per volume of the local driver, holding `_data` (and `opts.json`)."""

from __future__ import annotations

import json
import os
from dataclasses import field
from pathlib import Path
from typing import Any

from ..bbolt import BoltError, Bucket, open_db
from ..fsread import ReadError, list_dir
from ..ids import HEX64
from ..model import Problem, ProblemKind
from ..records import record

METADATA_DB = "metadata.db"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
# dockerd opens metadata.db with bbolt when it starts; if that fails it exits.
# Seen on 20.10: "invalid database" for bad meta pages; a truncated file crashes it (SIGBUS).
NO_START = (
    "dockerd fails or crashes opening its volume store and will not start "
    "(error while opening volume store metadata database)"
)
# Written by the local driver for xfs project quotas; not a volume.
DRIVER_FILES = ("backingFsBlockDev", METADATA_DB)


@record
class VolumeRecord:
    """volumes/<name>/ as the local driver sees it."""

    name: str
    has_options: bool
    """Created with driver options (nfs, tmpfs, bind): Docker leaves its size out of df."""
    has_data: bool
    data_link: str | None = None
    """Where `_data` points when it is a symlink (what Docker would mount instead); else None."""
    driver: str = ""
    """The driver `metadata.db` records for it ("" when it records none)."""
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    """Labels and driver options as `metadata.db` records them."""

    @property
    def anonymous(self) -> bool:
        """Docker (>= 23) labels an anonymous volume; older ones name it with 64 hex digits."""
        return ANONYMOUS_LABEL in self.labels or bool(HEX64.fullmatch(self.name))


@record
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
        return VolumesScan({}, (Problem(ProblemKind.metadata_unreadable, rel, str(e)),), False)
    meta, problems = read_volume_db(base / METADATA_DB, f"{rel}/{METADATA_DB}")
    volumes: dict[str, VolumeRecord] = {}
    for entry in entries:
        if entry.name in DRIVER_FILES or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        recorded = meta.get(entry.name, {})
        volumes[entry.name] = VolumeRecord(
            name=entry.name,
            has_options=os.path.lexists(path / "opts.json"),
            has_data=os.path.isdir(path / "_data") and not os.path.islink(path / "_data"),
            data_link=_readlink(path / "_data"),
            driver=_string(recorded.get("Driver")),
            labels=_strings(recorded.get("Labels")),
            options=_strings(recorded.get("Options")),
        )
    return VolumesScan(volumes, tuple(problems), True)


def read_volume_db(path: Path, rel: str) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """`metadata.db`'s `volumes` bucket: volume name -> {Name, Driver, Labels, Options}.

    A missing db is empty (dockerd creates it); one bbolt cannot open stops dockerd.
    """
    try:
        try:
            db = open_db(path)
        except BoltError:  # a copy torn by a concurrent commit reads fine the next time
            db = open_db(path)
    except FileNotFoundError:
        return {}, []
    except BoltError as e:
        if str(e) == "is a symlink":
            why = "is a symlink (not followed): dockerd would open what it points to as its volume store"
            return {}, [Problem(ProblemKind.metadata_unreadable, rel, why)]
        if str(e) == "file too short" and _empty(path):
            # bbolt initializes an empty file: dockerd starts, with no volume's labels or options.
            why = "empty: dockerd makes a new one, without the labels and options of any volume"
            return {}, [Problem(ProblemKind.metadata_unreadable, rel, why)]
        return {}, [Problem(ProblemKind.metadata_unreadable, rel, f"{e}: {NO_START}")]
    except OSError as e:
        return {}, [Problem(ProblemKind.metadata_unreadable, rel, f"{e.strerror or e}: {NO_START}")]
    out: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    try:
        bucket = db.bucket(b"volumes")
        for key, raw in bucket.items() if bucket is not None else ():
            name = key.decode(errors="replace")
            if isinstance(raw, Bucket) or not raw:
                continue  # dockerd skips empty values too
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError):
                doc = None
            if not isinstance(doc, dict):
                problems.append(
                    Problem(
                        ProblemKind.metadata_unreadable,
                        rel,
                        f"volume {name[:80]!r}: its record is not a JSON object; dockerd logs an error "
                        "and forgets its labels and options",
                    )
                )
                continue
            out[name] = doc
    except BoltError as e:
        return {}, [Problem(ProblemKind.metadata_unreadable, rel, f"{e}: {NO_START}")]
    return out, problems


def _empty(path: Path) -> bool:
    try:
        return os.lstat(path).st_size == 0
    except OSError:
        return False


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
