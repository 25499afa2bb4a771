"""``permgen usage`` throughput: generated OSS access log lines of the demo spec, streamed,
parsed, mapped and aggregated; lines per second and peak memory (RSS), in one process and
with one worker per core. Each measurement runs the whole ``permgen usage`` command in a
fresh process; peak RSS is that process's and, with workers, the largest worker's.

    python bench/bench_usage.py                 # 1,000,000 lines (make bench)
    python bench/bench_usage.py --lines 10000000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import ROOT, bench_env, permgen_argv
from permgen._internal.parallel import default_jobs
from permgen.tools import gen_usage_logs as gen

_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(r.ru_utime + r.ru_stime, r.ru_maxrss)\n"
    "sys.exit(code)\n"
)


def run(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (the process and its workers) and peak RSS (MiB: the
    largest of the process and its workers) of one run, measured by a fresh parent so runs
    do not share one high-water mark."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv],
        env=bench_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"permgen usage failed ({done.returncode}): {done.stderr.strip()}")
    cpu, rss = done.stdout.split()[-2:]
    return seconds, float(cpu), int(rss) / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--format", choices=["oss", "sls"], default="oss")
    ap.add_argument("--jobs", type=int, default=default_jobs())
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="permgen-bench-usage-"))
    try:
        t0 = time.perf_counter()
        files = gen.write_demo(tmp, args.lines, args.format, seed=11)
        size = files["log"].stat().st_size
        print(
            f"generated {args.lines:,} {args.format} lines ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s"
        )
        base = [*permgen_argv(), "usage", "--spec", str(ROOT / "examples/platform.yaml"),
                "--logs", str(files["log"]), "--logs", str(files["actiontrail"]),
                "--keys", str(files["keys"]), "--format", "json"]  # fmt: skip
        print("| run | wall s | lines/s (wall) | CPU s | lines per CPU-second | peak RSS |")
        print("|---|---|---|---|---|---|")
        for jobs in sorted({1, args.jobs}):
            seconds, cpu, rss = run([*base, "--jobs", str(jobs)])
            label = "one process" if jobs == 1 else f"{jobs} workers"
            print(
                f"| {label} | {seconds:.1f} | {args.lines / seconds:,.0f} | {cpu:.1f} | "
                f"{args.lines / cpu:,.0f} | {rss:.0f} MiB |",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
