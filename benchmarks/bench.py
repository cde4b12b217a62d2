"""Benchmark dockerdu against du and Docker on a large real root.

Builds, with a private Docker 20.10 daemon as the tests do, one of two roots:

- `--shape host` (the default): a root shaped like a typical host's, about 300,000
  files: a busybox base, the system's /usr/share imported, /usr/lib added by `ADD`,
  a generated node_modules-like layer of 150,000 small files, a `RUN` writing 2,000
  files, 6 running containers each writing 3,000 files and 10-60 MB, and volumes;
- `--shape synthetic --files N`: at least N files of generated data across several
  imported images, containers and volumes (the 1M- and 3M-file roots).

Then it prints, side by side in one run: `du -sx`, `dockerdu report` cold (no cache),
with its layer cache, `--quick`, `docker system df -v` (daemon running), and gdu and
ncdu when installed, as ratios of median wall times, plus each run's peak RSS. The
commands run in turn within each repeat, so that a change of load hits all of them.
Every dockerdu run's figures are checked identical to the uncached run's. dockerdu
runs as `pip install`ed into a fresh venv (`WORKDIR/venv`), as an operator would run it.

    python benchmarks/bench.py [--shape host|synthetic] [--files N] [--workdir DIR] [--repeat K] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
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


def _node_modules_tar(path: Path, files: int) -> Path:
    """A node_modules-like tree of `files` small files: packages of a few dirs each."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, body: bytes | None) -> None:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if body is None else 0o644
            info.mtime = 1_700_000_000
            if body is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))

        add("node_modules", None)
        n = pkg = 0
        while n < files:
            top = f"node_modules/pkg-{pkg}"
            for d in (top, f"{top}/lib", f"{top}/lib/internal", f"{top}/dist"):
                add(d, None)
            body = json.dumps({"name": f"pkg-{pkg}", "version": f"1.{pkg % 17}.0", "main": "lib/index.js"})
            add(f"{top}/package.json", body.encode())
            n += 1
            for i in range(min(24, files - n)):
                sub = ("lib", "lib/internal", "dist")[i % 3]
                add(
                    f"{top}/{sub}/m{i}.js",
                    f"module.exports = {pkg * 31 + i};\n".encode() * (1 + (i * 7 + pkg) % 60),
                )
                n += 1
            pkg += 1
    return path


HOST_CONTAINERS = 6


def _container_script(files: int, mib: int) -> str:
    # Idempotent: a kept root's containers are started again and must not write again.
    return (
        "[ -f /rw/.done ] || { mkdir -p /rw/files && cd /rw/files && "
        f"for i in $(seq 1 {files}); do echo $i > f$i; done && "
        f"dd if=/dev/zero of=/rw/blob bs=1048576 count={mib} 2>/dev/null && touch /rw/.done; }}; "
        "exec sleep 2147483647"
    )


def build_host_root(d: PrivateDaemon, work: Path) -> None:
    """A root shaped like a typical host's: system trees, a many-small-files layer, running containers."""
    d.docker("import", str(busybox_rootfs_tar(work)), "bench-base:1")
    share = work / "share.tar"
    subprocess.run(["tar", "-C", "/", "--one-file-system", "-cf", str(share), "usr/share"], check=True)
    d.docker("import", str(share), "bench-share:1", timeout=1800)
    share.unlink()
    ctx = work / "ctx-lib"
    if not ctx.exists():
        try:  # hard links: the context costs no copy
            subprocess.run(["cp", "-al", "/usr/lib", str(ctx / "lib")], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            ctx.mkdir(exist_ok=True)
            subprocess.run(["cp", "-a", "/usr/lib", str(ctx / "lib")], check=True)
    (ctx / "Dockerfile").write_text("FROM bench-base:1\nADD lib /usr/lib/\n")
    d.docker("build", "-t", "bench-lib:1", str(ctx), timeout=3600)
    shutil.rmtree(ctx)
    ctx = work / "ctx-node"
    ctx.mkdir(exist_ok=True)
    _node_modules_tar(ctx / "node_modules.tar", 150_000)
    (ctx / "Dockerfile").write_text("FROM bench-base:1\nWORKDIR /app\nADD node_modules.tar /app/\n")
    d.docker("build", "-t", "bench-node:1", str(ctx), timeout=1800)
    shutil.rmtree(ctx)
    ctx = work / "ctx-run"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(
        "FROM bench-base:1\nRUN mkdir /w && cd /w && for i in $(seq 1 2000); do echo $i > f$i; done\n"
    )
    d.docker("build", "-t", "bench-built:1", str(ctx))
    shutil.rmtree(ctx)
    for n in range(3):
        d.docker("volume", "create", f"bench-vol{n}")
        data = d.root / "volumes" / f"bench-vol{n}" / "_data"
        for i in range(1000):
            sub = data / f"d{i // 250}"
            sub.mkdir(exist_ok=True)
            (sub / f"v{i}").write_bytes(b"v" * (i * 37 % 9000))
    images = ["bench-base:1", "bench-node:1", "bench-built:1", "bench-lib:1", "bench-base:1", "bench-node:1"]
    for n in range(HOST_CONTAINERS):
        vol = ["-v", f"bench-vol{n % 3}:/vol"]
        d.docker("run", "-d", "--network", "none", "--name", f"bench-c{n}", *vol, images[n],
                 "sh", "-c", _container_script(3000, 10 + 10 * n))  # fmt: skip
    _wait_written(d)


def _wait_written(d: PrivateDaemon) -> None:
    for n in range(HOST_CONTAINERS):
        for _ in range(600):
            if d.docker("exec", f"bench-c{n}", "sh", "-c", "[ -f /rw/.done ] && echo y", check=False).strip():
                break
            time.sleep(0.5)


def start_host_containers(d: PrivateDaemon) -> None:
    d.docker("start", *(f"bench-c{n}" for n in range(HOST_CONTAINERS)))
    _wait_written(d)


def count_files(root: Path) -> int:
    out = subprocess.run(["find", str(root), "-xdev", "-printf", "."], capture_output=True, check=True)
    return len(out.stdout)


# Run the command from a fresh process, so that its children's peak RSS is this run's alone.
# It times the command itself, leaving its own start-up out of the figure.
_RSS_WRAPPER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); "
    "t = time.perf_counter() - t; "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print(t, u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); "
    "sys.exit(r.returncode)"
)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, int, float]:
    """Wall seconds, stdout, peak RSS (KiB) of the largest process, and CPU seconds of the run."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, *cmd], capture_output=True, text=True, check=True, env=env
    )
    elapsed, rss, cpu = out.stderr.strip().splitlines()[-1].split()
    return float(elapsed), out.stdout, int(rss), float(cpu)


def median(values: list[float]) -> float:
    return statistics.median(values)


def figures(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("generated_at", "filesystem", "notes")}


def install(venv: Path, src: Path = REPO) -> Path:
    """dockerdu as an operator gets it: `pip install` of this repository into a fresh venv.

    Not the editable install of a checkout: its import hook, and whatever else the
    development interpreter loads at start-up, would be timed with every run.
    """
    exe = venv / "bin" / "dockerdu"
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, str(src)], check=True)
    else:  # the current code, whatever was installed before
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(src)], check=True)
    # Byte-compiled, as a package manager leaves it (whatever PYTHONDONTWRITEBYTECODE says).
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "compileall", "-q", *_site_packages(py)], check=True, env=_bytecode_env())
    return exe


def _site_packages(python: str) -> list[str]:
    out = subprocess.run([python, "-c", "import site; print(*site.getsitepackages())"], capture_output=True)
    return out.stdout.decode().split()


def _bytecode_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def settle_seconds() -> float:
    """How long dockerdu waits before it caches a layer (dockerdu.cache's rule)."""
    sys.path.insert(0, str(REPO))
    from dockerdu.cache import settle_seconds as of_kernel

    return of_kernel()


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shape", choices=("host", "synthetic"), default=None,
        help="host: ~300k files shaped like a real host's (default); synthetic: --files N",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--files", type=int, default=None, help="synthetic: files to build, at least")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is kept")
    parser.add_argument("--keep", action="store_true", help="keep the root afterwards")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another dockerdu checkout to time beside this one"
    )
    args = parser.parse_args()
    shape = args.shape or ("synthetic" if args.files else "host")
    files = args.files or 320_000
    work = args.workdir or Path(tempfile.mkdtemp(prefix="dockerdu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    dockerdu = [str(install(work / "venv"))]
    baseline = [str(install(work / "venv-baseline", args.baseline))] if args.baseline else None
    shutil.rmtree(work / "cache-baseline", ignore_errors=True)
    built = work / ("built-host" if shape == "host" else f"built-{files}")
    with PrivateDaemon("20.10", work / "daemon") as d:
        fresh = not built.exists()
        if fresh:  # a kept workdir is measured again as it is
            if shape == "host":
                build_host_root(d, work)
            else:
                build_root(d, work, files)
            built.touch()
        elif shape == "host":
            start_host_containers(d)
        else:
            d.docker("start", "bench-running")
        root = d.root
        n = count_files(root)
        env = {**os.environ, "DOCKER_HOST": f"unix://{d.sock}"}
        report = [*dockerdu, "report", "--root", str(root), "--format", "json", "--quiet"]
        # Right after the files were written: the figure that must equal du's whatever
        # the file system allocates at writeback.
        first = json.loads(timed([*report, "--cache-dir", str(cache)])[1])["totals"]["root_disk"]
        first_du = int(timed(["du", "-sx", "-B1", str(root)])[1].split()[0])
        wait = settle_seconds() - (time.time() - built.stat().st_mtime)
        if wait > 0:  # the layer cache takes only layers that have settled
            print(f"waiting {wait:.0f} s for the new layers to settle", file=sys.stderr)
            time.sleep(wait)
        timed([*report, "--cache-dir", str(cache)])  # fill the cache
        old = [*baseline, *report[1:]] if baseline else None
        if old:
            timed([*old, "--cache-dir", str(work / "cache-baseline")])
        runs: list[tuple[str, list[str], dict[str, str] | None]] = [
            ("du -sx", ["du", "-sx", "-B1", str(root)], None),
            ("dockerdu report (cold, no cache)", [*report, "--no-cache"], None),
            ("dockerdu report (layer cache)", [*report, "--cache-dir", str(cache)], None),
            ("dockerdu report --quick", [*report, "--quick"], None),
            ("docker system df -v", ["docker", "system", "df", "-v"], env),
        ]
        if old:
            runs += [
                ("baseline: cold, no cache", [*old, "--no-cache"], None),
                ("baseline: layer cache", [*old, "--cache-dir", str(work / "cache-baseline")], None),
                ("baseline: --quick", [*old, "--quick"], None),
            ]
        for peer, cmd in (("gdu", ["gdu", "-n", "-x", "-p", str(root)]),
                          ("ncdu", ["ncdu", "-x", "-o", "/dev/null", str(root)])):  # fmt: skip
            if shutil.which(peer):
                runs.append((f"{peer} ({' '.join(cmd[1:-1])})", cmd, None))
        timed(runs[0][1])  # warm the OS cache
        times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        rss: dict[str, int] = {}
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        outs: dict[str, str] = {}
        loads = [load()]
        for _ in range(args.repeat):  # in turn, so that a change of load hits every command
            for name, cmd, cmd_env in runs:
                t, out, peak, used = timed(cmd, cmd_env)
                times[name].append(t)
                cpu[name].append(used)
                rss[name] = max(rss.get(name, 0), peak)
                outs[name] = out
            loads.append(load())
        du_bytes = int(outs["du -sx"].split()[0])
        cold_doc = json.loads(outs["dockerdu report (cold, no cache)"])
        same = figures(cold_doc) == figures(json.loads(outs["dockerdu report (layer cache)"]))
        med = {name: median(ts) for name, ts in times.items()}

        def ratio_of(name: str) -> float:
            """The median of the ratios taken round by round: load that changes between rounds cancels."""
            ref = times["docker system df -v" if "quick" in name else "du -sx"]
            return median([t / r for t, r in zip(times[name], ref, strict=True)])

        print(f"root: {root}  files: {n:,}  du -sx -B1: {du_bytes:,}  cores: {os.cpu_count()}")
        print(f"load average (1/5/15 min) before and after each round: {' | '.join(loads)}")
        print(
            f"{'run':36} {'median s':>8} {'ratio':>7} {'vs':>8} {'peak RSS':>10} {'CPU s':>6}  all runs (s)"
        )
        for name, _, _ in runs:
            quick = "quick" in name
            t = med[name]
            ratio = ratio_of(name)
            mem = f"{rss[name] / 1024:.1f} MiB"
            spread = " ".join(f"{x:.2f}" for x in times[name])
            vs = "df -v" if quick else "du -sx"
            used = median(cpu[name])
            print(f"{name:36} {t:8.3f} {ratio:7.2f} {vs:>8} {mem:>10} {used:6.2f}  {spread}")
        print(
            f"dockerdu root_disk == du: {cold_doc['totals']['root_disk'] == du_bytes}"
            f" (right after the {'build' if fresh else 'start'}: {first == first_du}); "
            f"cached figures identical to uncached: {same}"
        )
        print("ratio: the median over rounds of the run's time over its reference's in the same round.")
        print("note: peak RSS is the largest single process (dockerdu's main process or one walker);")
        print("CPU s: the median of user + system seconds of all its processes.")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")


if __name__ == "__main__":
    main()
