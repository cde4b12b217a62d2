"""Find the Docker data root, tell whether a daemon is running on it, and which store it holds."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

DEFAULT_ROOT = Path("/var/lib/docker")
DAEMON_JSON = Path("/etc/docker/daemon.json")
# Entries of which at least one exists in every data root Docker has started on.
ROOT_MARKERS = ("image", "containers", "volumes", "overlay2", "engine-id", "buildkit", "containerd")


class RootError(Exception):
    """The chosen path is not a readable Docker root; the message is one sentence."""


@dataclass(frozen=True)
class Daemon:
    """A running dockerd and the data root it uses."""

    pid: int
    root: Path


@dataclass(frozen=True)
class Location:
    """The data root to scan and how it was chosen."""

    root: Path
    source: str
    daemon: Daemon | None
    """The running dockerd using this root, if any."""


def running_daemons() -> list[Daemon]:
    """Every running dockerd with the data root it was started with."""
    found: list[Daemon] = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            name = proc.info["name"] or ""
        except (psutil.Error, KeyError):
            continue
        if name != "dockerd" and not (cmdline and os.path.basename(cmdline[0]) == "dockerd"):
            continue
        found.append(Daemon(proc.info["pid"], _daemon_root(cmdline)))
    return sorted(found, key=lambda d: d.pid)


def _flag(cmdline: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(cmdline):
        for name in names:
            if arg == name and i + 1 < len(cmdline):
                return cmdline[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1 :]
    return None


def _daemon_root(cmdline: list[str]) -> Path:
    flag = _flag(cmdline, ("--data-root", "--graph", "-g"))
    if flag:
        return Path(flag)
    config = _flag(cmdline, ("--config-file",))
    from_config = config_data_root(Path(config) if config else DAEMON_JSON)
    return from_config or DEFAULT_ROOT


def config_data_root(path: Path = DAEMON_JSON) -> Path | None:
    """`data-root` (or the legacy `graph`) from a daemon.json, if it sets one."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    value = doc.get("data-root") or doc.get("graph")
    return Path(value) if isinstance(value, str) and value else None


def locate(root: Path | None) -> Location:
    """Decide which root to scan: --root, a running dockerd, daemon.json, then the default."""
    daemons = running_daemons()
    if root is not None:
        location = Location(root, "--root", None)
    elif daemons:
        first = daemons[0]
        many = f" (one of {len(daemons)} running)" if len(daemons) > 1 else ""
        location = Location(first.root, f"running dockerd, pid {first.pid}{many}", None)
    elif (configured := config_data_root()) is not None:
        location = Location(configured, str(DAEMON_JSON), None)
    else:
        location = Location(DEFAULT_ROOT, "default", None)
    resolved = _resolve(location.root)
    daemon = next((d for d in daemons if _resolve(d.root) == resolved), None)
    return Location(resolved, location.source, daemon)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def check_root(root: Path) -> None:
    """Raise RootError unless `root` is a directory we can read that Docker has used."""
    try:
        names = set(os.listdir(root))
    except FileNotFoundError:
        raise RootError(f"{root} does not exist; pass --root with Docker's data root.") from None
    except NotADirectoryError:
        raise RootError(f"{root} is not a directory; pass --root with Docker's data root.") from None
    except PermissionError:
        raise RootError(
            f"{root} cannot be read by this user; run dockerdu as root (e.g. with sudo)."
        ) from None
    except OSError as e:
        raise RootError(f"{root} cannot be read: {e.strerror}.") from None
    if not names & set(ROOT_MARKERS):
        raise RootError(
            f"{root} is not a Docker data root (none of image/, containers/, volumes/, "
            "overlay2/ is there); pass --root with the right path."
        )
    markers = sorted(names & set(ROOT_MARKERS))
    if not any(_listable(root / name) for name in markers):
        raise RootError(
            f"{root}: none of {', '.join(markers)} can be read by this user; "
            "run dockerdu as root (e.g. with sudo)."
        )


def _listable(path: Path) -> bool:
    """A marker that is a file (engine-id) or a dir this user may list: something to report on."""
    try:
        if not path.is_dir() or path.is_symlink():
            return True
        os.listdir(path)
    except OSError:
        return False
    return True


def graph_drivers(root: Path) -> list[str]:
    """The graphdriver names that have an image/<driver> tree under `root`."""
    try:
        return sorted(e.name for e in os.scandir(root / "image") if e.is_dir(follow_symlinks=False))
    except OSError:
        return []
