"""Helpers shared by the benchmarks: timing whole processes and printing tables."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def permgen_argv() -> list[str]:
    """The installed ``permgen`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("permgen")
    if script.exists():
        return [str(script)]
    found = shutil.which("permgen")
    return [found] if found else [sys.executable, "-m", "permgen"]


def bench_env() -> dict[str, str]:
    """The environment benchmarks run in: bytecode caching on, as in a normal install."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPATH", str(ROOT))
    return env


def time_process(
    argv: Sequence[str], *, runs: int = 15, warmup: int = 2, cwd: Path = ROOT
) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of a whole process (after ``warmup`` runs)."""
    env = bench_env()
    times: list[float] = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        proc = subprocess.run(
            list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 3, 4):
            raise SystemExit(
                f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}"
            )
        if i >= warmup:
            times.append(elapsed)
    return times


def time_call(fn: Callable[[], object], *, runs: int = 20, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def summary(times: Sequence[float]) -> tuple[float, float, float]:
    """(median, p90, max) of a list of seconds."""
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90, ordered[-1]


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def print_table(title: str, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Rows of (benchmark, result, target, verdict)."""
    print(f"\n## {title}\n")
    print(f"machine: {machine()}\n")
    print("| benchmark | result | target | verdict |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER"


def token_service_files(directory: Path, binding: str) -> tuple[str, Path, Path]:
    """An emulator seed (a vendor RAM user allowed to assume roles, and the role
    ``oss-uploader``) and a callers file with one caller, ``alice``, bound to
    ``mobile-uploader`` with ``{user: BINDING}``: (alice's API key, seed, callers)."""
    from permgen.sts.service import new_key

    key, digest = new_key()
    seed = directory / "seed.yaml"
    seed.write_text(
        "users:\n  - {name: vendor, access_keys: [{id: LTAI-bench-vendor-key, secret: bench-vendor-secret}]}\n"
        "roles:\n  - {name: oss-uploader}\n"
        "attachments:\n  - {policy: AliyunSTSAssumeRoleAccess, type: System, to: 'user:vendor'}\n"
    )
    callers = directory / "callers.yaml"
    callers.write_text(
        f"callers:\n  - {{id: alice, key_sha256: {digest}, rate: 1000000, burst: 1000000, roles: {{mobile-uploader: {{vars: {{user: '{binding}'}}}}}}}}\n"
    )
    return key, seed, callers
