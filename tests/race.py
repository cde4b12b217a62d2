"""Live-daemon race driver: a busy private dockerd, and dockerdu reports taken meanwhile.

Background threads churn a real daemon through everything that creates or removes
layers, mounts, container dirs and volumes: `docker run` of short-lived containers
that write files (with and without a volume), `docker create`/`rm`, `docker commit`
then `rmi`, classic `docker build` FROM an imported busybox image then `rmi`, and
`volume create`/`rm`. The calling thread meanwhile runs `dockerdu report --format json
--root ROOT` as a subprocess again and again, and checks every run:

- exit code 0 and no traceback on stderr;
- one JSON document whose `docker.daemon_running` is true and whose notes say so;
- no orphan at all: the churn never crashes the daemon, so everything unreferenced
  is in flight, and any orphan reported is a false one;
- problems only of the kinds a live root produces while it changes (BENIGN_PROBLEMS).

Typical use::

    with rd.PrivateDaemon("20.10", tmp) as d:
        result = race(d, seconds=60)
    assert result.ok, result.summary()

`python -m tests.race [--seconds N] [--version 20.10|26.1] [--base DIR]` runs one race
from the command line (as root) and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import realdocker as rd

REPO = Path(__file__).resolve().parent.parent
RACE_BASE = "dd-race-base:1"

BENIGN_PROBLEMS: frozenset[str] = frozenset()
"""Problem kinds a root produces while a daemon changes it under the scan (none so far)."""


@dataclass
class RunResult:
    """One dockerdu run against the live root, and what was wrong with it."""

    seconds: float
    returncode: int
    orphans: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    failures: list[str]


@dataclass
class RaceResult:
    """Everything a race did and saw."""

    version: str
    seconds: float = 0.0
    runs: list[RunResult] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    """Daemon operations that succeeded, by kind."""
    op_errors: list[str] = field(default_factory=list)
    """Daemon operations that failed (the churn's own trouble, not dockerdu's)."""
    final: RunResult | None = None
    """A report taken after the churn stopped, with the daemon still running."""

    @property
    def failures(self) -> list[str]:
        """Every failed check, one line each."""
        out = [f"run {i}: {f}" for i, r in enumerate(self.runs) for f in r.failures]
        if self.final is not None:
            out += [f"final run: {f}" for f in self.final.failures]
        return out

    @property
    def false_orphans(self) -> int:
        """Orphans reported over all runs (each one is false: the churn makes none)."""
        return sum(len(r.orphans) for r in self.runs) + (len(self.final.orphans) if self.final else 0)

    @property
    def ok(self) -> bool:
        """No failed check, and the churn did enough to make the race mean something."""
        return not self.failures and len(self.runs) >= 2 and sum(self.ops.values()) >= 10

    def summary(self) -> str:
        """A few lines for a test failure or the command line."""
        problems: Counter[str] = Counter(p["kind"] for r in self.runs for p in r.problems)
        durations = sorted(r.seconds for r in self.runs) or [0.0]
        lines = [
            f"race on Docker {self.version}: {self.seconds:.0f} s, {len(self.runs)} dockerdu runs "
            f"(median {durations[len(durations) // 2]:.2f} s, max {durations[-1]:.2f} s), "
            f"{sum(self.ops.values())} daemon operations, {self.false_orphans} false orphans",
            "operations: " + ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items())),
            "problems seen: " + (", ".join(f"{k} {v}" for k, v in sorted(problems.items())) or "none"),
            f"daemon operation errors: {len(self.op_errors)}",
            *self.op_errors[:5],
            f"failed checks: {len(self.failures)}",
            *self.failures[:30],
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the churn


class Churn:
    """Background threads that keep a daemon busy until `stop()`."""

    def __init__(self, d: rd.PrivateDaemon, result: RaceResult) -> None:
        self.d = d
        self.result = result
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._ctx = d.base / "race-ctx"

    def _op(self, kind: str, *args: str, env: dict[str, str] | None = None) -> bool:
        try:
            self.d.docker(*args, env=env, timeout=120)
        except (rd.DockerError, subprocess.TimeoutExpired) as e:
            with self._lock:
                self.result.op_errors.append(f"{kind}: {str(e).splitlines()[0][:300]}")
            return False
        with self._lock:
            self.result.ops[kind] += 1
        return True

    def _loop(self, name: str, body: Callable[[int], None]) -> None:
        n = 0
        while not self._stop.is_set():
            body(n)
            n += 1

    def _run(self, n: int) -> None:
        # A short-lived container writing files into its writable layer, then removed.
        name = f"race-run-{n}"
        if self._op("run", "run", "--name", name, "--network", "none", RACE_BASE, "sh", "-c",
                    f"head -c {4096 * (n % 16 + 1)} /dev/urandom > /w.bin && mkdir -p /d && "
                    "for i in 1 2 3 4 5 6 7 8; do echo $i > /d/f$i; done"):  # fmt: skip
            self._op("rm", "rm", name)

    def _create(self, n: int) -> None:
        name = f"race-create-{n}"
        if self._op("create", "create", "--name", name, "--network", "none", RACE_BASE, "true"):
            self._op("rm", "rm", name)

    def _commit(self, n: int) -> None:
        name = f"race-commit-{n}"
        tag = f"race-commit:{n}"
        if not self._op("run", "run", "--name", name, "--network", "none", RACE_BASE, "sh", "-c",
                        f"head -c {8192 * (n % 8 + 1)} /dev/urandom > /c.bin"):  # fmt: skip
            return
        if self._op("commit", "commit", name, tag):
            self._op("rmi", "rmi", tag)
        self._op("rm", "rm", name)

    def _build(self, n: int) -> None:
        ctx = self._ctx / f"b{n % 2}"
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(
            f"FROM {RACE_BASE}\n"
            f"RUN head -c {16384 + n} /dev/urandom > /b1.bin\n"
            f"RUN mkdir /b && echo {n} > /b/n && head -c 4096 /dev/urandom > /b/r.bin\n"
        )
        tag = f"race-build:{n}"
        if self._op(
            "build", "build", "--network", "none", "-q", "-t", tag, str(ctx), env={"DOCKER_BUILDKIT": "0"}
        ):
            self._op("rmi", "rmi", tag)

    def _volume(self, n: int) -> None:
        vol = f"race-vol-{n}"
        if not self._op("volume create", "volume", "create", vol):
            return
        self._op("run", "run", "--rm", "--network", "none", "-v", f"{vol}:/v", RACE_BASE, "sh", "-c",
                 "head -c 10000 /dev/urandom > /v/data.bin")  # fmt: skip
        self._op("volume rm", "volume", "rm", vol)

    def start(self) -> None:
        """Import the base image, then start one thread per kind of churn."""
        tar = rd.busybox_rootfs_tar(self.d.base / "race-rootfs")
        self.d.docker("import", "--change", 'CMD ["sh"]', str(tar), RACE_BASE)
        for name, body in (
            ("run", self._run),
            ("create", self._create),
            ("commit", self._commit),
            ("build", self._build),
            ("volume", self._volume),
        ):
            t = threading.Thread(target=self._loop, args=(name, body), name=f"churn-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Let every thread finish its current step and join them."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=300)


# --------------------------------------------------------------------------- dockerdu runs


# `python -m dockerdu` with the in-flight window set from argv[1]: to see what the second
# read and the state rules catch alone, without the age rule hiding it.
WINDOW_MAIN = (
    "import sys; import dockerdu.index as index; index.IN_FLIGHT_SECONDS = float(sys.argv.pop(1)); "
    "from dockerdu.cli import main; main()"
)


def run_dockerdu(
    root: Path, cache_dir: Path, *, expect_daemon: bool = True, window: float | None = None
) -> RunResult:
    """`dockerdu report --format json --root ROOT` as a subprocess, and its checks.

    `window` sets dockerdu's in-flight window (IN_FLIGHT_SECONDS) for the run.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "DOCKERDU_CACHE_DIR": str(cache_dir)}
    start = ["-m", "dockerdu"] if window is None else ["-c", WINDOW_MAIN, str(window)]
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, *start, "report", "--format", "json", "--root", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
        cwd=str(REPO),
    )
    seconds = time.monotonic() - t0
    failures: list[str] = []
    if r.returncode != 0:
        failures.append(f"exit code {r.returncode}: {r.stderr.strip()[-2000:]}")
    if "Traceback" in r.stderr:
        failures.append(f"traceback on stderr: {r.stderr.strip()[-2000:]}")
    orphans: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        failures.append(f"stdout is not JSON: {r.stdout[:200]!r}")
        return RunResult(seconds, r.returncode, orphans, problems, failures)
    orphans = list(doc.get("orphans") or [])
    problems = list(doc.get("problems") or [])
    running = bool(doc.get("docker", {}).get("daemon_running"))
    if running != expect_daemon:
        failures.append(f"docker.daemon_running is {running}")
    if expect_daemon and not any("running during the scan" in n for n in doc.get("notes") or []):
        failures.append(f"no note says the daemon was running: {doc.get('notes')}")
    failures += [f"false orphan {o['kind']} {o['path']}: {o['reason']}" for o in orphans]
    failures += [
        f"problem {p['kind']} {p['path']}: {p['reason']}"
        for p in problems
        if p["kind"] not in BENIGN_PROBLEMS
    ]
    return RunResult(seconds, r.returncode, orphans, problems, failures)


def race(
    d: rd.PrivateDaemon,
    seconds: float,
    *,
    log: Callable[[str], None] | None = None,
    window: float | None = None,
) -> RaceResult:
    """Churn `d` for `seconds` while dockerdu reports on its root again and again.

    `window` overrides dockerdu's in-flight window (see run_dockerdu); 0 makes everything
    the churn made count as old, so only the second read and Docker's states can tell
    what is in flight.
    """
    result = RaceResult(d.version)
    churn = Churn(d, result)
    cache_dir = Path(tempfile.mkdtemp(prefix="dd-race-cache-", dir=str(d.base)))
    t0 = time.monotonic()
    churn.start()
    try:
        while time.monotonic() - t0 < seconds:
            run = run_dockerdu(d.root, cache_dir, window=window)
            result.runs.append(run)
            if log is not None:
                ops = sum(result.ops.values())
                log(
                    f"{time.monotonic() - t0:6.0f}s run {len(result.runs)}: rc {run.returncode} "
                    f"{run.seconds:.2f}s, {ops} ops, {len(run.orphans)} orphans, "
                    f"{len(run.problems)} problems{': ' + run.failures[0][:300] if run.failures else ''}"
                )
            if not d.running:
                result.runs[-1].failures.append("the daemon died during the race")
                break
    finally:
        churn.stop()
    result.seconds = time.monotonic() - t0
    if d.running:
        result.final = run_dockerdu(d.root, cache_dir, window=window)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run one race from the command line and print its summary; exit 1 on a failed check."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--version", choices=rd.VERSIONS, default="20.10")
    p.add_argument("--base", type=Path, default=None, help="where the daemon lives (default: a temp dir)")
    p.add_argument("--window", type=float, default=None, help="dockerdu's in-flight window, in seconds")
    args = p.parse_args(argv)
    reason = rd.docker_unavailable(args.version)
    if reason:
        print(f"cannot race: {reason}", file=sys.stderr)
        return 2
    base = args.base or Path(tempfile.mkdtemp(prefix="dd-race-"))
    with rd.PrivateDaemon(args.version, base) as d:
        result = race(d, args.seconds, log=lambda line: print(line, flush=True), window=args.window)
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
