"""Find the containerd root that holds a Docker root's images (the containerd image store).

dockerd either runs its own containerd, with its data in `<data-root>/containerd/daemon`,
or (`--containerd=<socket>`, Docker's packages) uses a system containerd whose root is
`root` in its config (default /var/lib/containerd). In that order: `--containerd-root`
(or `containerd-root` in the config file); the managed dir when it holds data; the running
containerd that listens on the socket dockerd names (its `--root`, else its config's
`root`); a `containerd` dir beside the Docker root that holds containerd's metadata.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .locate import DAEMON_JSON, Daemon, _flag, _resolve, cmdline_of, processes

MANAGED = "containerd/daemon"
META_DB = "io.containerd.metadata.v1.bolt/meta.db"
DEFAULT_CONTAINERD_ROOT = Path("/var/lib/containerd")
DEFAULT_CONTAINERD_CONFIG = Path("/etc/containerd/config.toml")
DEFAULT_SOCKET = "/run/containerd/containerd.sock"


@dataclass(frozen=True)
class ContainerdRoot:
    """Where the containerd store's data is, and how that was decided."""

    path: Path | None
    """None: not found."""
    source: str
    managed: bool = False
    """The daemon-managed `containerd/daemon` under the Docker root."""


@dataclass(frozen=True)
class Containerd:
    """A running containerd: its pid, grpc socket and root."""

    pid: int
    address: str
    root: Path


def _config(path: Path) -> dict[str, object]:
    # Imported here: only a containerd-store root reads containerd's config.
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def containerd_of(cmdline: list[str]) -> tuple[str, Path]:
    """(grpc address, root) of a containerd command line: flags over its config (v2 and v3 alike)."""
    config_path = _flag(cmdline, ("--config", "-c"))
    doc = _config(Path(config_path) if config_path else DEFAULT_CONTAINERD_CONFIG)
    grpc = doc.get("grpc")
    address = _flag(cmdline, ("--address", "-a"))
    if address is None and isinstance(grpc, dict) and isinstance(grpc.get("address"), str):
        address = str(grpc["address"])
    root = _flag(cmdline, ("--root",))
    if root is None and isinstance(doc.get("root"), str) and doc["root"]:
        root = str(doc["root"])
    return address or DEFAULT_SOCKET, Path(root) if root else DEFAULT_CONTAINERD_ROOT


def running_containerds() -> list[Containerd]:
    """Every running containerd with its socket and root."""
    found: list[Containerd] = []
    for pid, cmdline in processes("containerd"):
        address, root = containerd_of(cmdline)
        found.append(Containerd(pid, address, root))
    return found


def _daemon_socket(daemon: Daemon | None) -> str | None:
    """The containerd socket a running dockerd uses: `--containerd`, daemon.json's `containerd`."""
    if daemon is None:
        return None
    cmdline = cmdline_of(daemon.pid)
    if cmdline is None:
        return None
    flag = _flag(cmdline, ("--containerd",))
    if flag:
        return flag
    config = _flag(cmdline, ("--config-file",))
    try:
        doc = json.loads(Path(config or DAEMON_JSON).read_text())
    except (OSError, ValueError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("containerd"), str) and doc["containerd"]:
        return str(doc["containerd"])
    return DEFAULT_SOCKET if os.path.exists(DEFAULT_SOCKET) else None


def _same(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def has_metadata(path: Path) -> bool:
    """Whether `path` holds containerd's metadata database."""
    return (path / META_DB).is_file()


def _managed_has_data(root: Path) -> bool:
    base = root / MANAGED
    if has_metadata(base):
        return True
    try:
        names = os.listdir(base)
    except OSError:
        return False
    for name in names:
        if name.startswith("io.containerd.snapshotter.v1."):
            try:
                if os.listdir(base / name / "snapshots"):
                    return True
            except OSError:
                continue
    return False


def find_containerd_root(
    root: Path, given: Path | None, given_source: str, daemon: Daemon | None
) -> ContainerdRoot:
    """Decide which containerd root holds the images of the Docker root `root` (its path resolved)."""
    found = _find(root, given, given_source, daemon)
    if found.path is None or found.managed:
        return found
    return ContainerdRoot(_resolve(found.path), found.source)


def _find(root: Path, given: Path | None, given_source: str, daemon: Daemon | None) -> ContainerdRoot:
    if given is not None:
        path = given.absolute()
        if _same(path, root / MANAGED):
            return ContainerdRoot(root / MANAGED, given_source, managed=True)
        return ContainerdRoot(path, given_source)
    if _managed_has_data(root):
        return ContainerdRoot(root / MANAGED, f"managed by dockerd ({MANAGED})", managed=True)
    socket = _daemon_socket(daemon)
    if socket is not None:
        for ctrd in running_containerds():
            if _same(ctrd.address, socket):
                return ContainerdRoot(ctrd.root, f"running containerd, pid {ctrd.pid} (socket {socket})")
    beside = root.parent / "containerd"
    if has_metadata(beside):
        return ContainerdRoot(beside, "beside the Docker root")
    return ContainerdRoot(None, "not found")


def daemon_json_of(root: Path, daemon: Daemon | None) -> Path | None:
    """The daemon.json that configures the dockerd of `root`: the running one's `--config-file`
    (or the default), else /etc/docker/daemon.json when `root` is the data root it names."""
    if daemon is not None:
        cmdline = cmdline_of(daemon.pid)
        if cmdline is None:
            return DAEMON_JSON
        config = _flag(cmdline, ("--config-file",))
        return Path(config) if config else DAEMON_JSON
    from .locate import DEFAULT_ROOT, config_data_root

    return DAEMON_JSON if _same(config_data_root() or DEFAULT_ROOT, root) else None
