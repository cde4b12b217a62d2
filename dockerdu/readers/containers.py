"""Read `containers/<id>/`: config.v2.json, hostconfig.json and the log files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..fsread import ReadError, list_dir, read_json
from ..ids import HEX64, ContainerID, IDError, ImageID, parse_image_id
from ..model import Problem

LOCAL_LOGS = "local-logs"


@dataclass(frozen=True)
class ContainerRecord:
    """One container as its config.v2.json describes it."""

    id: ContainerID
    name: str
    image_id: ImageID | None
    image_ref: str
    state: str
    driver: str
    volumes: tuple[str, ...]
    log_driver: str
    log_files: tuple[str, ...]
    """Names of log files and dirs inside the container dir (json-file, local, cache)."""


@dataclass(frozen=True)
class ContainersScan:
    """Containers with a usable config, and container dirs without one."""

    containers: dict[ContainerID, ContainerRecord]
    unusable: dict[ContainerID, str]
    """Container dirs whose config.v2.json could not be used, with the reason."""
    problems: tuple[Problem, ...]
    readable: bool
    mtimes: dict[ContainerID, float]
    """Last change of each container dir, to tell one being created or removed."""


def read_containers(base: Path, rel: str = "containers") -> ContainersScan:
    """Read every `containers/<id>/` under `base`."""
    try:
        entries = list_dir(base)
    except ReadError as e:
        return ContainersScan({}, {}, (Problem("metadata_unreadable", rel, str(e)),), False, {})
    containers: dict[ContainerID, ContainerRecord] = {}
    unusable: dict[ContainerID, str] = {}
    mtimes: dict[ContainerID, float] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        if not HEX64.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        container_id = ContainerID(entry.name)
        try:
            mtimes[container_id] = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue  # removed while we looked
        try:
            containers[container_id] = _read_container(Path(entry.path), container_id)
        except ReadError as e:
            unusable[container_id] = f"config.v2.json {e}"
    return ContainersScan(containers, unusable, (), True, mtimes)


def state_string(state: dict[str, object]) -> str:
    """Docker's State.StateString(): running, paused, restarting, removing, dead, created, exited."""
    if state.get("Running"):
        if state.get("Paused"):
            return "paused"
        if state.get("Restarting"):
            return "restarting"
        return "running"
    if state.get("RemovalInProgress"):
        return "removing"
    if state.get("Dead"):
        return "dead"
    started = state.get("StartedAt")
    if not isinstance(started, str) or started.startswith("0001-01-01"):
        return "created"
    return "exited"


def _read_container(path: Path, container_id: ContainerID) -> ContainerRecord:
    config = read_json(path / "config.v2.json")
    if not isinstance(config, dict):
        raise ReadError("is not a JSON object")
    if config.get("ID") != container_id:
        raise ReadError("names another container ID")
    try:
        image_id = parse_image_id(config["Image"]) if isinstance(config.get("Image"), str) else None
    except IDError:
        image_id = None
    state = config.get("State")
    mount_points = config.get("MountPoints")
    volumes = [
        mp["Name"]
        for mp in (mount_points.values() if isinstance(mount_points, dict) else ())
        if isinstance(mp, dict) and mp.get("Type") == "volume" and isinstance(mp.get("Name"), str)
    ]
    inner = config.get("Config")
    image_ref = inner.get("Image") if isinstance(inner, dict) else None
    name = config.get("Name")
    driver = config.get("Driver")
    return ContainerRecord(
        id=container_id,
        name=name.lstrip("/") if isinstance(name, str) else "",
        image_id=image_id,
        image_ref=image_ref if isinstance(image_ref, str) else "",
        state=state_string(state) if isinstance(state, dict) else "unknown",
        driver=driver if isinstance(driver, str) else "",
        volumes=tuple(sorted(set(volumes))),
        log_driver=_log_driver(path),
        log_files=_log_files(path, container_id),
    )


def _log_driver(path: Path) -> str:
    try:
        host = read_json(path / "hostconfig.json")
    except ReadError:
        return ""
    log_config = host.get("LogConfig") if isinstance(host, dict) else None
    kind = log_config.get("Type") if isinstance(log_config, dict) else None
    return kind if isinstance(kind, str) else ""


def _log_files(path: Path, container_id: str) -> tuple[str, ...]:
    """json-file logs with rotated (and compressed) siblings, `local-logs/`, the dual-logging cache."""
    try:
        entries = list_dir(path)
    except ReadError:
        return ()
    return tuple(sorted(e.name for e in entries if is_log_name(e.name, container_id)))


def is_log_name(name: str, container_id: str) -> bool:
    """Whether a name inside `containers/<id>/` is a log file or log dir."""
    return (
        name.startswith(f"{container_id}-json.log")
        or name.startswith("container-cached.log")
        or name == LOCAL_LOGS
    )
