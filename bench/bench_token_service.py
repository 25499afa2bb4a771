"""Token service load: wrk against `permgen serve` backed by the emulator.

    python bench/bench_token_service.py [--soak SECONDS]

Needs wrk (Debian: apt-get install wrk). Reports requests/s and latency percentiles on the
cached path, errors, the service's RSS before and after a soak run, and how many AssumeRole
calls reached the emulator (it should equal the number of distinct keys: one here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT, bench_env, permgen_argv, print_table, token_service_files

LUA = """
wrk.method = "POST"
wrk.body = '{"role": "mobile-uploader"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wrk(url: str, script: Path, seconds: int) -> tuple[float, dict[str, float], int, str]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), url + "/v1/tokens"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {}
    for p in ("50", "90", "99"):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            pct[p] = value
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rate, pct, errors, out


def main() -> int:
    soak = int(sys.argv[sys.argv.index("--soak") + 1]) if "--soak" in sys.argv else 60
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk")
        return 1
    env = bench_env()
    with tempfile.TemporaryDirectory() as tmp:
        key, seed, callers = token_service_files(Path(tmp), "{caller}")
        emu = subprocess.Popen(
            [*permgen_argv(), "emulator", "--port", "0", "--seed", str(seed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert emu.stdout is not None
        endpoint = emu.stdout.readline().strip().split("=", 1)[1]
        emu.stdout.readline()
        emu.stdout.readline()
        port = 18000 + os.getpid() % 1000
        senv = {
            **env,
            "PERMGEN_ENDPOINT": endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-bench-vendor-key",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "bench-vendor-secret",
        }
        audit = Path(tmp) / "audit.jsonl"
        serve = subprocess.Popen(
            [
                *permgen_argv(),
                "serve",
                "--spec",
                str(ROOT / "examples" / "platform.yaml"),
                "--callers",
                str(callers),
                "--port",
                str(port),
                "--audit-log",
                str(audit),
            ],
            env=senv,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                        r.read()
                    break
                except OSError:
                    time.sleep(0.1)
            req = urllib.request.Request(
                url + "/v1/tokens",
                data=json.dumps({"role": "mobile-uploader"}).encode(),
                method="POST",
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as r:  # warm the cache
                r.read()
            script = Path(tmp) / "post.lua"
            script.write_text(LUA % key)
            rate, pct, errors, _ = wrk(url, script, 10)
            rss_before = rss_kb(serve.pid)
            soak_rate, soak_pct, soak_errors, _ = wrk(url, script, soak)
            rss_after = rss_kb(serve.pid)
            with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
                metrics = r.read().decode()
            assume = int(re.search(r"permgen_assume_role_total (\d+)", metrics).group(1))  # type: ignore[union-attr]
        finally:
            serve.terminate()
            serve.wait(timeout=20)
            emu.terminate()
            emu.wait(timeout=10)
    rows = [
        (
            "cached path, wrk 2 threads x 16 connections, 10 s",
            f"{rate:,.0f} req/s; p50 {pct.get('50', 0):.1f} ms, p90 {pct.get('90', 0):.1f} ms, p99 {pct.get('99', 0):.1f} ms; {errors} errors",
            ">= 2,000 req/s, p99 <= 20 ms",
            "ok" if rate >= 2000 and pct.get("99", 1e9) <= 20 and not errors else "MISS",
        ),
        (
            f"soak, {soak} s",
            f"{soak_rate:,.0f} req/s, p99 {soak_pct.get('99', 0):.1f} ms, {soak_errors} errors; RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB",
            "zero errors, flat memory",
            "ok" if not soak_errors and rss_after <= rss_before * 1.2 + 2048 else "MISS",
        ),
        ("AssumeRole calls for 1 distinct key", str(assume), "1", "ok" if assume == 1 else "MISS"),
    ]
    print_table("token service", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
