"""Live daemon races: dockerdu against a root a real daemon keeps changing (tests/race.py).

For DOCKERDU_RACE_SECONDS (60 by default) per Docker version, a private daemon
creates, runs, commits, builds and removes containers, images and volumes while
dockerdu reports on its root again and again. Every run must exit 0 with no
traceback, say the daemon was running, and report no orphan (the churn crashes
nothing, so any orphan would be a false one) and no problem. For a run of several
minutes: `python -m tests.race --seconds 300`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import race
from tests import realdocker as rd

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECONDS = float(os.environ.get("DOCKERDU_RACE_SECONDS", "60"))


@pytest.mark.parametrize("version", rd.VERSIONS)
def test_race_against_a_busy_daemon(version: rd.Version, tmp_path: Path) -> None:
    rd.require_docker(version)
    with rd.PrivateDaemon(version, tmp_path / "d") as d:
        result = race.race(d, SECONDS)
        assert d.running, "the daemon died during the race"
    print(result.summary())
    assert result.ok, result.summary()
    assert result.final is not None and not result.final.failures
    kinds = {k.split(" ")[0] for k in result.ops}
    assert {"run", "create", "commit", "build", "rmi", "rm", "volume"} <= kinds, result.summary()
    assert not rd.mounts_under(tmp_path)
