"""Find the Docker data root, tell whether a daemon is running on it, and which store it holds."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

from .errors import RootError as RootError
from .fsread import ReadError, read_json
from .records import record

DEFAULT_ROOT = Path("/var/lib/docker")
DAEMON_JSON = Path("/etc/docker/daemon.json")
# Entries of which at least one exists in every data root Docker has started on, and
# which only Docker makes: `buildkit/` or `containerd/` alone (e.g. /etc/containerd) are not.
ROOT_MARKERS = (
    "engine-id", "image", "containers", "volumes", "overlay2", "vfs", "fuse-overlayfs", "containerd/daemon"
)  # fmt: skip


@record
class Daemon:
    """A running dockerd and the data root it uses."""

    pid: int
    root: Path


@record
class Location:
    """The data root to scan and how it was chosen."""

    root: Path
    source: str
    daemon: Daemon | None
    """The running dockerd using this root, if any."""


def processes(name: str) -> list[tuple[int, list[str]]]:
    """(pid, command line) of every running process called `name`, by pid.

    Read from /proc directly: importing psutil costs a short run more than the reads.
    Only the name of every process is read (one read each); the rest only of those.
    """
    found: list[tuple[int, list[str]]] = []
    try:
        pids = sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())
    except OSError:
        return found
    comm = os.fsencode(name) + b"\n"
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                if f.read() != comm:
                    continue
        except OSError:
            continue  # gone meanwhile, or not ours to read
        cmdline = cmdline_of(pid)
        if cmdline is not None:
            found.append((pid, cmdline))
    return found


def cmdline_of(pid: int) -> list[str] | None:
    """The command line of process `pid`, or None when it is gone or not ours to read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [os.fsdecode(arg) for arg in f.read().split(b"\0")[:-1]]
    except OSError:
        return None


def running_daemons() -> list[Daemon]:
    """Every running dockerd with the data root it was started with."""
    found: list[Daemon] = []
    for pid, cmdline in processes("dockerd"):
        try:
            uid = _real_uid(pid)
        except (OSError, ValueError):
            continue  # gone meanwhile
        found.append(Daemon(pid, _daemon_root(cmdline, uid)))
    return found


def _real_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    raise ValueError(f"no Uid in /proc/{pid}/status")


def _flag(cmdline: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(cmdline):
        for name in names:
            if arg == name and i + 1 < len(cmdline):
                return cmdline[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1 :]
    return None


def _daemon_root(cmdline: list[str], uid: int = 0) -> Path:
    flag = _flag(cmdline, ("--data-root", "--graph", "-g"))
    if flag:
        return Path(flag)
    config = _flag(cmdline, ("--config-file",))
    home = _home_of(uid) if uid != 0 else None
    if home is not None:  # rootless: pkg/homedir GetDataHome / GetConfigHome
        default_config = home / ".config" / "docker" / "daemon.json"
        from_config = config_data_root(Path(config) if config else default_config)
        return from_config or home / ".local" / "share" / "docker"
    from_config = config_data_root(Path(config) if config else DAEMON_JSON)
    return from_config or DEFAULT_ROOT


def _home_of(uid: int) -> Path | None:
    try:
        return Path(pwd.getpwuid(uid).pw_dir)
    except KeyError:
        return None


def rootless_root(environ: dict[str, str] | None = None) -> Path:
    """Where a rootless dockerd of this user keeps its data: `$XDG_DATA_HOME/docker`."""
    env = os.environ if environ is None else environ
    data_home = env.get("XDG_DATA_HOME") or os.path.join(env.get("HOME", "~"), ".local", "share")
    return Path(os.path.expanduser(data_home)) / "docker"


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
        others = ", ".join(f"pid {d.pid} on {d.root}" for d in daemons[1:])
        many = f"; another dockerd runs too: {others}; pass --root to choose" if others else ""
        location = Location(first.root, f"running dockerd, pid {first.pid}{many}", None)
    elif (configured := config_data_root()) is not None:
        location = Location(configured, str(DAEMON_JSON), None)
    elif os.geteuid() != 0 and rootless_root().is_dir():
        location = Location(rootless_root(), "rootless default ($XDG_DATA_HOME/docker)", None)
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
    markers = [m for m in ROOT_MARKERS if m.split("/")[0] in names and os.path.lexists(root / m)]
    if not markers:
        listed = ", ".join(m if m == "engine-id" else m + "/" for m in ROOT_MARKERS)
        raise RootError(
            f"{root} is not a Docker data root (none of {listed} is there); pass --root with the right path."
        )
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


CONTAINERD_SNAPSHOTTERS = ("overlayfs", "native", "btrfs", "zfs", "fuse-overlayfs")
"""Snapshotters whose data lives under `containerd/daemon/io.containerd.snapshotter.v1.<name>`."""


@record
class Store:
    """Which image store a root holds, and the data of a store the daemon no longer uses."""

    store: str
    """`containerd`, or the graphdriver name (`overlay2`, `vfs`, `fuse-overlayfs`, ...)."""
    driver: str
    """The graphdriver, or the containerd snapshotter (`overlayfs`)."""
    unused: tuple[str, ...] = ()
    """Root-relative paths of the other store's data when the root holds both."""


def _entries(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _graphdriver_has_data(root: Path, driver: str) -> bool:
    store = root / "image" / driver
    return bool(
        _entries(store / "imagedb" / "content" / "sha256")
        or _entries(store / "layerdb" / "sha256")
        or [n for n in _entries(root / driver) if n not in ("l", "dir", "backingFsBlockDev")]
        or _entries(root / driver / "dir")
    )


def _snapshotter_with_data(root: Path) -> str | None:
    for name in CONTAINERD_SNAPSHOTTERS:
        if _entries(root / "containerd" / "daemon" / f"io.containerd.snapshotter.v1.{name}" / "snapshots"):
            return name
    return None


def _container_drivers(root: Path) -> set[str]:
    drivers: set[str] = set()
    for cid in _entries(root / "containers"):
        try:
            doc = read_json(root / "containers" / cid / "config.v2.json")
        except ReadError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("Driver"), str):
            drivers.add(doc["Driver"])
    return drivers


SNAPSHOTTER_ONLY = frozenset({"overlayfs", "native", "stargz", "erofs"})
"""containerd snapshotters no graphdriver shares a name with: a container on one uses the containerd store."""


def _feature_enabled(config: Path) -> bool:
    """Whether a daemon.json turns on the `containerd-snapshotter` feature."""
    try:
        doc = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    features = doc.get("features") if isinstance(doc, dict) else None
    return isinstance(features, dict) and features.get("containerd-snapshotter") is True


def containerd_in_use(root: Path, store: Store, daemon_json: Path | None) -> bool:
    """Whether the daemon of `root` uses the containerd store, whatever holds its data.

    Its containers say so (`Driver` a snapshotter no graphdriver is named after, or a
    snapshotter with no graphdriver tree), `daemon_json` enables the feature, or
    the managed `containerd/daemon/` holds snapshots.
    """
    if store.store == "containerd":
        return True
    drivers = set(graph_drivers(root))
    used = _container_drivers(root)
    if used & SNAPSHOTTER_ONLY or (used & set(CONTAINERD_SNAPSHOTTERS)) - drivers:
        return True
    return daemon_json is not None and _feature_enabled(daemon_json) and not (used & drivers)


def containerd_store(root: Path) -> Store:
    """The containerd store of a root whose data is elsewhere (a system containerd's root):
    the snapshotter its containers name, and any graphdriver tree the daemon no longer uses."""
    used = _container_drivers(root)
    snapshotter = next((d for d in CONTAINERD_SNAPSHOTTERS if d in used), "overlayfs")
    drivers = [d for d in graph_drivers(root) if _graphdriver_has_data(root, d)]
    return Store("containerd", snapshotter, _graphdriver_paths(root, drivers))


def _graphdriver_paths(root: Path, drivers: list[str]) -> tuple[str, ...]:
    """The paths of these graphdrivers' data under `root`: a store the daemon does not use."""
    from .stores.graphdriver.drivers import owned_paths

    return tuple(p for d in drivers for p in owned_paths(d) if os.path.lexists(root / p))


def detect_store(root: Path) -> Store:
    """Tell the store of `root` from what is on disk.

    The containerd store keeps snapshots under `containerd/daemon/` (and its
    containers say `"Driver": "overlayfs"`); a graphdriver store keeps
    `image/<driver>/` and `<driver>/`. When both hold data, the containers'
    Driver decides; with no container, the containerd store wins, since Docker
    switches from a graphdriver to it (29.0 default, the 24.0+ feature flag) and
    leaves the old tree behind, invisible to the daemon.
    """
    snapshotter = _snapshotter_with_data(root)
    drivers = [d for d in graph_drivers(root) if _graphdriver_has_data(root, d)]
    used = _container_drivers(root)
    graph = next((d for d in drivers if d in used), drivers[0] if drivers else None)
    if snapshotter is not None and (snapshotter in used or graph is None or not used & set(drivers)):
        return Store("containerd", snapshotter, _graphdriver_paths(root, drivers))
    if graph is None:
        return Store("overlay2", "overlay2")
    if snapshotter is None:
        return Store(graph, graph)
    # Imported here: most graphdriver roots hold no containerd store.
    from .stores.containerd.store import owned_paths

    return Store(graph, graph, owned_paths(snapshotter))
