"""The report in a real pseudo-terminal (tmux, a fixed size): every line fits, no escape codes."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rootbuilder import RootBuilder
from tests.test_tables import TAGS, long_root

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None and not os.environ.get("CI"), reason="tmux is not installed (.ci/run installs it)"
)
BOUND = 300.0
"""Seconds to wait for a command's end marker: generous, since the machine may be loaded."""
END = re.compile(r"^__END__ (\d+)$", re.MULTILINE)
ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Terminal:
    """A private tmux server with one pane of a fixed size; commands run in it one at a time."""

    def __init__(self, tmp: Path, width: int) -> None:
        self.socket = tmp / f"tmux-{width}.sock"
        self.width = width
        self.env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        self.env["TERM"] = "xterm-256color"
        self.n = 0

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        return subprocess.run(
            [TMUX, "-S", str(self.socket), *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def run(self, command: str, *, escapes: bool = False) -> tuple[int, str]:
        """Run `command` in a fresh window of the pane's size; its exit code and what the pane shows."""
        self.n += 1
        name = f"w{self.n}"
        script = f"{command}; rc=$?; echo; echo __END__ $rc; exec sleep 3600"
        if self.n == 1:
            self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-n", name, "-x", str(self.width),
                      "-y", "50", "sh", "-c", script)  # fmt: skip
            self.tmux("set-option", "-g", "history-limit", "10000")
        else:
            self.tmux("new-window", "-t", "t", "-n", name, "sh", "-c", script)
        deadline = time.monotonic() + BOUND
        while True:
            # -J joins lines the terminal wrapped: a line wider than the pane shows whole.
            text = self.tmux(
                "capture-pane", "-p", "-J", "-S", "-", "-t", f"t:{name}", *(["-e"] if escapes else [])
            )
            found = END.search(ESCAPE.sub("", text))
            if found:
                return int(found.group(1)), text[: text.rfind("__END__")]
            assert time.monotonic() < deadline, f"no end marker after {BOUND}s: {text[-500:]}"
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run([TMUX or "tmux", "-S", str(self.socket), "kill-server"], env=self.env, check=False)


@pytest.fixture
def root(builder: RootBuilder) -> Path:
    return long_root(builder)["root"]  # type: ignore[no-any-return]


@pytest.fixture(params=[80, 120])
def terminal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Terminal]:
    t = Terminal(tmp_path, request.param)
    yield t
    t.close()


def _dockerdu(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "dockerdu", *args])


def test_report_orphans_and_image_fit_the_terminal(terminal: Terminal, root: Path) -> None:
    for args in (["report", "--no-cache"], ["orphans", "--no-cache"], ["image", TAGS[0]]):
        code, text = terminal.run(_dockerdu(*args, "--root", str(root)))
        assert code == 0, text
        lines = text.rstrip("\n").splitlines()
        assert len(lines) > 5
        widest = max(lines, key=len)
        assert len(widest) <= terminal.width, (args, widest)
        assert "\x1b" not in text


@pytest.mark.parametrize("width", [30, 80])
def test_the_progress_line_leaves_nothing_behind(width: int, root: Path, tmp_path: Path) -> None:
    """The progress line is on the terminal's stderr, one row even when narrow, then cleared."""
    terminal = Terminal(tmp_path, width)
    try:
        code, text = terminal.run(_dockerdu("report", "--no-cache", "--root", str(root)))
    finally:
        terminal.close()
    assert code == 0
    assert "files" not in text.split("Docker root", 1)[0] and "walked" not in text
    assert text.lstrip("\n").startswith("Docker root")


def test_not_a_terminal_gets_80_columns_and_no_escape_codes(
    terminal: Terminal, root: Path, tmp_path: Path
) -> None:
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    code, _ = terminal.run(f"{_dockerdu('report', '--no-cache', '--root', str(root))} >{out} 2>{err}")
    assert code == 0
    text = out.read_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "\x1b" not in text and err.read_text() == ""


def test_help_and_usage_errors_are_plain_on_a_terminal(terminal: Terminal) -> None:
    code, text = terminal.run(_dockerdu("report", "--help"), escapes=True)
    assert code == 0 and "Usage: " in text
    assert not ESCAPE.search(text), repr(text[:300])
    code, text = terminal.run(_dockerdu("audit", "--max-orphans", "5X"), escapes=True)
    assert code == 2
    assert text.strip() == "dockerdu: --max-orphans: '5X' is not a size (e.g. 10G, 500MiB, 1.5GB, 4096)"
