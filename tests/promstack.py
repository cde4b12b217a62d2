"""The real Prometheus stack for the tests: promtool, a private node_exporter and Prometheus.

Each server is started on 127.0.0.1 on a free port with its own files under a temp dir,
never a system-wide one, waited for by polling (with a generous bound, never a fixed
sleep), and stopped by its pid. Also: the metric and label names a PromQL expression uses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest

PROMTOOL = Path("/usr/bin/promtool")
NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
PROMETHEUS = Path("/usr/bin/prometheus")
PACKAGES = {PROMTOOL: "prometheus", PROMETHEUS: "prometheus", NODE_EXPORTER: "prometheus-node-exporter"}
READY_SECONDS = 120.0
"""Bound on waiting for a server or a result: generous, as CI machines are slow and shared."""

T = TypeVar("T")


def require(binary: Path) -> Path:
    """`binary`, or skip the calling test; in CI (CI set), fail it (.ci/run installs it)."""
    if os.access(binary, os.X_OK):
        return binary
    found = shutil.which(binary.name)
    if found:
        return Path(found)
    reason = f"{binary} is missing (Debian package {PACKAGES[binary]})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: required in CI (.ci/run installs it)")
    pytest.skip(reason)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """promtool with `args`, its output captured."""
    return subprocess.run(
        [str(require(PROMTOOL)), *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of a GET over loopback; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def poll(what: str, check: Callable[[], T | None], alive: Callable[[], str | None]) -> T:
    """`check()`'s first result that is not None, polled until READY_SECONDS have passed.

    `alive()` returns why the server is gone (then fail at once), or None.
    """
    end = time.monotonic() + READY_SECONDS
    while True:
        result = check()
        if result is not None:
            return result
        gone = alive()
        if gone is not None:
            raise AssertionError(f"{what}: {gone}")
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {READY_SECONDS:g} s")
        time.sleep(0.2)


class Server:
    """One server process on 127.0.0.1:<free port>, logging to a file in `workdir`."""

    def __init__(self, binary: Path, workdir: Path, args: Callable[[int], list[str]], ready: str) -> None:
        self.binary = require(binary)
        self.workdir = workdir
        self.args = args
        self.ready_path = ready
        self.log = workdir / f"{binary.name}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _gone(self) -> str | None:
        if self.proc is None or self.proc.poll() is None:
            return None
        tail = self.log.read_text(errors="replace")[-3000:]
        return f"{self.binary.name} exited with {self.proc.returncode}:\n{tail}"

    def start(self) -> Server:
        # A free port can be taken between the probe and the bind: then try another.
        for _attempt in range(5):
            self.port = free_port()
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [str(self.binary), *self.args(self.port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                )  # fmt: skip
            try:
                poll(
                    f"{self.binary.name} on {self.url}",
                    lambda: True if http_get(self.url + self.ready_path)[0] == 200 else None,
                    self._gone,
                )
                return self
            except AssertionError:
                gone = self._gone()
                self.stop()
                if gone is None or "address already in use" not in gone:
                    raise
        raise AssertionError(f"{self.binary.name}: no free port after 5 attempts")

    def alive(self) -> str | None:
        """Why the server is gone, or None while it runs."""
        return self._gone()

    def stop(self) -> None:
        """Stop the process by its pid: SIGTERM, then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def node_exporter(workdir: Path, textfile_dir: Path) -> Server:
    """node_exporter with only its textfile collector, reading `textfile_dir`."""
    return Server(
        NODE_EXPORTER,
        workdir,
        lambda port: [
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfile_dir}",
        ],
        "/metrics",
    )


def prometheus(workdir: Path, target: str, rule_files: Iterable[Path]) -> Server:
    """Prometheus scraping `target` (job `node`) every second, evaluating `rule_files` every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    return Server(
        PROMETHEUS,
        workdir,
        lambda port: [
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        "/-/ready",
    )


def api(server: Server, path: str, **params: str) -> Any:
    """The `data` of a Prometheus HTTP API answer (status success), else None."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    status, body = http_get(f"{server.url}/api/v1/{path}{query}")
    if status != 200:
        return None
    doc = json.loads(body)
    return doc["data"] if doc.get("status") == "success" else None


# PromQL names ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<matchers>\{[^}]*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<other>\s+|.)
    """,
    re.VERBOSE,
)
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                 "bottomk", "topk", "quantile"}  # fmt: skip
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", *_LABEL_LISTS, *_AGGREGATIONS}
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and the label names `expr` uses (in matchers and label lists)."""
    metrics: set[str] = set()
    labels: set[str] = set()
    tokens = [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(expr)]
    tokens = [(k, v) for k, v in tokens if not (k == "other" and v.isspace())]
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "matchers":
            labels |= set(_MATCHER.findall(text[1:-1]))
        elif kind == "name" and text in _LABEL_LISTS and following == "(":
            j = i + 2
            while j < len(tokens) and tokens[j][1] != ")":
                if tokens[j][0] == "name":
                    labels.add(tokens[j][1])
                j += 1
            i = j
        elif kind == "name" and following != "(" and text.lower() not in _KEYWORDS:
            metrics.add(text)
        i += 1
    return metrics, labels
