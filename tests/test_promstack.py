"""The real path: dockerdu audit → textfile → node_exporter → Prometheus → rules → alert.

Private servers on loopback (tests/promstack.py), never a system-wide one: Debian's
`prometheus-node-exporter` with only its textfile collector on the directory the audit
writes, and Debian's `prometheus` scraping it with deploy/'s rules loaded.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.promstack import Server, api, http_get, node_exporter, poll, prometheus
from tests.test_deploy import RULES, SAMPLE, audit_cmd, dashboard_exprs, problem_root, rules

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def samples(text: str, prefix: str = "dockerdu_") -> set[Sample]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefix)
    }


def scrape(server: Server) -> str:
    status, body = http_get(server.url + "/metrics")
    assert status == 200
    return body


def write_audit(root: Path, work: Path) -> tuple[Path, set[Sample]]:
    """Audit `root` into `work/textfile/dockerdu.prom`: the directory, and the file's samples."""
    textfile = work / "textfile"
    textfile.mkdir(exist_ok=True)
    out = textfile / "dockerdu.prom"
    run = subprocess.run(audit_cmd(root, work, out), capture_output=True, text=True)
    assert (run.returncode, run.stderr) == (0, ""), run.stderr
    return textfile, samples(out.read_text())


def value(written: set[Sample], name: str, **labels: str) -> float:
    (found,) = [v for n, ls, v in written if n == name and dict(ls) == labels]
    return found


def test_node_exporter_serves_the_audit_unchanged(tmp_path: Path) -> None:
    write_audit(SAMPLE, tmp_path)
    textfile, written = write_audit(SAMPLE, tmp_path)  # the second: the growth since the first too
    assert {"dockerdu_info", "dockerdu_growth_bytes", "dockerdu_container_log_disk_bytes"} <= {
        s[0] for s in written
    }
    with node_exporter(tmp_path, textfile) as exporter:
        body = scrape(exporter)
    assert samples(body, "node_textfile_scrape_error") == {("node_textfile_scrape_error", (), 0.0)}
    assert samples(body) == written
    mtime = samples(body, "node_textfile_mtime_seconds")
    assert {dict(labels)["file"] for _, labels, _ in mtime} == {str(textfile / "dockerdu.prom")}


def test_node_exporter_reports_a_scrape_error_for_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: a file the collector cannot read sets the error to 1."""
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    (textfile / "dockerdu.prom").write_text('dockerdu_info{root="/x" 1\n')
    with node_exporter(tmp_path, textfile) as exporter:
        body = scrape(exporter)
    assert samples(body, "node_textfile_scrape_error") == {("node_textfile_scrape_error", (), 1.0)}
    assert samples(body) == set()


def test_prometheus_evaluates_the_rules_and_shows_a_real_roots_alert(tmp_path: Path) -> None:
    """A root with a problem: every rule evaluates without error, the problem's alert is active."""
    root = problem_root(tmp_path / "root")
    _, first = write_audit(root, tmp_path)
    # The second audit, with the growth since the first, in a later second: report times
    # are whole seconds, and a growth over 0 s has no rate per day.
    later = value(first, "dockerdu_report_timestamp_seconds") + 1
    while time.time() < later:
        time.sleep(later - time.time())
    textfile, written = write_audit(root, tmp_path)
    assert value(written, "dockerdu_growth_interval_seconds") > 0
    (kind,) = {dict(labels)["kind"] for name, labels, _ in written if name == "dockerdu_problems"}
    with node_exporter(tmp_path, textfile) as exporter:
        target = f"127.0.0.1:{exporter.port}"
        (tmp_path / "prom").mkdir()
        with prometheus(tmp_path / "prom", target, [RULES]) as server:

            def gone() -> str | None:
                return exporter.alive() or server.alive()

            def evaluated() -> list[dict[str, Any]] | None:
                data = api(server, "rules")
                if data is None:
                    return None
                found = [r for g in data["groups"] for r in g["rules"]]
                errors = [(r["name"], r["lastError"]) for r in found if r["health"] == "err"]
                assert not errors, errors
                return found if found and all(r["health"] == "ok" for r in found) else None

            assert len(poll("every rule evaluated", evaluated, gone)) == len(rules())

            def problem_alert() -> dict[str, Any] | None:
                data = api(server, "alerts")
                return next(
                    (a for a in data["alerts"] if a["labels"]["alertname"] == "DockerduProblem"), None
                ) if data else None  # fmt: skip

            alert = poll("the DockerduProblem alert", problem_alert, gone)
            assert alert["state"] in ("pending", "firing")  # `for: 10m`: pending within the test
            assert alert["labels"] == {
                "alertname": "DockerduProblem", "instance": target, "job": "node", "kind": kind,
                "severity": "warning",
            }  # fmt: skip
            assert alert["annotations"]["summary"] == f"1 {kind} problem(s) in the Docker root on {target}"

            def recorded() -> list[dict[str, Any]] | None:
                data = api(server, "query", query="instance:dockerdu_orphans_disk_bytes:sum")
                return data["result"] if data and data["result"] else None

            (orphans,) = poll("the orphans recording rule", recorded, gone)
            name = "instance:dockerdu_orphans_disk_bytes:sum"
            assert orphans["metric"] == {"__name__": name, "instance": target}
            assert float(orphans["value"][1]) == value(written, "dockerdu_disk_bytes", category="orphans") > 0
            # The other alerts stay quiet on this small, fresh root (the file system it is on
            # may be nearly full on a test machine).
            active = {a["labels"]["alertname"] for a in api(server, "alerts")["alerts"]}
            full = value(written, "dockerdu_filesystem_used_ratio") > 0.9
            allowed = {"DockerduProblem"} | ({"DockerduFilesystemAlmostFull"} if full else set())
            assert active <= allowed

            # Every dashboard expression, for this host, runs on the real data and has a result
            # (but the incomplete figures', which this root has none of).
            for expr in dashboard_exprs():
                query = expr.replace("$instance", target)
                if query.startswith("label_values("):
                    continue
                if "dockerdu_incomplete_figures) > 0" in query:
                    result = api(server, "query", query=query)
                    assert result is not None and result["result"] == [], query
                    continue

                def answered(query: str = query) -> list[Any] | None:
                    data = api(server, "query", query=query)
                    return data["result"] if data and data["result"] else None

                poll(f"a result for {query}", answered, gone)
