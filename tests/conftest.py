"""Shared fixtures: small Docker roots built in a temp dir, and du as the referee."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockerdu.locate import Location
from dockerdu.report import Report
from dockerdu.scan import build_report
from tests.rootbuilder import RootBuilder


def du(*paths: Path) -> int:
    """Allocated bytes of `paths` together, a hard-linked inode once: `du -scx -B1`."""
    out = subprocess.run(
        ["du", "-scx", "-B1", "--", *map(str, paths)], check=True, capture_output=True, text=True
    ).stdout
    return int(out.splitlines()[-1].split()[0])


def scan(root: Path) -> Report:
    """Report on `root` as `dockerdu report --root` would, with no daemon."""
    return build_report(Location(root, "--root", None))


@pytest.fixture
def builder(tmp_path: Path) -> RootBuilder:
    return RootBuilder(tmp_path / "docker")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the layer cache of CLI runs in a temp dir, never in /var/cache."""
    monkeypatch.setenv("DOCKERDU_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
