"""Real-Docker harness for dockerdu's tests: private daemons, scenarios, crash leftovers.

Everything here drives a real `dockerd` (20.10 from Debian, or 26.1 unpacked by
`.ci/install-docker26.sh`) that runs entirely under a directory the caller owns:
its data root, exec root, API socket, pidfile and log. The system Docker daemon
is never contacted. A daemon is stopped by its pid, and `PrivateDaemon.stop`
also unmounts whatever the daemon left mounted under its directory.

Typical use::

    with PrivateDaemon("20.10", tmp_path) as d:
        scenario = build_scenario(d)
        df = system_df(d)
    planted = plant_leftovers(d.root, scenario)   # the daemon is stopped here

Images come from `docker import` of a busybox-static rootfs (no registry is
reachable) and from `docker build` FROM it. The classic builder is used for
the shared scenario on both versions; on 26.1 one more image is built with
BuildKit so that the data root holds a build cache.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from dockerdu.model import OrphanKind, ProblemKind

Version = Literal["20.10", "26.1", "28.5"]
VERSIONS: tuple[Version, ...] = ("20.10", "26.1")
"""The versions every scenario runs on; 28.5 runs the containerd-store tests."""

DOCKERD_20_10 = Path(os.environ.get("DOCKERDU_DOCKERD_20_10", "/usr/sbin/dockerd"))
"""The Debian bookworm dockerd (docker.io 20.10.24)."""
DOCKER26_DEFAULT_PREFIX = Path("/opt/dockerdu-docker26")
"""Where `.ci/install-docker26.sh` unpacks Docker 26.1 by default."""
DOCKER28_DEFAULT_PREFIX = Path("/opt/dockerdu-docker28")
"""Where `.ci/install-docker28.sh` unpacks Docker 28.5 (containerd 2.1) by default."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

MIB = 1024 * 1024
STORAGE_DRIVER = "overlay2"

# Names the scenario gives to what it makes.
BASE = "dd-base:1"
APP1 = "dd-app:1"
APP2 = "dd-app:2"
APP3 = "dd-app:3"
BK_IMAGE = "dd-bk:1"
RUNNING = "dd-running"
EXITED = "dd-exited"
CREATED = "dd-created"
LOGS_JSON = "dd-logs-json"
LOGS_LOCAL = "dd-logs-local"
NAMED_VOLUME = "dd-named"
UNUSED_VOLUME = "dd-unused"

# What the scenario writes, in apparent bytes (st_size).
SHARED_FILE = 307200  # common layer: /data/shared.bin plus a hard link to it
APP1_FILE = 20000
APP2_FILE = 30000
RUNNING_RW_FILE = 65536  # dd-running's writable layer: /rw.bin plus a hard link
EXITED_RW_FILE = 40000
NAMED_VOLUME_FILE = 102400
ANON_VOLUME_FILE = 51200
UNUSED_VOLUME_FILE = 20000
BK_FILE = 51200
BK_CACHE_FILE = 30000

ORPHAN_KINDS: tuple[OrphanKind, ...] = (
    OrphanKind.layer_dir_unreferenced,
    OrphanKind.layer_unreferenced,
    OrphanKind.container_layer_orphaned,
    OrphanKind.container_dir_orphaned,
    OrphanKind.link_broken,
    OrphanKind.layerdb_tmp,
    OrphanKind.layer_removing,
)
"""The graphdriver store's orphans a test plants: leftovers nothing references, safe to delete."""
PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    ProblemKind.layer_dir_missing,
    ProblemKind.image_layer_missing,
    ProblemKind.link_missing,
    ProblemKind.metadata_unreadable,
)
"""The problems a test plants: damage to objects still in use, to report, never to delete."""
PLANT_KINDS: tuple[OrphanKind | ProblemKind, ...] = ORPHAN_KINDS + PROBLEM_KINDS

PLANT_IMAGES: dict[str, str] = {
    "layer_unreferenced": "dd-plant-unref:1",
    "layer_removing": "dd-plant-removing:1",
    "layer_dir_missing": "dd-plant-nodir:1",
    "image_layer_missing": "dd-plant-nolayer:1",
    "link_missing": "dd-plant-nolink:1",
    "metadata_unreadable": "dd-plant-badcfg:1",
}
"""Plant kind -> the image `build_scenario` reserves for it (FROM dd-base:1 plus one unique layer)."""
PLANT_CONTAINERS: dict[str, str] = {
    "container_layer_orphaned": "dd-plant-mountonly",
    "container_dir_orphaned": "dd-plant-dironly",
}
"""Plant kind -> the container `build_scenario` reserves for it."""


class DaemonError(RuntimeError):
    """A private daemon could not be started, reached or stopped."""


class DockerError(RuntimeError):
    """A docker CLI command failed."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.cmd = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{' '.join(args)} exited {returncode}:\n{_tail(stderr, 40)}\n{_tail(stdout, 20)}")


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _file_tail(path: Path, lines: int = 40) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError as e:
        return f"(no log: {e})"


# --------------------------------------------------------------------------- binaries


def docker26_prefix() -> Path | None:
    """The Docker 26.1 prefix (`$DOCKERDU_DOCKER26_PREFIX` or /opt/dockerdu-docker26), if unpacked."""
    prefix = Path(os.environ.get("DOCKERDU_DOCKER26_PREFIX", str(DOCKER26_DEFAULT_PREFIX)))
    if (prefix / "usr/sbin/dockerd").is_file() and (prefix / "usr/bin/containerd").is_file():
        return prefix
    return None


def docker28_prefix() -> Path | None:
    """The Docker 28.5 prefix (`$DOCKERDU_DOCKER28_PREFIX` or /opt/dockerdu-docker28), if unpacked."""
    prefix = Path(os.environ.get("DOCKERDU_DOCKER28_PREFIX", str(DOCKER28_DEFAULT_PREFIX)))
    if (prefix / "usr/sbin/dockerd").is_file() and (prefix / "usr/bin/containerd").is_file():
        return prefix
    return None


def prefix_of(version: Version) -> Path | None:
    """The unpacked prefix of an unpacked version (26.1, 28.5); None for the system's 20.10."""
    if version == "26.1":
        return docker26_prefix()
    if version == "28.5":
        return docker28_prefix()
    return None


def docker_client() -> Path | None:
    """The docker CLI on the system PATH (any version from 20.10 on talks to both daemons)."""
    found = shutil.which("docker", path=os.environ.get("PATH", SYSTEM_PATH))
    return Path(found) if found else None


def _runs(exe: Path) -> bool:
    try:
        r = subprocess.run(
            [str(exe), "--version"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return r.returncode == 0


def _runc_for(version: Version) -> Path | None:
    """A runc that starts on this machine: the prefix's own for 26.1 if it runs, else the system's."""
    if version == "26.1":
        prefix = docker26_prefix()
        if prefix is not None:
            for cand in (prefix / "usr/sbin/runc", prefix / "usr/bin/runc"):
                if cand.exists() and _runs(cand):
                    return cand
    found = shutil.which("runc", path=SYSTEM_PATH)
    if found and _runs(Path(found)):
        return Path(found)
    return None


def _busybox() -> Path | None:
    for cand in BUSYBOX_CANDIDATES:
        if Path(cand).is_file():
            return Path(cand)
    return None


def docker_unavailable(version: Version) -> str | None:
    """Why a private daemon of `version` cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    if docker_client() is None:
        return "no docker CLI on PATH"
    if _busybox() is None:
        return "no busybox-static (/bin/busybox) for the base image"
    if version == "20.10":
        if not DOCKERD_20_10.is_file():
            return f"no {DOCKERD_20_10} (apt-get install docker.io)"
        if shutil.which("containerd", path=SYSTEM_PATH) is None:
            return "no containerd on PATH (apt-get install docker.io)"
    else:
        prefix = prefix_of(version)
        if prefix is None:
            script = "install-docker26.sh" if version == "26.1" else "install-docker28.sh"
            return f"Docker {version} is not unpacked (bash .ci/{script})"
        if not (prefix / "usr/libexec/docker/cli-plugins/docker-buildx").is_file():
            return f"no docker-buildx plugin under {prefix}"
    if _runc_for(version) is None:
        return "no working runc (apt-get install docker.io)"
    return None


def have_docker(version: Version) -> bool:
    """True when a private daemon of `version` can be started on this machine."""
    return docker_unavailable(version) is None


def require_docker(version: Version) -> None:
    """Skip the calling test when Docker `version` cannot run here; in CI (CI set), fail it."""
    import pytest

    reason = docker_unavailable(version)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Docker {version} is required in CI: {reason}")
    pytest.skip(f"Docker {version} unavailable: {reason}")


def fuse_overlayfs_unavailable() -> str | None:
    """Why the fuse-overlayfs graphdriver cannot run here, or None when it can."""
    if shutil.which("fuse-overlayfs", path=SYSTEM_PATH) is None:
        return "no fuse-overlayfs binary (apt-get install fuse-overlayfs)"
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
    except OSError as e:
        return f"cannot open /dev/fuse: {e}"
    os.close(fd)
    return None


def require_fuse_overlayfs() -> None:
    """Skip the calling test when fuse-overlayfs cannot run here; in CI (CI set), fail it."""
    import pytest

    reason = fuse_overlayfs_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"fuse-overlayfs is required in CI: {reason}")
    pytest.skip(f"fuse-overlayfs unavailable: {reason}")


# --------------------------------------------------------------------------- API over a unix socket


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, sock_path: Path, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._sock_path = str(sock_path)

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._sock_path)
        self.sock = s


def _http_get(sock_path: Path, path: str, timeout: float) -> tuple[int, bytes]:
    conn = _UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- mounts and processes


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(*dirs: Path) -> list[str]:
    """Mount points at or below any of `dirs`, in /proc/self/mountinfo order (duplicates kept)."""
    prefixes = [str(d) for d in dirs]
    found: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 5:
                continue
            point = _unescape_mountinfo(fields[4])
            if any(point == p or point.startswith(p + "/") for p in prefixes):
                found.append(point)
    return found


def unmount_under(*dirs: Path) -> list[str]:
    """Unmount everything mounted at or below `dirs`, deepest (and most recent) first."""
    done: list[str] = []
    for _ in range(1000):
        points = mounts_under(*dirs)
        if not points:
            return done
        # The last mountinfo line for the deepest path is the top of its stack.
        target = max(reversed(points), key=lambda p: p.count("/"))
        r = subprocess.run(["umount", target], capture_output=True, check=False)
        if r.returncode != 0:
            r = subprocess.run(["umount", "-l", target], capture_output=True, check=False)
            if r.returncode != 0:
                raise DaemonError(f"cannot unmount {target}: {r.stderr.decode(errors='replace')}")
        done.append(target)
    raise DaemonError(f"mounts under {dirs} do not go away")


def _pids_mentioning(needle: str) -> list[int]:
    pids: list[int] = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    return stat_line.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_gone(pids: Collection[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if _alive(p)]
    return left


def _kill(pids: Collection[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# --------------------------------------------------------------------------- the daemon


class PrivateDaemon:
    """A dockerd of a given version whose whole state lives under `base`.

    `base/root` is the data root, `base/docker.sock` the API socket, `base/dockerd.log`
    the daemon log. The daemon runs its own containerd. Every container gets
    `--network none` from the scenario, since the daemon has no bridge.
    """

    def __init__(
        self,
        version: Version,
        base: Path,
        *,
        config: Mapping[str, Any] | None = None,
        system_containerd: bool = False,
    ) -> None:
        self.version: Version = version
        self.base = Path(os.path.abspath(base))
        self.root = self.base / "root"
        self.system_containerd = system_containerd
        """Run a containerd of our own first (as a host's system containerd) and give dockerd
        `--containerd=<its socket>`: the roots are `base/var/lib/docker` and `base/var/lib/containerd`."""
        self.containerd_root = self.base / "var/lib/containerd"
        self.containerd_state: Path | None = None
        """containerd's state dir and grpc socket (short, in /tmp: sun_path is 108 bytes)."""
        self._containerd: subprocess.Popen[bytes] | None = None
        if system_containerd:
            self.root = self.base / "var/lib/docker"
        self.sock = self.base / "docker.sock"
        self.pidfile = self.base / "docker.pid"
        self.log_path = self.base / "dockerd.log"
        self.config_path = self.base / "daemon.json"
        self.client_config = self.base / "client"
        self.bin_dir = self.base / "bin"
        # containerd's sockets live in the exec root and must fit in sun_path (108 bytes).
        self._own_exec_root = len(str(self.base)) > 60
        self.exec_root = self.base / "exec"
        self._config: dict[str, Any] = {"storage-driver": STORAGE_DRIVER, **(config or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._client = docker_client()

    # -- lifecycle

    @property
    def pid(self) -> int:
        """The dockerd process ID (raises when the daemon is not running)."""
        if self._proc is None or self._proc.poll() is not None:
            raise DaemonError("the daemon is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the dockerd process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _dockerd(self) -> Path:
        if self.version == "20.10":
            return DOCKERD_20_10
        prefix = prefix_of(self.version)
        if prefix is None:
            raise DaemonError(f"Docker {self.version} is not unpacked (bash .ci/install-docker*.sh)")
        return prefix / "usr/sbin/dockerd"

    def _daemon_env(self) -> dict[str, str]:
        runc = _runc_for(self.version)
        if runc is None:
            raise DaemonError("no working runc")
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        link = self.bin_dir / "runc"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(runc)
        path = f"{self.bin_dir}:{SYSTEM_PATH}"
        prefix = prefix_of(self.version)
        if prefix is not None:
            path = f"{self.bin_dir}:{prefix}/usr/bin:{prefix}/usr/sbin:{SYSTEM_PATH}"
        return {"PATH": path, "HOME": str(self.base), "LANG": "C.UTF-8"}

    def start(self) -> None:
        """Start dockerd and wait until `/_ping` answers; raise DaemonError with the log tail if not."""
        if self.running:
            return
        if self._client is None:
            raise DaemonError("no docker CLI on PATH")
        self.base.mkdir(parents=True, exist_ok=True)
        if self._own_exec_root:
            self.exec_root = Path(tempfile.mkdtemp(prefix="dd-exec-", dir="/tmp"))
        self.config_path.write_text(json.dumps(self._config, indent=2) + "\n")
        self._setup_client()
        with contextlib.suppress(FileNotFoundError):
            self.sock.unlink()
        cmd = [
            str(self._dockerd()),
            "--config-file", str(self.config_path),
            "--data-root", str(self.root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "-H", f"unix://{self.sock}",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
        ]  # fmt: skip
        env = self._daemon_env()
        if self.system_containerd:
            cmd.append(f"--containerd={self._start_containerd(env)}")
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout=60)
        except BaseException:
            self._terminate(force=True)
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            rc = self._proc.poll()
            if rc is not None:
                raise DaemonError(
                    f"dockerd {self.version} exited with {rc} while starting:\n{_file_tail(self.log_path)}"
                )
            if self.sock.exists():
                try:
                    status, body = _http_get(self.sock, "/_ping", timeout=5)
                    if status == 200 and body.strip() == b"OK":
                        return
                    last = f"HTTP {status} {body[:200]!r}"
                except OSError as e:
                    last = str(e)
            time.sleep(0.1)
        raise DaemonError(
            f"dockerd {self.version} did not answer /_ping in {timeout:.0f}s ({last}):\n"
            f"{_file_tail(self.log_path)}"
        )

    @property
    def containerd_sock(self) -> Path:
        """The grpc socket of the system containerd (only with `system_containerd`)."""
        assert self.containerd_state is not None, "no system containerd"
        return self.containerd_state / "c.sock"

    def _containerd_config(self) -> str:
        """containerd's own config: root, state, a private grpc address, CRI off (v2 for 1.7, v3 for 2.x)."""
        assert self.containerd_state is not None
        version = 3 if self.version == "28.5" else 2
        disabled = ['"io.containerd.grpc.v1.cri"']
        if version == 3:
            disabled += ['"io.containerd.cri.v1.images"', '"io.containerd.cri.v1.runtime"']
        return (
            f"version = {version}\n"
            f'root = "{self.containerd_root}"\n'
            f'state = "{self.containerd_state / "state"}"\n'
            f"disabled_plugins = [{', '.join(disabled)}]\n"
            f'[grpc]\n  address = "{self.containerd_sock}"\n'
            f'[ttrpc]\n  address = "{self.containerd_state / "t.sock"}"\n'
            f'[debug]\n  address = ""\n'
            f'[metrics]\n  address = ""\n'
        )

    def _start_containerd(self, env: Mapping[str, str]) -> Path:
        """Start the private system containerd and wait until its socket accepts connections."""
        prefix = prefix_of(self.version)
        if prefix is None:
            raise DaemonError(f"Docker {self.version} has no containerd unpacked")
        if self.containerd_state is None:
            self.containerd_state = Path(tempfile.mkdtemp(prefix="dd-ctrd-", dir="/tmp"))
        self.containerd_root.mkdir(parents=True, exist_ok=True)
        config = self.base / "containerd.toml"
        config.write_text(self._containerd_config())
        log_path = self.base / "containerd.log"
        with contextlib.suppress(FileNotFoundError):
            self.containerd_sock.unlink()
        with open(log_path, "ab") as log:
            self._containerd = subprocess.Popen(
                [str(prefix / "usr/bin/containerd"), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._containerd.poll() is not None:
                raise DaemonError(f"containerd exited while starting:\n{_file_tail(log_path)}")
            if self.containerd_sock.exists():
                with socket.socket(socket.AF_UNIX) as probe:
                    try:
                        probe.connect(str(self.containerd_sock))
                        return self.containerd_sock
                    except OSError:
                        pass
            time.sleep(0.1)
        raise DaemonError(f"containerd did not listen in 60s:\n{_file_tail(log_path)}")

    def _stop_containerd(self) -> None:
        proc, self._containerd = self._containerd, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if self.containerd_state is not None:
            # Shims name the containerd socket on their command line.
            strays = _pids_mentioning(str(self.containerd_state))
            if strays:
                _kill(strays, signal.SIGTERM)
                left = _wait_gone(strays, 10)
                if left:
                    _kill(left, signal.SIGKILL)
                    _wait_gone(left, 10)
            unmount_under(self.containerd_state)
            shutil.rmtree(self.containerd_state, ignore_errors=True)
            self.containerd_state = None

    @contextlib.contextmanager
    def containerd_only(self) -> Iterator[None]:
        """Run the system containerd alone (no dockerd), e.g. for another client's `ctr`."""
        assert self.system_containerd, "no system containerd"
        self.base.mkdir(parents=True, exist_ok=True)
        self._start_containerd(self._daemon_env())
        try:
            yield
        finally:
            self._stop_containerd()

    def ctr(self, namespace: str, *args: str, timeout: float = 120) -> str:
        """Run `ctr` of this version against the daemon's containerd (system or managed), in `namespace`."""
        prefix = prefix_of(self.version)
        assert prefix is not None
        managed = self.exec_root / "containerd/containerd.sock"
        sock = self.containerd_sock if self.system_containerd else managed
        cmd = [str(prefix / "usr/bin/ctr"), "-a", str(sock), "-n", namespace, *args]
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        if r.returncode != 0:
            out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
            raise DockerError(cmd, r.returncode, out, err)
        return r.stdout.decode(errors="replace")

    def stop(self, timeout: float = 90) -> None:
        """SIGTERM dockerd by pid, wait until it is gone, then clear what it left running or mounted.

        A clean shutdown stops the containers (dd-running has `--stop-timeout 1`),
        stops the managed containerd, and removes `layerdb/sha256/*-removing` dirs
        with their overlay2 dirs. Afterwards nothing under `base` (or the exec root)
        may still be mounted.
        """
        self._terminate(force=False, timeout=timeout)

    def _terminate(self, *, force: bool, timeout: float = 90) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5 if force else timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
                force = True
        # containerd and shims this daemon started name our exec root on their command line.
        strays = _pids_mentioning(f"{self.exec_root}/")
        if strays:
            _kill(strays, signal.SIGTERM)
            left = _wait_gone(strays, 10)
            if left:
                _kill(left, signal.SIGKILL)
                _wait_gone(left, 10)
        if force:
            self._kill_container_processes()
        self._stop_containerd()
        unmount_under(self.base, self.exec_root)
        if self._own_exec_root and self.exec_root != self.base / "exec":
            shutil.rmtree(self.exec_root, ignore_errors=True)
            self.exec_root = self.base / "exec"

    def _kill_container_processes(self) -> None:
        """After a forced stop: kill processes in the cgroups of this root's containers."""
        cdir = self.root / "containers"
        if not cdir.is_dir():
            return
        pids: set[int] = set()
        for c in cdir.iterdir():
            for procs in Path("/sys/fs/cgroup").glob(f"*/docker/{c.name}/cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(x) for x in procs.read_text().split())
        if pids:
            _kill(pids, signal.SIGKILL)
            _wait_gone(pids, 10)

    def restart(self) -> None:
        """Stop cleanly and start again on the same root."""
        self.stop()
        self.start()

    def __enter__(self) -> PrivateDaemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._terminate(force=exc is not None)

    # -- clients

    def _setup_client(self) -> None:
        self.client_config.mkdir(parents=True, exist_ok=True)
        cfg = self.client_config / "config.json"
        if not cfg.exists():
            cfg.write_text("{}\n")
        prefix = prefix_of(self.version)
        if prefix is not None:
            plugins = self.client_config / "cli-plugins"
            plugins.mkdir(exist_ok=True)
            link = plugins / "docker-buildx"
            if not link.is_symlink():
                link.symlink_to(prefix / "usr/libexec/docker/cli-plugins/docker-buildx")

    def client_env(self) -> dict[str, str]:
        """The environment `docker` runs with: this daemon, a private DOCKER_CONFIG, the builder."""
        return {
            "PATH": SYSTEM_PATH,
            "HOME": str(self.base),
            "LANG": "C.UTF-8",
            "DOCKER_HOST": f"unix://{self.sock}",
            "DOCKER_CONFIG": str(self.client_config),
            "DOCKER_BUILDKIT": "0" if self.version == "20.10" else "1",
            "DOCKER_CLI_HINTS": "false",
            "BUILDKIT_PROGRESS": "plain",
        }

    def docker(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> str:
        """Run the docker CLI against this daemon and return its stdout (raise DockerError if `check`)."""
        if self._client is None:
            raise DaemonError("no docker CLI on PATH")
        cmd = [str(self._client), *args]
        full_env = self.client_env()
        full_env.update(env or {})
        data = input.encode() if isinstance(input, str) else input
        r = subprocess.run(
            cmd,
            input=data,
            capture_output=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
        out = r.stdout.decode(errors="replace")
        if check and r.returncode != 0:
            raise DockerError(cmd, r.returncode, out, r.stderr.decode(errors="replace"))
        return out

    def api(self, path: str, timeout: float = 120) -> Any:
        """GET `path` from the Engine API over the unix socket and decode the JSON answer."""
        status, body = _http_get(self.sock, path, timeout)
        if status != 200:
            raise DaemonError(f"GET {path}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def docker_version(self) -> str:
        """The engine version string, e.g. `20.10.24+dfsg1` or `26.1.5+dfsg1`."""
        return str(self.api("/version")["Version"])

    def image_id(self, ref: str) -> str:
        """Full image ID (`sha256:<hex>`) of a tag or ID."""
        return str(self.api(f"/images/{ref}/json")["Id"])

    def container_id(self, name: str) -> str:
        """Full 64-hex container ID of a container name."""
        return str(self.api(f"/containers/{name}/json")["Id"])


def system_df(d: PrivateDaemon) -> dict[str, Any]:
    """GET /system/df: LayersSize, Images, Containers, Volumes, BuildCache, with exact integers."""
    result = d.api("/system/df")
    assert isinstance(result, dict)
    return result


def du_bytes(*paths: Path | str) -> int:
    """What `du -scx -B1` counts for `paths` together (each inode once across all of them).

    du prints one line per argument counting only inodes not already seen, so the
    sum of those lines equals its `total` line; the total is used.
    """
    if not paths:
        return 0
    r = subprocess.run(
        ["du", "-scx", "-B1", "--", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    last = r.stdout.strip().splitlines()[-1]
    size, label = last.split("\t", 1)
    assert label == "total", last
    return int(size)


# --------------------------------------------------------------------------- base image


FIXED_MTIME = 1_700_000_000


def busybox_rootfs_tar(dest_dir: Path) -> Path:
    """Write `dest_dir/rootfs.tar`: busybox-static plus a symlink per applet, /etc, /tmp, /root.

    The content is deterministic (fixed mtimes, owners and order), so the base
    layer's diffID is the same on every run with the same busybox binary.
    Docker provides /dev, /proc and /sys at run time.
    """
    bb = _busybox()
    if bb is None:
        raise DaemonError("no busybox-static binary")
    applets = subprocess.run(
        [str(bb), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var", "var/tmp"}
    links: dict[str, str] = {}
    for rel in applets:
        rel = rel.strip("/")
        if not rel or rel == "bin/busybox":
            continue
        parent = os.path.dirname(rel)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
        links[rel] = "/bin/busybox"
    files: dict[str, tuple[bytes, int]] = {
        "bin/busybox": (bb.read_bytes(), 0o755),
        "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n", 0o644),
        "etc/group": (b"root:x:0:\nnogroup:x:65534:\n", 0o644),
        "etc/motd": (b"dockerdu test image\n", 0o644),
    }
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / "rootfs.tar"

    def info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.mtime = FIXED_MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs):
            mode = 0o1777 if name in ("tmp", "var/tmp") else (0o700 if name == "root" else 0o755)
            tar.addfile(info(name, tarfile.DIRTYPE, mode))
        for name in sorted(set(files) | set(links)):
            if name in files:
                data, mode = files[name]
                ti = info(name, tarfile.REGTYPE, mode)
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                ti = info(name, tarfile.SYMTYPE, 0o777)
                ti.linkname = links[name]
                tar.addfile(ti)
    return out


# --------------------------------------------------------------------------- layer arithmetic


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """ChainIDs for `rootfs.diff_ids` (base first): chain[i] = sha256(chain[i-1] + " " + diff[i])."""
    chain: list[str] = []
    for diff in diff_ids:
        if not chain:
            chain.append(diff)
        else:
            digest = hashlib.sha256(f"{chain[-1]} {diff}".encode()).hexdigest()
            chain.append(f"sha256:{digest}")
    return chain


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1] if ":" in digest else digest


def _layerdb(root: Path) -> Path:
    return root / "image" / STORAGE_DRIVER / "layerdb"


def _imagedb(root: Path) -> Path:
    return root / "image" / STORAGE_DRIVER / "imagedb"


def _read_id(path: Path) -> str:
    return path.read_text().strip()


# --------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class Scenario:
    """Everything `build_scenario` made, by name and full ID.

    Image IDs are `sha256:<hex>`; chain IDs `sha256:<hex>`; container IDs and
    mount IDs plain 64 hex; cache IDs are overlay2 dir names (64 hex for classic
    layers, 25 base-36 characters for layers BuildKit made).
    """

    version: Version
    engine_version: str
    """The daemon's own version string, e.g. `20.10.24+dfsg1`."""
    images: dict[str, str]
    """Tag -> image ID for every tag made, plant reserves included."""
    dangling_image: str
    """ID of the first dd-app:3, untagged when dd-app:3 was rebuilt (listed as <none>)."""
    layers: dict[str, tuple[str, ...]]
    """Image ID -> chain IDs base first, for every image in `images` and the dangling one."""
    cache_ids: dict[str, str]
    """Chain ID -> cache-id (overlay2 dir name) for every layer in `layers`."""
    containers: dict[str, str]
    """Container name -> container ID, plant reserves included."""
    container_images: dict[str, str]
    """Container name -> the image ID it was created from."""
    mount_ids: dict[str, str]
    """Container ID -> mount-id (overlay2 dir of its writable layer; `<mount-id>-init` beside it)."""
    volumes: dict[str, str]
    """Role ("named", "anonymous", "unused") -> volume name."""
    plant_images: dict[str, str]
    """Plant kind -> reserved image tag (see PLANT_IMAGES)."""
    plant_containers: dict[str, str]
    """Plant kind -> reserved container name (see PLANT_CONTAINERS)."""
    buildkit_image: str | None
    """"dd-bk:1" on 26.1 (built with BuildKit), None on 20.10."""
    layer_sparse_size: int
    """Apparent size of /data/sparse.img, made sparse in a build step (the commit fills its holes)."""
    rw_sparse_size: int
    """Apparent size of /rw.sparse, a sparse file in dd-running's writable layer (stays sparse)."""
    written: dict[str, int]
    """What was written where, in apparent bytes: running_rw, exited_rw, named_volume, ..."""
    seconds: float
    """How long build_scenario took."""

    def image_of(self, tag: str) -> str:
        """Image ID of `tag`."""
        return self.images[tag]

    def top_layer(self, tag: str) -> str:
        """Chain ID of the top layer of `tag`."""
        return self.layers[self.images[tag]][-1]


COMMON_STEPS = """\
FROM {base}
LABEL org.dockerdu.scenario="common"
ENV DD_STAGE=common
RUN mkdir -p /data/opq && head -c {shared} /dev/zero > /data/shared.bin \\
 && ln /data/shared.bin /data/shared.link && echo gone > /data/gone.txt \\
 && echo old > /data/opq/old.txt && echo keep > /data/opq/keep.txt
RUN truncate -s {sparse} /data/sparse.img \\
 && echo middle | dd of=/data/sparse.img bs=1 seek={half} conv=notrunc 2>/dev/null
RUN rm /data/gone.txt && rm -rf /data/opq && mkdir /data/opq && echo new > /data/opq/new.txt
"""
"""The steps dd-app:1, :2 and :3 share: a hard link, a sparse file, a whiteout and an opaque dir."""

RUNNING_WRITES = (
    "head -c {rw} /dev/zero > /rw.bin && ln /rw.bin /rw.link && rm /data/shared.link"
    " && truncate -s {sparse} /rw.sparse"
    " && head -c {named} /dev/zero > /named/named.bin && head -c {anon} /dev/zero > /anon/anon.bin"
)

LOG_LINES = 300


def build_image(
    d: PrivateDaemon,
    tag: str,
    dockerfile: str,
    *,
    buildkit: bool = False,
    files: Mapping[str, bytes] | None = None,
) -> str:
    """Build `dockerfile` as `tag` (classic builder unless `buildkit`) and return the image ID."""
    if buildkit and d.version == "20.10":
        raise ValueError("the scenario builds with BuildKit only on 26.1")
    ctx = d.base / "ctx" / re.sub(r"[^a-z0-9]+", "-", tag)
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).write_bytes(data)
    env = {"DOCKER_BUILDKIT": "1" if buildkit else "0"}
    d.docker("build", "--network", "none", "-t", tag, str(ctx), env=env)
    return d.image_id(tag)


def _wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise DaemonError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _json_logs_rotated(cdir: Path, cid: str) -> bool:
    log = cdir / f"{cid}-json.log"
    return Path(f"{log}.1.gz").is_file() and Path(f"{log}.2.gz").is_file() and not Path(f"{log}.1").exists()


def build_scenario(
    d: PrivateDaemon,
    *,
    layer_sparse_size: int = 1 * MIB,
    rw_sparse_size: int = 10 * MIB,
    plants: Collection[str] = PLANT_KINDS,
) -> Scenario:
    """Populate a fresh daemon with the objects dockerdu's tests check (about 30 s).

    Made on both versions (classic builder):
    - dd-base:1: `docker import` of `busybox_rootfs_tar`, CMD ["sh"].
    - dd-app:1, dd-app:2, dd-app:3: COMMON_STEPS (a LABEL and an ENV that make
      no layer; a layer with a 300 KiB file plus a hard link to it, /data/gone.txt
      and /data/opq/; a layer with a sparse file; a layer that deletes gone.txt
      (whiteout) and recreates /data/opq (opaque dir)), then one step of their own.
      dd-app:2 ends with a LABEL, so its last RUN layer is also the top of an
      intermediate image. The first dd-app:3 becomes dangling when the tag is rebuilt.
    - containers (all `--network none`): dd-running (dd-app:1, `sleep 3600`,
      `--stop-timeout 1`, volume dd-named at /named and an anonymous one at /anon;
      an exec then writes /rw.bin plus a hard link, a sparse /rw.sparse, deletes
      the image file /data/shared.link (a whiteout) and fills both volumes);
      dd-exited (dd-app:2, wrote /out.bin, exit 0); dd-created (dd-app:1, never
      started); dd-logs-json (json-file, max-size=1k, max-file=3, compress: its
      log rotates into .1.gz and .2.gz); dd-logs-local (`--log-driver local`).
    - dd-unused: a volume with a file in it that no container uses (the
      container that wrote it was removed).
    - for each kind in `plants`, a reserved image (PLANT_IMAGES) or container
      (PLANT_CONTAINERS) that `plant_leftovers` damages, leaving the rest intact.
    On 26.1 only: dd-bk:1 built with BuildKit (`--network none`): COPY from the
    context, a RUN, a RUN with a cache mount, so the build cache has records.
    """
    t0 = time.monotonic()
    version = d.version
    images: dict[str, str] = {}
    containers: dict[str, str] = {}
    container_images: dict[str, str] = {}

    tar = busybox_rootfs_tar(d.base / "rootfs")
    d.docker("import", "--change", 'CMD ["sh"]', str(tar), BASE)
    images[BASE] = d.image_id(BASE)

    common = COMMON_STEPS.format(
        base=BASE, shared=SHARED_FILE, sparse=layer_sparse_size, half=layer_sparse_size // 2
    )
    images[APP1] = build_image(
        d, APP1, common + f'RUN head -c {APP1_FILE} /dev/zero > /app1.bin\nCMD ["sh"]\n'
    )
    images[APP2] = build_image(
        d,
        APP2,
        common + f'RUN head -c {APP2_FILE} /dev/zero > /app2.bin\nLABEL org.dockerdu.app="2"\n',
    )
    dangling = build_image(d, APP3, common + "RUN echo v1 > /version.txt\n")
    images[APP3] = build_image(d, APP3, common + "RUN echo v2 > /version.txt\n")
    if dangling == images[APP3]:
        raise DaemonError("rebuilding dd-app:3 did not make a new image")

    def created(name: str, ref: str) -> None:
        containers[name] = d.container_id(name)
        container_images[name] = images[ref]

    d.docker("volume", "create", NAMED_VOLUME)
    d.docker(
        "run", "-d", "--name", RUNNING, "--network", "none", "--stop-timeout", "1",
        "-v", f"{NAMED_VOLUME}:/named", "-v", "/anon", APP1, "sleep", "3600",
    )  # fmt: skip
    created(RUNNING, APP1)
    d.docker(
        "exec",
        RUNNING,
        "sh",
        "-c",
        RUNNING_WRITES.format(
            rw=RUNNING_RW_FILE, sparse=rw_sparse_size, named=NAMED_VOLUME_FILE, anon=ANON_VOLUME_FILE
        ),
    )
    d.docker(
        "run", "--name", EXITED, "--network", "none", APP2,
        "sh", "-c", f"head -c {EXITED_RW_FILE} /dev/zero > /out.bin && echo exited-ok",
    )  # fmt: skip
    created(EXITED, APP2)
    d.docker("create", "--name", CREATED, "--network", "none", APP1, "true")
    created(CREATED, APP1)
    loop = (
        f"i=0; while [ $i -lt {LOG_LINES} ]; do "
        'echo "dockerdu {name} log line $i: 0123456789abcdefghijklmnopqrstuvwxyz"; '
        "i=$((i+1)); done"
    )
    d.docker(
        "run", "--name", LOGS_JSON, "--network", "none",
        "--log-driver", "json-file", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
        "--log-opt", "compress=true", BASE, "sh", "-c", loop.format(name="json-file"),
    )  # fmt: skip
    created(LOGS_JSON, BASE)
    d.docker(
        "run", "--name", LOGS_LOCAL, "--network", "none", "--log-driver", "local",
        BASE, "sh", "-c", loop.format(name="local"),
    )  # fmt: skip
    created(LOGS_LOCAL, BASE)
    d.docker("volume", "create", UNUSED_VOLUME)
    d.docker(
        "run", "--rm", "--network", "none", "-v", f"{UNUSED_VOLUME}:/v", BASE,
        "sh", "-c", f"head -c {UNUSED_VOLUME_FILE} /dev/zero > /v/unused.bin",
    )  # fmt: skip

    plant_images: dict[str, str] = {}
    for n, (kind, tag) in enumerate(PLANT_IMAGES.items()):
        if kind not in plants:
            continue
        images[tag] = build_image(
            d, tag, f"FROM {BASE}\nRUN head -c {4096 * (n + 1)} /dev/zero > /plant-{kind}.bin\n"
        )
        plant_images[kind] = tag
    plant_containers: dict[str, str] = {}
    for kind, name in PLANT_CONTAINERS.items():
        if kind not in plants:
            continue
        if kind == OrphanKind.container_layer_orphaned:
            # A `docker create` whose container dir never got written.
            d.docker("create", "--name", name, "--network", "none", BASE, "true")
        else:
            # A container that ran and exited, then was `docker rm`ed.
            d.docker("run", "--name", name, "--network", "none", BASE, "echo", "removed soon")
        created(name, BASE)
        plant_containers[kind] = name

    buildkit_image: str | None = None
    if version == "26.1":
        images[BK_IMAGE] = build_image(
            d,
            BK_IMAGE,
            f"FROM {BASE}\n"
            "COPY context.txt /context.txt\n"
            f"RUN head -c {BK_FILE} /dev/zero > /bk.bin\n"
            "RUN --mount=type=cache,target=/cache "
            f"head -c {BK_CACHE_FILE} /dev/zero > /cache/c.bin && cp /cache/c.bin /bk-cached.bin\n"
            'LABEL org.dockerdu.builder="buildkit"\n',
            buildkit=True,
            files={"context.txt": b"dockerdu build context\n"},
        )
        buildkit_image = BK_IMAGE

    cdir = d.root / "containers" / containers[LOGS_JSON]
    _wait_for(lambda: _json_logs_rotated(cdir, containers[LOGS_JSON]), 30, "json-file logs to rotate")

    anon = ""
    for m in d.api(f"/containers/{containers[RUNNING]}/json")["Mounts"]:
        if m.get("Destination") == "/anon":
            anon = str(m["Name"])
    if not anon:
        raise DaemonError("dd-running has no anonymous volume at /anon")

    layers: dict[str, tuple[str, ...]] = {}
    for image_id in [*images.values(), dangling]:
        diff_ids = d.api(f"/images/{image_id}/json")["RootFS"]["Layers"]
        layers[image_id] = tuple(chain_ids(diff_ids))
    cache_ids: dict[str, str] = {}
    for chain in layers.values():
        for chain_id in chain:
            cache_ids[chain_id] = _read_id(_layerdb(d.root) / "sha256" / _hex(chain_id) / "cache-id")
    mount_ids = {cid: _read_id(_layerdb(d.root) / "mounts" / cid / "mount-id") for cid in containers.values()}

    return Scenario(
        version=version,
        engine_version=d.docker_version(),
        images=images,
        dangling_image=dangling,
        layers=layers,
        cache_ids=cache_ids,
        containers=containers,
        container_images=container_images,
        mount_ids=mount_ids,
        volumes={"named": NAMED_VOLUME, "anonymous": anon, "unused": UNUSED_VOLUME},
        plant_images=plant_images,
        plant_containers=plant_containers,
        buildkit_image=buildkit_image,
        layer_sparse_size=layer_sparse_size,
        rw_sparse_size=rw_sparse_size,
        written={
            "shared_file": SHARED_FILE,
            "app1_file": APP1_FILE,
            "app2_file": APP2_FILE,
            "running_rw": RUNNING_RW_FILE + rw_sparse_size,
            "exited_rw": EXITED_RW_FILE,
            "named_volume": NAMED_VOLUME_FILE,
            "anon_volume": ANON_VOLUME_FILE,
            "unused_volume": UNUSED_VOLUME_FILE,
        },
        seconds=time.monotonic() - t0,
    )


# --------------------------------------------------------------------------- leftovers


@dataclass(frozen=True)
class Planted:
    """One planted leftover: `path` is relative to the data root.

    `orphan` is True for leftovers nothing references (safe to delete), False
    for damage to objects still in use (problems to report).
    """

    kind: str
    path: str
    orphan: bool


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _random_hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _random_link(rng: random.Random) -> str:
    """An overlay2 link name: 26 characters of base32 (overlay2 `generateID(idLength)`)."""
    return base64.b32encode(bytes(rng.getrandbits(8) for _ in range(26))).decode()[:26]


def _crc64_iso_table() -> list[int]:
    poly = 0xD800000000000000
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_ISO = _crc64_iso_table()


def _crc64_iso(data: bytes) -> bytes:
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = _CRC64_ISO[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return (crc ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def _tar_split(tar_bytes: bytes) -> bytes:
    """tar-split's JSON lines for a tar stream, gzipped: raw header segments plus per-file entries."""
    lines: list[dict[str, Any]] = []
    pos = 0
    prev_end = 0
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for m in tar.getmembers():
            seg = tar_bytes[prev_end : m.offset_data]
            lines.append({"type": 2, "payload": base64.b64encode(seg).decode(), "position": pos})
            pos += 1
            entry: dict[str, Any] = {"type": 1, "name": m.name, "payload": None, "position": pos}
            if m.size > 0:
                data = tar_bytes[m.offset_data : m.offset_data + m.size]
                entry = {
                    "type": 1,
                    "name": m.name,
                    "size": m.size,
                    "payload": base64.b64encode(_crc64_iso(data)).decode(),
                    "position": pos,
                }
            lines.append(entry)
            pos += 1
            prev_end = m.offset_data + m.size
    tail = tar_bytes[prev_end:]
    lines.append({"type": 2, "payload": base64.b64encode(tail).decode(), "position": pos})
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    return gzip.compress(text.encode(), mtime=0)


def _layer_tar(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(n).parent) for n in files} - {"."})
        for name in dirs:
            ti = tarfile.TarInfo(name + "/")
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = FIXED_MTIME
            tar.addfile(ti)
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = FIXED_MTIME
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _write_id(path: Path, value: str, mode: int = 0o644) -> None:
    """Write an ID file the way Docker does: the bare value, no trailing newline."""
    path.write_text(value)
    path.chmod(mode)


def _make_layer_dir(
    root: Path, cache_id: str, parent_cache_id: str | None, files: Mapping[str, bytes], rng: random.Random
) -> str:
    """Create `overlay2/<cache_id>` as overlay2's Create plus ApplyDiff leave it; return its link.

    Create: the dir (0710), `diff/` (0755), a fresh link name in `link` and the
    symlink `l/<LINK>` -> `../<id>/diff`; with a parent also `work/` (0700),
    `lower` (`l/<parent link>` then the parent's own lower) and an empty
    `committed` file in the parent. ApplyDiff then untars the files into diff/.
    """
    o2 = root / STORAGE_DRIVER
    layer = o2 / cache_id
    layer.mkdir(mode=0o710)
    layer.chmod(0o710)
    diff = layer / "diff"
    diff.mkdir(mode=0o755)
    link = _random_link(rng)
    (o2 / "l").mkdir(mode=0o700, exist_ok=True)
    os.symlink(f"../{cache_id}/diff", o2 / "l" / link)
    _write_id(layer / "link", link)
    if parent_cache_id is not None:
        (layer / "work").mkdir(mode=0o700)
        parent = o2 / parent_cache_id
        committed = parent / "committed"
        if not committed.exists():
            committed.touch(mode=0o600)
        lower = f"l/{_read_id(parent / 'link')}"
        if (parent / "lower").exists():
            lower += ":" + _read_id(parent / "lower")
        _write_id(layer / "lower", lower)
    for rel, data in files.items():
        target = diff / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(data)
        target.chmod(0o644)
    return link


def _remove_layer_dir(root: Path, cache_id: str) -> None:
    """What overlay2's Driver.Remove does: delete `l/<link>` first, then the dir."""
    layer = root / STORAGE_DRIVER / cache_id
    link = layer / "link"
    if link.exists():
        (root / STORAGE_DRIVER / "l" / _read_id(link)).unlink(missing_ok=True)
    shutil.rmtree(layer)


def _untag(root: Path, tag: str) -> None:
    """Remove `tag` from repositories.json, dropping the repository when it empties."""
    path = root / "image" / STORAGE_DRIVER / "repositories.json"
    data = json.loads(path.read_text())
    repo = tag.rsplit(":", 1)[0]
    repos: dict[str, dict[str, str]] = data["Repositories"]
    repos.get(repo, {}).pop(tag, None)
    if repo in repos and not repos[repo]:
        del repos[repo]
    path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True))


def _forget_image(root: Path, tag: str, image_id: str) -> None:
    """What `docker rmi` does before it releases the layers: untag, then delete the imagedb entries."""
    _untag(root, tag)
    (_imagedb(root) / "content" / "sha256" / _hex(image_id)).unlink()
    shutil.rmtree(_imagedb(root) / "metadata" / "sha256" / _hex(image_id), ignore_errors=True)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def plant_leftovers(
    root: Path,
    scenario: Scenario,
    *,
    kinds: Collection[str] | None = None,
    rng: random.Random | None = None,
) -> list[Planted]:
    """Plant crash leftovers and damage into a data root whose daemon is stopped.

    Each kind uses its own reserved image or container (or new random objects),
    so the scenario's other objects stay intact. In order:

    Orphans (nothing references them; `orphan=True`):
    - layer_dir_unreferenced `overlay2/<id>`: a new dir with a random 64-hex ID
      made as overlay2's Create + ApplyDiff leave it (diff/ with a file, link,
      l/<LINK>, lower and work/ since its parent is dd-base:1's layer), with no
      layerdb entry and no write set. Realistic: the daemon was killed right
      after driver.Create/untar, or the layerdb/tmp write set was cleared by hand.
    - layer_unreferenced `image/overlay2/layerdb/sha256/<chain>`: the reserved
      image dd-plant-unref:1 is untagged and its imagedb content and metadata are
      deleted, as `docker rmi` does before it releases the layers; its unique top
      layer stays whole (layerdb dir + overlay2 dir), as after a crash in between.
      The daemon loads such a layer and keeps it forever.
    - container_layer_orphaned `image/overlay2/layerdb/mounts/<container id>`: the
      reserved, never started container dd-plant-mountonly loses `containers/<id>`.
      Realistic: `docker create` makes the RW layer (mount dir, `<mount-id>` and
      `<mount-id>-init`) before it creates the container dir, so a crash in
      between leaves exactly this.
    - container_dir_orphaned `containers/<id>`: the reserved exited container
      dd-plant-dironly gets what an interrupted `docker rm` leaves: config.v2.json
      rewritten with State.Dead and State.RemovalInProgress (rm checkpoints that
      first), then the RW layer released (driver.Remove of `<mount-id>` and
      `<mount-id>-init`, each removing its l/ link first, then the
      `layerdb/mounts/<id>` dir), and the crash before the container dir goes.
    - link_broken `overlay2/l/<LINK>`: a symlink `../<random 64 hex>/diff` whose
      target does not exist, as left when a layer dir is deleted by hand.
    - layerdb_tmp `image/overlay2/layerdb/tmp/write-set-<9 digits>`: what a crash
      in layer registration leaves (Create, untar, write set filled, no rename):
      `tar-split.json.gz`, `size`, `parent`, `diff` and `cache-id`, whose cache-id
      names a new `overlay2/<id>` (with its l/ link) made for it. That overlay2
      dir belongs to this orphan and is not listed separately.
    - layer_removing `image/overlay2/layerdb/sha256/<chain>-<random 64 hex>-removing`:
      the reserved image dd-plant-removing:1 is forgotten as for
      layer_unreferenced, then its top layer's layerdb dir is renamed the way
      layerStore.deleteLayer does before driver.Remove; the crash comes before the
      driver removal, so `overlay2/<cache-id>` (and its l/ link) stays. The
      overlay2 dir belongs to this orphan. A daemon removes both at its next
      clean shutdown.

    Problems (objects still in use are damaged; `orphan=False`):
    - layer_dir_missing `overlay2/<cache id>`: the top layer of the tagged image
      dd-plant-nodir:1 loses its overlay2 dir and its l/ link (as a hand cleanup
      through the driver would); its layerdb entry stays.
    - image_layer_missing `image/overlay2/layerdb/sha256/<chain>`: the top layer
      of dd-plant-nolayer:1 (unique to it) loses its layerdb dir and its overlay2
      dir with the l/ link; the image stays tagged with an incomplete chain (the
      daemon then skips the image: "not restoring image").
    - link_missing `overlay2/l/<LINK>`: the l/ symlink of dd-plant-nolink:1's top
      layer is deleted (an incomplete copy of the root, or a hand cleanup of
      links); the layer's `link` file still names it. Repair, never delete.
    - metadata_unreadable `image/overlay2/imagedb/content/sha256/<image hex>`: the
      config of dd-plant-badcfg:1 is truncated to half its length (a torn copy
      or a corrupted disk). Its diff_ids cannot be read, so its layers (the
      unique top one included) must not be called orphans. Since any
      unreferenced layer might then be that image's, a careful scanner also
      holds back layer_unreferenced in the same root: plant metadata_unreadable
      separately (`kinds=`) when a test expects layer_unreferenced to be found.
    """
    rng = rng or random.Random()
    wanted = list(PLANT_KINDS if kinds is None else kinds)
    unknown = set(wanted) - set(PLANT_KINDS)
    if unknown:
        raise ValueError(f"unknown plant kinds: {sorted(unknown)}")
    layerdb = _layerdb(root)
    o2 = root / STORAGE_DRIVER
    base_top = scenario.layers[scenario.images[BASE]][-1]
    base_cache = scenario.cache_ids[base_top]
    planted: list[Planted] = []

    def reserved_image(kind: str) -> tuple[str, str, str, str]:
        tag = scenario.plant_images.get(kind)
        if tag is None:
            raise ValueError(f"the scenario reserved no image for {kind}")
        image_id = scenario.images[tag]
        top = scenario.layers[image_id][-1]
        return tag, image_id, top, scenario.cache_ids[top]

    def reserved_container(kind: str) -> tuple[str, str]:
        name = scenario.plant_containers.get(kind)
        if name is None:
            raise ValueError(f"the scenario reserved no container for {kind}")
        cid = scenario.containers[name]
        return cid, scenario.mount_ids[cid]

    for kind in PLANT_KINDS:
        if kind not in wanted:
            continue
        orphan = kind in ORPHAN_KINDS
        if kind == OrphanKind.layer_dir_unreferenced:
            cache_id = _random_hex(rng)
            _make_layer_dir(root, cache_id, base_cache, {"dockerdu/unreferenced.bin": b"\0" * 8192}, rng)
            path = o2 / cache_id
        elif kind == OrphanKind.layer_unreferenced:
            tag, image_id, top, _ = reserved_image(kind)
            _forget_image(root, tag, image_id)
            path = layerdb / "sha256" / _hex(top)
        elif kind == OrphanKind.container_layer_orphaned:
            cid, _ = reserved_container(kind)
            shutil.rmtree(root / "containers" / cid)
            path = layerdb / "mounts" / cid
        elif kind == OrphanKind.container_dir_orphaned:
            cid, mount_id = reserved_container(kind)
            config_path = root / "containers" / cid / "config.v2.json"
            config = json.loads(config_path.read_text())
            config["State"]["Dead"] = True
            config["State"]["RemovalInProgress"] = True
            config_path.write_text(json.dumps(config, separators=(",", ":"), ensure_ascii=False))
            _remove_layer_dir(root, mount_id)
            _remove_layer_dir(root, f"{mount_id}-init")
            shutil.rmtree(layerdb / "mounts" / cid)
            path = root / "containers" / cid
        elif kind == OrphanKind.link_broken:
            (o2 / "l").mkdir(mode=0o700, exist_ok=True)
            path = o2 / "l" / _random_link(rng)
            os.symlink(f"../{_random_hex(rng)}/diff", path)
        elif kind == OrphanKind.layerdb_tmp:
            files = {"dockerdu/interrupted.bin": b"\0" * 12288}
            tar_bytes = _layer_tar(files)
            cache_id = _random_hex(rng)
            _make_layer_dir(root, cache_id, base_cache, files, rng)
            path = layerdb / "tmp" / f"write-set-{rng.randrange(10**9):09d}"
            path.parent.mkdir(mode=0o755, exist_ok=True)
            path.mkdir(mode=0o700)
            # Order of layerStore.registerWithDescriptor: applyTar writes the
            # tar-split, storeLayer the rest; tx.Commit would rename the dir.
            (path / "tar-split.json.gz").write_bytes(_tar_split(tar_bytes))
            (path / "tar-split.json.gz").chmod(0o644)
            _write_id(path / "size", str(sum(len(v) for v in files.values())))
            _write_id(path / "parent", base_top)
            _write_id(path / "diff", "sha256:" + hashlib.sha256(tar_bytes).hexdigest())
            _write_id(path / "cache-id", cache_id)
        elif kind == OrphanKind.layer_removing:
            tag, image_id, top, _ = reserved_image(kind)
            _forget_image(root, tag, image_id)
            path = layerdb / "sha256" / f"{_hex(top)}-{_random_hex(rng)}-removing"
            os.rename(layerdb / "sha256" / _hex(top), path)
        elif kind == ProblemKind.layer_dir_missing:
            _, _, _, cache_id = reserved_image(kind)
            _remove_layer_dir(root, cache_id)
            path = o2 / cache_id
        elif kind == ProblemKind.image_layer_missing:
            _, _, top, cache_id = reserved_image(kind)
            _remove_layer_dir(root, cache_id)
            path = layerdb / "sha256" / _hex(top)
            shutil.rmtree(path)
        elif kind == ProblemKind.link_missing:
            _, _, _, cache_id = reserved_image(kind)
            path = o2 / "l" / _read_id(o2 / cache_id / "link")
            path.unlink()
        elif kind == ProblemKind.metadata_unreadable:
            _, image_id, _, _ = reserved_image(kind)
            path = _imagedb(root) / "content" / "sha256" / _hex(image_id)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        else:  # pragma: no cover - PLANT_KINDS is exhaustive
            raise AssertionError(kind)
        planted.append(Planted(kind=kind, path=_rel(root, path), orphan=orphan))
    return planted


# --------------------------------------------------------------------------- containerd store

CONTAINERD_STORE_CONFIG: dict[str, Any] = {
    "storage-driver": "overlayfs",
    "features": {"containerd-snapshotter": True},
}
"""daemon.json of a daemon on the containerd image store (the 24.0+ feature; 29.0's default)."""


def containerd_scenario(d: PrivateDaemon, tar: Path) -> None:
    """The shared scenario on the containerd store: an imported base, two classic builds sharing
    a layer, a BuildKit build with a cache mount, a named and an anonymous volume, running,
    exited (with logs) and created containers."""
    d.docker("import", "--change", 'CMD ["sh"]', str(tar), BASE)
    common = f"FROM {BASE}\nRUN head -c {SHARED_FILE} /dev/zero > /shared.bin && ln /shared.bin /s.ln\n"
    build_image(d, APP1, common + f"RUN head -c {APP1_FILE} /dev/zero > /app1.bin\n")
    build_image(d, APP2, common + f"RUN head -c {APP2_FILE} /dev/zero > /app2.bin\nLABEL x=2\n")
    build_image(
        d,
        BK_IMAGE,
        f"FROM {BASE}\nCOPY c.txt /c.txt\nRUN head -c {BK_FILE} /dev/zero > /bk.bin\n"
        f"RUN --mount=type=cache,target=/cache head -c {BK_CACHE_FILE} /dev/zero > /cache/c.bin\n",
        buildkit=True,
        files={"c.txt": b"context\n"},
    )
    d.docker("volume", "create", NAMED_VOLUME)
    d.docker(
        "run", "-d", "--name", RUNNING, "--network", "none", "--stop-timeout", "1",
        "-v", f"{NAMED_VOLUME}:/named", "-v", "/anon", APP1, "sleep", "3600",
    )  # fmt: skip
    d.docker(
        "exec", RUNNING, "sh", "-c",
        f"head -c {RUNNING_RW_FILE} /dev/zero > /rw.bin && ln /rw.bin /rw.ln && rm /s.ln"
        f" && head -c {NAMED_VOLUME_FILE} /dev/zero > /named/n.bin",
    )  # fmt: skip
    d.docker(
        "run", "--name", EXITED, "--network", "none", APP2,
        "sh", "-c", f"head -c {EXITED_RW_FILE} /dev/zero > /out.bin; seq 1 300",
    )  # fmt: skip
    d.docker("create", "--name", CREATED, "--network", "none", APP1, "true")
    wait_for_ingests(d)


def wait_for_ingests(d: PrivateDaemon, timeout: float = 120) -> None:
    """Wait until the daemon's containerd has no write in progress.

    BuildKit records a build's history (namespace `moby_history`) after the build has
    returned; a daemon stopped meanwhile leaves that write as an ingest dir, a real
    leftover the tests would then find beside the planted ones.
    """
    where = d.containerd_root if d.system_containerd else d.root / "containerd/daemon"
    ingest = where / "io.containerd.content.v1.content/ingest"
    deadline = time.monotonic() + timeout
    while ingest.is_dir() and any(ingest.iterdir()):
        if time.monotonic() > deadline:
            raise AssertionError(f"writes still in progress after {timeout} s: {sorted(os.listdir(ingest))}")
        time.sleep(0.1)


def import_into_namespace(d: PrivateDaemon, namespace: str, tag: str, size: int) -> None:
    """An image only another client of the system containerd holds (a kubelet's `k8s.io`):
    built by Docker, saved, removed from Docker, imported (and unpacked) with `ctr`."""
    build_image(d, tag, f"FROM {BASE}\nRUN head -c {size} /dev/urandom > /ns.bin\n")
    archive = d.base / f"{namespace}.tar"
    d.docker("save", "-o", str(archive), tag)
    d.docker("rmi", tag)
    d.ctr(namespace, "images", "import", str(archive))
    wait_for_ingests(d)
