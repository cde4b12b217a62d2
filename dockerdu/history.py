"""The audit history: one compact JSON line per audit, appended atomically, kept bounded.

Each line (schema `dockerdu.history/1`) holds the time of the report, the root, its
totals, the file system's figures, how many images, containers, volumes and orphans
there were, and the largest of each by disk (`top`). The file is rewritten whole on each
append (a temp file in the same directory, then `os.replace`), under an exclusive
`flock` on `<history>.lock` that also keeps two audits from overlapping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import Busy as Busy
from .errors import HistoryError as HistoryError
from .report import Report
from .text import clean as valid_text

SCHEMA = "dockerdu.history/1"
SYSTEM_HISTORY = Path("/var/lib/dockerdu/history.jsonl")
DEFAULT_KEEP = 400
TOP = 20
"""How many of the largest images, containers, volumes and orphans a line keeps."""
KINDS = ("images", "containers", "volumes", "orphans")


def default_path() -> Path:
    """`/var/lib/dockerdu/history.jsonl` as root, else `$XDG_DATA_HOME/dockerdu/history.jsonl`."""
    if os.geteuid() == 0:
        return SYSTEM_HISTORY
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "dockerdu" / "history.jsonl"


@dataclasses.dataclass(frozen=True)
class Item:
    """One image, container, volume or orphan and its disk.

    `id`: image or container ID, volume name, orphan path; `name`: first tag (or short
    ID), container name, volume name, orphan kind. A container's disk is its writable
    and init dirs plus its logs.
    """

    id: str
    name: str
    disk: int


def consumers(report: Report) -> dict[str, list[Item]]:
    """Every image, container, volume and orphan of `report`, largest disk first."""
    found = {
        "images": [Item(i.id, i.tags[0] if i.tags else i.id[7:19], i.disk or 0) for i in report.images],
        "containers": [Item(c.id, c.name, c.rw_disk + c.log_disk) for c in report.containers],
        "volumes": [Item(v.name, v.name, v.disk) for v in report.volumes],
        "orphans": [Item(o.path, o.kind, o.disk) for o in report.orphans],
    }
    return {
        kind: sorted(
            (Item(valid_text(i.id), valid_text(i.name), i.disk) for i in items), key=lambda i: (-i.disk, i.id)
        )
        for kind, items in found.items()
    }


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One line of the history."""

    at: str
    """The report's `generated_at` (RFC 3339)."""
    root: str
    totals: dict[str, int | None]
    """`totals` of the report; None for a figure not measured."""
    filesystem: dict[str, float] | None
    counts: dict[str, int]
    top: dict[str, tuple[Item, ...]]

    @classmethod
    def of(cls, report: Report, top: int = TOP) -> Snapshot:
        """The line an audit of `report` appends."""
        items = consumers(report)
        fs = report.filesystem
        return cls(
            at=report.generated_at,
            root=valid_text(report.root),
            totals=dataclasses.asdict(report.totals),
            filesystem=None if fs is None else dataclasses.asdict(fs),
            counts={kind: len(items[kind]) for kind in KINDS},
            top={kind: tuple(items[kind][:top]) for kind in KINDS},
        )

    def to_line(self) -> str:
        """Compact JSON, one line, no newline."""
        doc = {
            "schema": SCHEMA,
            "at": self.at,
            "root": self.root,
            "totals": self.totals,
            "filesystem": self.filesystem,
            "counts": self.counts,
            "top": {
                k: [{"id": i.id, "name": i.name, "disk": i.disk} for i in v] for k, v in self.top.items()
            },
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, doc: Any) -> Snapshot | None:
        """A line read back, or None when it is not one dockerdu wrote."""
        try:
            if doc["schema"] != SCHEMA:
                return None
            top = {
                kind: tuple(Item(str(i["id"]), str(i["name"]), _int(i["disk"])) for i in doc["top"][kind])
                for kind in KINDS
            }
            fs = doc["filesystem"]
            return cls(
                at=str(doc["at"]),
                root=str(doc["root"]),
                totals={str(k): None if v is None else _int(v) for k, v in doc["totals"].items()},
                filesystem=None if fs is None else {str(k): float(v) for k, v in fs.items()},
                counts={kind: _int(doc["counts"][kind]) for kind in KINDS},
                top=top,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    return value


def _lines(path: Path) -> list[str]:
    """The lines of the history that are JSON objects; a missing file has none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise HistoryError(f"cannot read the history {path}: {e.strerror}") from None
    return [line for line in text.splitlines() if _is_object(line)]


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def entries(path: Path) -> list[Snapshot]:
    """Every readable line of the history, oldest first."""
    found = (Snapshot.from_json(json.loads(line)) for line in _lines(path))
    return [s for s in found if s is not None]


def last(path: Path, root: str) -> Snapshot | None:
    """The latest line about `root`, if any."""
    root = valid_text(root)
    return next((s for s in reversed(entries(path)) if s.root == root), None)


def append(path: Path, snapshot: Snapshot, keep: int = DEFAULT_KEEP) -> None:
    """Add `snapshot` as the last line, keeping only the last `keep` lines; atomic."""
    lines = [*_lines(path), snapshot.to_line()][-keep:]
    replace_file(path, "".join(line + "\n" for line in lines).encode())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HistoryError(f"cannot create {directory}: {e.strerror}") from None


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temp file in the same directory, then rename.

    A reader (node_exporter's textfile collector, the next audit) sees the old file or
    the new one, never a part. A new file gets the usual mode (0666 less the umask), an
    existing one keeps its mode.
    """
    _make_dir(path.parent)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise HistoryError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise HistoryError(f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def lock_path(history: Path) -> Path:
    """The lock file of a history: `<history>.lock`, beside it."""
    return history.with_name(history.name + ".lock")


@contextlib.contextmanager
def locked(history: Path) -> Iterator[Path]:
    """Hold the exclusive lock of `history` for the block; raise Busy if another process holds it."""
    lock = lock_path(history)
    _make_dir(lock.parent)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise HistoryError(f"cannot open the lock file {lock}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise HistoryError(f"cannot lock {lock}: {e.strerror}") from None
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            by = f" by pid {holder}" if holder.isdigit() else ""
            raise Busy(
                f"another dockerdu audit is running (lock {lock} is held{by}); not starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield lock
    finally:
        os.close(fd)
