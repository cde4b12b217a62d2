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
    image_platform: bool = False
    """config.v2.json has `ImagePlatform`: written by Docker 28.0 or later."""


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
    complete: bool = True
    """Every container dir was read in full: container lists and volume users are whole."""


def read_containers(base: Path, rel: str = "containers") -> ContainersScan:
    """Read every `containers/<id>/` under `base`."""
    try:
        entries = list_dir(base)
    except ReadError as e:
        return ContainersScan({}, {}, (Problem("metadata_unreadable", rel, str(e)),), False, {}, False)
    containers: dict[ContainerID, ContainerRecord] = {}
    unusable: dict[ContainerID, str] = {}
    mtimes: dict[ContainerID, float] = {}
    problems: list[Problem] = []
    for entry in sorted(entries, key=lambda e: e.name):
        relpath = f"{rel}/{entry.name}"
        if not HEX64.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            what = "a dir" if entry.is_dir(follow_symlinks=False) else "not a dir"
            problems.append(
                Problem(
                    "metadata_unreadable", relpath, f"not a container dir ({what}): Docker cannot load it"
                )
            )
            continue
        container_id = ContainerID(entry.name)
        try:
            mtimes[container_id] = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue  # removed while we looked
        try:
            record, damage = _read_container(Path(entry.path), container_id)
        except ReadError as e:
            unusable[container_id] = f"config.v2.json {e}"
            problems.append(Problem("metadata_unreadable", f"{relpath}/config.v2.json", str(e)))
            continue
        containers[container_id] = record
        problems.extend(Problem("metadata_unreadable", f"{relpath}/{name}", why) for name, why in damage)
    return ContainersScan(containers, unusable, tuple(problems), True, mtimes, not problems)


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


def _read_container(path: Path, container_id: ContainerID) -> tuple[ContainerRecord, list[tuple[str, str]]]:
    """The container, and (file, reason) for each part of it that could not be used."""
    config = read_json(path / "config.v2.json")
    if not isinstance(config, dict):
        raise ReadError("is not a JSON object")
    if config.get("ID") != container_id:
        raise ReadError("names another container ID")
    damage: list[tuple[str, str]] = []
    for key, kind in (("State", dict), ("MountPoints", dict), ("Config", dict), ("Name", str)):
        if config.get(key) is not None and not isinstance(config[key], kind):
            damage.append(("config.v2.json", f"{key} is not {'an object' if kind is dict else 'a string'}"))
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
    log_driver, why = _log_driver(path)
    if why is not None:
        damage.append(("hostconfig.json", why))
    record = ContainerRecord(
        id=container_id,
        name=name.lstrip("/") if isinstance(name, str) else "",
        image_id=image_id,
        image_ref=image_ref if isinstance(image_ref, str) else "",
        state=state_string(state) if isinstance(state, dict) else "unknown",
        driver=driver if isinstance(driver, str) else "",
        volumes=tuple(sorted(set(volumes))),
        log_driver=log_driver,
        log_files=_log_files(path, container_id),
        image_platform="ImagePlatform" in config,
    )
    return record, damage


def _log_driver(path: Path) -> tuple[str, str | None]:
    """The log driver ("" when unknown), and why hostconfig.json is unusable (None when fine)."""
    try:
        host = read_json(path / "hostconfig.json")
    except ReadError as e:
        return "", None if str(e) == "missing" else str(e)
    if not isinstance(host, dict):
        return "", "is not a JSON object"
    log_config = host.get("LogConfig")
    kind = log_config.get("Type") if isinstance(log_config, dict) else None
    return (kind, None) if isinstance(kind, str) else ("", None)


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
