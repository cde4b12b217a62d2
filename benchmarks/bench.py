"""Benchmark dockerdu against du and Docker on a large real root.

Builds (with a private Docker 20.10 daemon, as the tests do) a root of at least
300,000 files across several images, containers and volumes, then prints, side by
side in one run: `du -sx`, `dockerdu report` cold (no cache), with its layer
cache, `--quick`, and `docker system df -v` (daemon running), as wall-time
ratios against `du -sx`, plus dockerdu's peak RSS. Every dockerdu run's figures
are checked identical to the uncached run's. dockerdu runs as `pip install`ed into a
fresh venv (`WORKDIR/venv`), as an operator would run it.

    python benchmarks/bench.py [--workdir DIR] [--files N] [--repeat K] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.realdocker import PrivateDaemon, busybox_rootfs_tar  # noqa: E402


def _tree_tar(path: Path, files: int, prefix: str, salt: int) -> Path:
    """A layer tarball of `files` small files in dirs of 500, some hard-linked, one sparse-ish."""
    with tarfile.open(path, "w") as tar:
        for d in range(0, files, 500):
            info = tarfile.TarInfo(f"{prefix}/d{d // 500}")
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            for i in range(d, min(d + 500, files)):
                body = f"{salt}:{i}\n".encode() * (1 + i % 7)
                info = tarfile.TarInfo(f"{prefix}/d{d // 500}/f{i}")
                info.size = len(body)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(body))
                if i % 1000 == 0:
                    link = tarfile.TarInfo(f"{prefix}/d{d // 500}/f{i}.hard")
                    link.type = tarfile.LNKTYPE
                    link.linkname = f"{prefix}/d{d // 500}/f{i}"
                    tar.addfile(link)
    return path


IMAGES = 8
"""Images of data layers; a real host's files are mostly in image layers."""
VOLUME_SHARE = 0.03
RW_SHARE = 0.02
"""Shares of the files in volumes and in containers' writable layers: walked on every run."""


def build_root(d: PrivateDaemon, work: Path, files: int) -> None:
    """Images, containers and volumes totalling at least `files` files, most in image layers."""
    d.docker("import", str(busybox_rootfs_tar(work)), "bench-base:1")
    per_image = int(files * (1 - VOLUME_SHARE - RW_SHARE)) // IMAGES
    for n in range(IMAGES):
        tar = _tree_tar(work / f"layer{n}.tar", per_image, f"data{n}", n)
        d.docker("import", str(tar), f"bench-data:{n}")
        tar.unlink()
    ctx = work / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(
        "FROM bench-base:1\nRUN mkdir /w && cd /w && for i in $(seq 1 3000); do echo $i > f$i; done\n"
    )
    d.docker("build", "-t", "bench-built:1", str(ctx))
    for n in range(2):
        d.docker("volume", "create", f"bench-vol{n}")
        data = d.root / "volumes" / f"bench-vol{n}" / "_data"
        for i in range(int(files * VOLUME_SHARE) // 2):
            sub = data / f"d{i // 500}"
            sub.mkdir(exist_ok=True)
            (sub / f"v{i}").write_bytes(b"v" * (i % 3000))
    script = f"mkdir /rw && cd /rw && for i in $(seq 1 {int(files * RW_SHARE) // 2}); do echo $i > f$i; done"
    for n in range(2):
        d.docker(
            "run",
            "--network",
            "none",
            "--name",
            f"bench-c{n}",
            "-v",
            f"bench-vol{n}:/vol",
            "bench-base:1",
            "sh",
            "-c",
            script,
        )
    d.docker("run", "-d", "--network", "none", "--name", "bench-running", "bench-base:1", "sleep", "3600")


def count_files(root: Path) -> int:
    out = subprocess.run(["find", str(root), "-xdev", "-printf", "."], capture_output=True, check=True)
    return len(out.stdout)


# Run the command from a fresh process, so that its children's peak RSS is this run's alone.
# It times the command itself, leaving its own start-up out of the figure.
_RSS_WRAPPER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); "
    "t = time.perf_counter() - t; "
    "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(r.returncode)"
)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, int]:
    """Wall seconds, stdout, and peak RSS (KiB) of the largest process of the run."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *cmd], capture_output=True, text=True, check=True, env=env
    )
    elapsed, rss = out.stderr.strip().splitlines()[-1].split()
    return float(elapsed), out.stdout, int(rss)


def best(repeat: int, run: Callable[[], tuple[float, str, int]]) -> tuple[float, str, int]:
    results = [run() for _ in range(repeat)]
    return min(results, key=lambda r: r[0])


def figures(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("generated_at", "filesystem", "notes")}


def install(venv: Path) -> Path:
    """dockerdu as an operator gets it: `pip install` of this repository into a fresh venv.

    Not the editable install of a checkout: its import hook, and whatever else the
    development interpreter loads at start-up, would be timed with every run.
    """
    exe = venv / "bin" / "dockerdu"
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, str(REPO)], check=True)
    else:  # the current code, whatever was installed before
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(REPO)], check=True)
    return exe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--files", type=int, default=320_000, help="files to build, at least")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument("--keep", action="store_true", help="keep the root afterwards")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dockerdu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    dockerdu = [str(install(work / "venv"))]
    built = work / f"built-{args.files}"
    with PrivateDaemon("20.10", work / "daemon") as d:
        if not built.exists():  # a kept workdir is measured again as it is
            build_root(d, work, args.files)
            built.touch()
        else:
            d.docker("start", "bench-running")
        root = d.root
        n = count_files(root)
        subprocess.run(["du", "-sx", str(root)], capture_output=True, check=True)  # warm the OS cache
        env = {**os.environ, "DOCKER_HOST": f"unix://{d.sock}"}
        du_t, du_out, _ = best(args.repeat, lambda: timed(["du", "-sx", "-B1", str(root)]))
        report = [*dockerdu, "report", "--root", str(root), "--format", "json", "--quiet"]
        cold_t, cold_out, cold_rss = best(args.repeat, lambda: timed([*report, "--no-cache"]))
        timed([*report, "--cache-dir", str(cache)])  # fill the cache
        warm_t, warm_out, warm_rss = best(args.repeat, lambda: timed([*report, "--cache-dir", str(cache)]))
        quick_t, _, quick_rss = best(args.repeat, lambda: timed([*report, "--quick"]))
        df_t, _, _ = best(args.repeat, lambda: timed(["docker", "system", "df", "-v"], env))
        cold_doc = json.loads(cold_out)
        same = figures(cold_doc) == figures(json.loads(warm_out))
        du_bytes = int(du_out.split()[0])
        rows = [
            ("du -sx", du_t, du_t, None),
            ("dockerdu report (cold, no cache)", cold_t, du_t, cold_rss),
            ("dockerdu report (layer cache)", warm_t, du_t, warm_rss),
            ("dockerdu report --quick", quick_t, df_t, quick_rss),
            ("docker system df -v", df_t, du_t, None),
        ]
        print(f"root: {root}  files: {n:,}  du -sx -B1: {du_bytes:,}  cores: {os.cpu_count()}")
        print(f"{'run':36} {'seconds':>8} {'ratio':>7} {'vs':>8} {'peak RSS':>10}")
        for name, t, ref, rss in rows:
            vs = "df -v" if "quick" in name else "du -sx"
            print(
                f"{name:36} {t:8.3f} {t / ref:7.2f} {vs:>8} {(f'{rss / 1024:.1f} MiB' if rss else '-'):>10}"
            )
        print(
            f"dockerdu root_disk == du: {cold_doc['totals']['root_disk'] == du_bytes}; "
            f"cached figures identical to uncached: {same}"
        )
        print("note: peak RSS is the largest single process (the main process or one walker).")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")


if __name__ == "__main__":
    main()
