"""deploy/: the rules, the dashboard and the manifests, checked against what dockerdu emits.

The metric names come from real audits of real roots (sample_root, twice for the growth,
and a copy of it with a problem), never from a list kept by hand; promtool checks and
unit-tests the rules and parses every dashboard expression; the manifests are parsed and
the commands they run are run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dockerdu.render.prometheus import SCHEMA
from tests.promstack import promql_names, promtool

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "dockerdu.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "dockerdu.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dockerdu.json"
DAEMONSET = DEPLOY / "kubernetes" / "daemonset.yaml"
CRON = DEPLOY / "cron.d" / "dockerdu"
SERVICE = DEPLOY / "systemd" / "dockerdu-audit.service"
TIMER = DEPLOY / "systemd" / "dockerdu-audit.timer"
SAMPLE = REPO / "sample_root"
TARGET_LABELS = {"instance", "job"}
"""Labels Prometheus adds to every scraped sample: the host is the target."""


def audit_cmd(root: Path, work: Path, out: Path, *args: str) -> list[str]:
    """`dockerdu audit` of `root` with a private history, no config file, no cache."""
    (work / "empty.toml").touch()
    return [
        sys.executable, "-m", "dockerdu", "audit", "--root", str(root),
        "--history", str(work / "history.jsonl"), "--config", str(work / "empty.toml"), "--no-cache",
        "--format", "prometheus", "--output", str(out), *args,
    ]  # fmt: skip


def problem_root(dest: Path) -> Path:
    """A copy of sample_root with one layer's `l/` link gone (a `link_missing` problem) and
    an entry Docker does not make (under `other`)."""
    shutil.copytree(SAMPLE, dest, symlinks=True)
    link = sorted((dest / "overlay2" / "l").iterdir())[0]
    link.unlink()
    (dest / "backup.tar").write_bytes(b"x" * 10000)
    return dest


def metric_labels(text: str) -> dict[str, set[str]]:
    """Each metric of an exposition and the label names its samples carry."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every metric dockerdu emits on real roots, with its labels."""
    work = tmp_path_factory.mktemp("emitted")
    found: dict[str, set[str]] = {}
    for name, root in (("sample", SAMPLE), ("sample", SAMPLE), ("problem", problem_root(work / "root"))):
        out = work / f"{name}.prom"
        run = subprocess.run(audit_cmd(root, work, out), capture_output=True, text=True)
        assert (run.returncode, run.stderr) == (0, ""), run.stderr
        for metric, labels in metric_labels(out.read_text()).items():
            found.setdefault(metric, set()).update(labels)
    assert {"dockerdu_growth_bytes", "dockerdu_problems", "dockerdu_other_disk_bytes"} <= found.keys()
    return found


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


# The rules ------------------------------------------------------------------------------


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_and_one_that_does_not() -> None:
    tests = load(RULE_TESTS)
    assert tests["rule_files"] == [RULES.name]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        hosts = {h for s in case["input_series"] for h in re.findall(r'instance="([^"]+)"', s["series"])}
        for check in case.get("alert_rule_test", []):
            firing = {a["exp_labels"]["instance"] for a in check["exp_alerts"]}
            if firing:
                fires.add(check["alertname"])
            if not firing or hosts - firing:  # nothing fires, or a host in the input does not
                quiet.add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert fires == names
    assert quiet == names


def test_every_alert_waits_has_a_severity_and_names_the_host() -> None:
    for alert in alerts():
        assert re.fullmatch(r"\d+[mh]", alert["for"]), alert["alert"]
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}, alert["alert"]
        assert "{{ $labels.instance }}" in alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]
    log = next(a for a in alerts() if a["alert"] == "DockerduContainerLogLarge")
    assert "{{ $labels.container }}" in log["annotations"]["summary"]
    assert "{{ $labels.image }}" in log["annotations"]["summary"]
    full = next(a for a in alerts() if a["alert"] == "DockerduFilesystemFillingUp")
    assert "predict_linear(dockerdu_filesystem_free_bytes[" in full["expr"]


def test_rules_name_only_metrics_and_labels_dockerdu_emits(emitted: dict[str, set[str]]) -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    for rule in rules():
        metrics, labels = promql_names(rule["expr"])
        assert metrics, rule
        assert metrics <= set(emitted) | recorded, (rule["expr"], metrics - set(emitted) - recorded)
        known = set().union(*(emitted.get(m, set()) for m in metrics)) | TARGET_LABELS
        assert labels <= known, (rule["expr"], labels - known)


# The dashboard --------------------------------------------------------------------------


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in doc["templating"]["list"] if v["type"] == "query"]
    return exprs


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables given values; label_values() as its selector."""
    expr = re.sub(r"^label_values\((.+), *(\w+)\)$", r"\1", expr)
    return expr.replace("$instance", "host-a:9100")


def test_dashboard_uses_a_datasource_variable_and_no_hard_coded_names() -> None:
    text = DASHBOARD.read_text()
    doc = json.loads(text)
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["definition"] == "label_values(dockerdu_info, instance)"
    sources = [p["datasource"] for p in doc["panels"] if p["type"] != "row"]
    sources += [t["datasource"] for p in doc["panels"] for t in p.get("targets", [])]
    sources.append(variables["instance"]["datasource"])
    assert sources and all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources)
    assert "__inputs" not in doc
    for expr in dashboard_exprs():
        # A host is only ever the variable.
        assert set(re.findall(r'instance\s*=~?\s*"([^"]*)"', expr)) <= {"$instance"}, expr
    # Every panel of the host row shows that host only.
    rows = [i for i, p in enumerate(doc["panels"]) if p["type"] == "row"]
    assert len(rows) == 2
    for panel in doc["panels"][rows[1] + 1 :]:
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count('instance="$instance"') == len(promql_names(expr)[0]), expr
    ids = [p["id"] for p in doc["panels"]]
    assert len(set(ids)) == len(ids)
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in doc["panels"])
    titles = {p["title"] for p in doc["panels"]}
    assert {"Hosts by root disk", "Hosts by reclaimable", "Hosts by orphans", "Disk by category",
            "Top containers by logs", "Top containers by writable layer", "Top images"} <= titles  # fmt: skip


def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    doc = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": as_promql(e)} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    wrapped = tmp_path / "dashboard.rules.yml"
    wrapped.write_text(yaml.safe_dump(doc))
    result = promtool("check", "rules", str(wrapped))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_dashboard_names_only_metrics_and_labels_dockerdu_emits(emitted: dict[str, set[str]]) -> None:
    named: set[str] = set()
    for expr in dashboard_exprs():
        metrics, labels = promql_names(as_promql(expr))
        assert metrics, expr
        assert metrics <= set(emitted), (expr, metrics - set(emitted))
        known = set().union(*(emitted[m] for m in metrics)) | TARGET_LABELS
        assert labels <= known, (expr, labels - known)
        named |= metrics
    for legend in (t["legendFormat"] for p in json.loads(DASHBOARD.read_text())["panels"]
                   for t in p.get("targets", [])):  # fmt: skip
        assert set(re.findall(r"\{\{(\w+)\}\}", legend)) <= set().union(*emitted.values()) | TARGET_LABELS
    assert len(named) >= 15


# Manifests, units, cron -----------------------------------------------------------------


def daemonset() -> dict[str, Any]:
    doc = load(DAEMONSET)
    assert isinstance(doc, dict)
    return doc


def test_daemonset_mounts_the_roots_read_only_and_keeps_state_on_the_node() -> None:
    ds = daemonset()
    assert (ds["apiVersion"], ds["kind"]) == ("apps/v1", "DaemonSet")
    template = ds["spec"]["template"]
    pod = template["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert pod["hostPID"] is True  # to see the node's dockerd
    (container,) = pod["containers"]
    host = {v["name"]: v.get("hostPath", {}).get("path") for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for path in ("/var/lib/docker", "/var/lib/containerd", "/etc/docker", "/etc/containerd"):
        assert mounts[path]["readOnly"] is True, path
        assert host[mounts[path]["name"]] == path  # the same path as on the node
    for path in ("/var/lib/dockerdu", "/var/cache/dockerdu"):
        assert host[mounts[path]["name"]] == path and not mounts[path].get("readOnly")
    assert host[mounts["/textfile"]["name"]] == "/var/lib/node_exporter/textfile_collector"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert "nice -n 19 ionice -c 3 dockerdu audit" in container["args"][0]


def deploy_commands() -> dict[str, list[str]]:
    """The dockerdu command line of the cron file, the service and the DaemonSet."""
    cron = [line for line in CRON.read_text().splitlines() if line and not line.startswith("#")]
    assert len(cron) == 1
    fields = cron[0].split(None, 6)
    assert fields[5] == "root"
    service = re.search(r"^ExecStart=(.+)$", SERVICE.read_text(), re.M)
    assert service is not None
    script = daemonset()["spec"]["template"]["spec"]["containers"][0]["args"][0]
    line = re.search(r"^\s*(nice .*?dockerdu audit .*?)$", script.replace("\\\n", " "), re.M)
    assert line is not None
    return {"cron": shlex.split(fields[6]), "systemd": shlex.split(service.group(1)),
            "daemonset": shlex.split(line.group(1))}  # fmt: skip


def test_every_deploy_file_writes_into_the_textfile_directory() -> None:
    """The cron line and the service write where the unit may write and the DaemonSet mounts."""
    textfile = "/var/lib/node_exporter/textfile_collector"
    commands = deploy_commands()
    for where in ("cron", "systemd"):
        args = commands[where]
        assert args[args.index("--output") + 1] == f"{textfile}/dockerdu.prom", where
    assert f"ReadWritePaths=-{textfile}\n" in SERVICE.read_text()
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = commands["daemonset"]
    out = Path(args[args.index("--output") + 1])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(out.parent)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["hostPath"]["path"] == textfile
    assert args[args.index("--root") + 1] == "/var/lib/docker"


@pytest.mark.parametrize("where", ["cron", "systemd", "daemonset"])
def test_deploy_command_lines_write_the_metrics(where: str, tmp_path: Path) -> None:
    """Each shipped command, run as written on sample_root (paths under a temp dir), writes the file."""
    args = deploy_commands()[where]
    i = next(i for i, a in enumerate(args) if a.endswith("dockerdu"))
    assert args[i + 1] == "audit"
    out_index = args.index("--output") + 1
    assert Path(args[out_index]).name == "dockerdu.prom"
    args[out_index] = str(tmp_path / "dockerdu.prom")
    (tmp_path / "empty.toml").touch()
    history, config = tmp_path / "h.jsonl", tmp_path / "empty.toml"
    private = ["--root", str(SAMPLE), "--history", str(history), "--config", str(config)]
    cmd = [*args[:i], sys.executable, "-m", "dockerdu", *args[i + 1 :], *private]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode in (0, 1), run.stderr  # 1: a threshold of the line breached on this machine
    assert all(line.startswith("breach: ") for line in run.stdout.splitlines())
    families = metric_labels((tmp_path / "dockerdu.prom").read_text())
    assert "dockerdu_info" in families and "dockerdu_root_disk_bytes" in families


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is required in CI (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    exe = Path(sys.executable).parent / "dockerdu"
    assert exe.exists()
    for unit in (SERVICE, TIMER):
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/local/bin/dockerdu", str(exe)))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [m.group(1) for m in re.finditer(r"^```[a-z]*\n(.*?)^```$", text, re.M | re.S)]


@pytest.mark.parametrize("path", [CRON, SERVICE, TIMER, DAEMONSET], ids=lambda p: p.name)
def test_readme_shows_the_deploy_files_as_they_are(path: Path) -> None:
    where = path.relative_to(REPO)
    assert path.read_text() in readme_blocks(), f"README's block for {where} differs from the file"


# The metrics contract -------------------------------------------------------------------


def readme_metrics() -> dict[str, set[str]]:
    """The README's metric table: each name (braces expanded) and its labels."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Prometheus (`--format prometheus`)", 1)[1].split("\n### ", 1)[0]
    table: dict[str, set[str]] = {}
    for row in re.findall(r"^\| (`dockerdu_.*?) \|(.*)\|$", section, re.M):
        labels = {x for x in re.findall(r"`([^`]+)`", row[1]) if re.fullmatch(r"[a-z_]+", x)}
        for pattern in re.findall(r"`(dockerdu_[^`]+)`", row[0]):
            m = re.fullmatch(r"(.*)\{(.*)\}(.*)", pattern)
            names = [m.group(1) + part + m.group(3) for part in m.group(2).split(",")] if m else [pattern]
            table.update((name, labels) for name in names)
    return table


def test_readme_documents_every_metric_and_label(emitted: dict[str, set[str]]) -> None:
    assert readme_metrics() == emitted


def test_info_carries_schema_and_driver_and_no_host(emitted: dict[str, set[str]]) -> None:
    labels = {"root", "root_source", "store", "driver", "shared_size_rule", "version", "schema"}
    assert emitted["dockerdu_info"] == labels
    assert SCHEMA == "dockerdu.metrics/1"
    assert not any(labels & {"host", "hostname", "node", "instance"} for labels in emitted.values())
